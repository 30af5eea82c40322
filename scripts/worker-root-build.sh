#!/usr/bin/env bash
# Builds the Debian root filesystem the worker-host test harness boots systemd in
# (test/harness/worker/worker-root.ts) into .cache/worker-root/bookworm-<hash>/ and prints that path.
# The hash covers the package list and the recipe revision, so changing either builds a new root;
# a root that already exists is left alone, so a second run is a no-op. Needs root and debootstrap.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
# What a worker needs: systemd as PID 1 and systemctl, D-Bus for systemctl/systemd-run, ip for the
# node's addresses, CA certificates for HTTPS clients, ps/pgrep for debugging, curl for checks
# of the API through the VIP; and for the kubelet a container runtime: containerd (its CRI plugin),
# runc, the CNI plugins (bridge, host-local, loopback, portmap) and iptables, which bridge's ipMasq
# and portmap call.
packages=(systemd systemd-sysv dbus iproute2 ca-certificates procps curl
  containerd runc containernetworking-plugins iptables)
# Bump when the customisation below changes, so cached roots are rebuilt.
revision=7
# The pods' sandbox image, built offline (registry.k8s.io/pause cannot be pulled); see that script.
pause_image=localhost/k8s-on-k8s/pause:1
pause_archive=$(PAUSE_IMAGE=$pause_image "$top/scripts/pause-image-build.sh")
pause_sha=$(sha256sum "$pause_archive" | cut -c1-64)

hash=$(printf '%s\n' "$suite" "revision=$revision" "pause=$pause_sha" "${packages[@]}" | sort | sha256sum | cut -c1-12)
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
# No DNS: debootstrap copied this machine's resolver, which a worker must never try to reach (test
# traffic stays in the namespaces a test made). A resolver on the worker's own loopback, where
# nothing listens, makes lookups (e.g. containerd trying registry.k8s.io for an image that is not
# there) fail at once instead of timing out.
echo 'nameserver 127.0.0.1' > "$tmp/etc/resolv.conf"
# An empty machine-id makes systemd generate a fresh one on every boot, so twenty workers booted
# from this root do not share one (kubelet and journald key on it); see machine-id(5).
: > "$tmp/etc/machine-id"
rm -f "$tmp/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$tmp/var/lib/dbus/machine-id"

# containerd for the kubelet. The CRI plugin's cgroup driver must match the kubelet's (the agent
# writes cgroupDriver: systemd), and containerd 1.6 cannot tell the kubelet which one it uses (no
# RuntimeConfig RPC).
# restrict_oom_score_adj: where containerd lacks CAP_SYS_RESOURCE (the test machines withhold it),
# runc cannot give a container a lower oom_score_adj than containerd's own and every sandbox would
# fail to start; this clamps the kubelet's values to containerd's instead. With the capability
# (containerd at -999 from its unit) it changes nothing.
# The CNI binaries are looked up in /opt/cni/bin, where a CNI's DaemonSet installs its plugin (as
# flannel's does) on every distribution that follows the CNI convention; Debian's plugins are
# linked there.
cat > "$tmp/etc/containerd/config.toml" <<TOML
# Written by scripts/worker-root-build.sh.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
TOML
mkdir -p "$tmp/opt/cni/bin"
for plugin in "$tmp"/usr/lib/cni/*; do
  ln -sf "/usr/lib/cni/${plugin##*/}" "$tmp/opt/cni/bin/${plugin##*/}"
done
# One bridge per worker with host-local addresses (a hosted cluster's worker removes it, so that
# the hosted cluster's CNI is the only one); containerd adds the loopback plugin itself.
# Every worker gets the same pod range, so pods are reachable from their own node only; it is
# containerd's default range, apart from the hosted clusters' default pod CIDR (10.2.0.0/16), as an
# infra cluster's pod network would be.
mkdir -p "$tmp/etc/cni/net.d"
cat > "$tmp/etc/cni/net.d/10-k8s-on-k8s.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "k8s-on-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.88.0.0/24" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
# containerd's content store (/var/lib/containerd) is a fresh scratch directory at every boot, so
# the sandbox image is imported at boot, after containerd and before the kubelet.
mkdir -p "$tmp/usr/local/share/k8s-on-k8s"
cp "$pause_archive" "$tmp/usr/local/share/k8s-on-k8s/pause.tar"
cat > "$tmp/etc/systemd/system/k8s-on-k8s-pause-image.service" <<UNIT
[Unit]
Description=Import the pods' sandbox image $pause_image into containerd
Requires=containerd.service
After=containerd.service
Before=kubelet.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ctr --namespace k8s.io images import /usr/local/share/k8s-on-k8s/pause.tar
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$tmp/etc/systemd/system/multi-user.target.wants"
for unit in containerd.service k8s-on-k8s-pause-image.service; do
  [ -e "$tmp/etc/systemd/system/$unit" ] && src=/etc/systemd/system/$unit || src=/lib/systemd/system/$unit
  ln -sf "$src" "$tmp/etc/systemd/system/multi-user.target.wants/$unit"
done

rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
echo "$suite revision=$revision packages=${packages[*]} pause=$pause_image mirror=$mirror" > "$tmp/etc/k8s-on-k8s-worker-root"

mv "$tmp" "$out"
echo "worker-root-build: built in $((SECONDS - start))s, $(du -sh "$out" | cut -f1)" >&2
echo "$out"
