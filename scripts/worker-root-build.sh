#!/usr/bin/env bash
# Builds the Debian root filesystem the worker-host test harness boots systemd in
# (test/src/worker-root.ts) into .cache/worker-root/bookworm-<hash>/ and prints that path.
# The hash covers the package list and the recipe revision, so changing either builds a new root;
# a root that already exists is left alone, so a second run is a no-op. Needs root and debootstrap.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
# What a worker needs: systemd as PID 1 and systemctl, D-Bus for systemctl/systemd-run, ip for the
# node's addresses, CA certificates for HTTPS clients, ps/pgrep for debugging, curl for checks
# of the API through the VIP.
packages=(systemd systemd-sysv dbus iproute2 ca-certificates procps curl)
# Bump when the customisation below changes, so cached roots are rebuilt.
revision=2

hash=$(printf '%s\n' "$suite" "revision=$revision" "${packages[@]}" | sort | sha256sum | cut -c1-12)
cache="${WORKER_ROOT_CACHE:-$top/.cache/worker-root}"
out="$cache/$suite-$hash"
if [ -x "$out/lib/systemd/systemd" ]; then
  echo "$out"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "worker-root-build: must run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  echo "worker-root-build: debootstrap is not installed (apt-get install debootstrap)" >&2
  exit 1
}

# Use the mirror apt already uses: it is the one this machine can reach.
mirror=${WORKER_ROOT_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
fi
if [ -z "$mirror" ]; then
  mirror=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)[[:space:]]\+.*/\2/p' \
    /etc/apt/sources.list 2>/dev/null | head -n1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
# Two test runs starting at once must not debootstrap into the same directory.
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$out/lib/systemd/systemd" ]; then
  echo "$out"
  exit 0
fi

tmp="$out.tmp"
rm -rf "$tmp"
start=$SECONDS
echo "worker-root-build: debootstrap $suite from $mirror into $tmp ..." >&2
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" >&2

# No login prompts: console-getty would fight the test machine for /dev/console, and there is no tty.
for unit in console-getty.service getty@.service serial-getty@.service getty.target; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
echo worker > "$tmp/etc/hostname"
# An empty machine-id makes systemd generate a fresh one on every boot, so twenty workers booted
# from this root do not share one (kubelet and journald key on it); see machine-id(5).
: > "$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$tmp/var/lib/dbus/machine-id"
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
echo "$suite revision=$revision packages=${packages[*]} mirror=$mirror" > "$tmp/etc/k8s-on-k8s-worker-root"

mv "$tmp" "$out"
echo "worker-root-build: built in $((SECONDS - start))s, $(du -sh "$out" | cut -f1)" >&2
echo "$out"
