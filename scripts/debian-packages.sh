#!/usr/bin/env bash
# The Debian packages the builds, tests and demo use, in one place: .ci/run and `npm run demo` both
# call this. `--check` names what is missing with the exact command to install it (exit 1);
# `--install` installs what is missing (needs root; one `apt-get update` first).
#   openssl          independent check of every certificate we make (openssl verify)
#   iproute2         network namespaces and veth pairs for the worker hosts
#   socat            the seed's forwarder, the reference in forwarder comparisons
#   systemd          systemd-analyze verify on rendered units
#   cloud-init       `cloud-init schema` validates the cloud-config user-data
#   debootstrap      builds the Debian root the worker-host harness boots systemd in
#   curl, ca-certificates  used by the worker root build and user-data checks
#   umoci            packs the images (npm run build:images) without a container daemon
#   skopeo           reads those images back in their tests, a reader independent of the writer
#   iptables, conntrack  their files go into the kube-proxy and flannel images
#   busybox-static   its static busybox is the test shell image (sh, tar for kubectl exec and cp)
#   libcap2-bin      setcap gives CoreDNS's binary cap_net_bind_service, as upstream's image does
#   gcc, libc6-dev   flanneld's UDP backend is cgo on amd64 (scripts/addon-build.sh links it statically)
set -euo pipefail
packages=(openssl iproute2 socat systemd cloud-init debootstrap curl ca-certificates umoci skopeo
  iptables conntrack busybox-static libcap2-bin gcc libc6-dev)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

case "${1:---check}" in
  --check)
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
    ;;
  --install)
    if [ "$(id -u)" != 0 ]; then
      echo "missing Debian packages: ${missing[*]}; run as root, or: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "debian-packages: installing ${missing[*]} (about a minute)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    ;;
  *)
    echo "usage: $0 [--check|--install]" >&2
    exit 2
    ;;
esac
