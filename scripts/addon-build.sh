#!/usr/bin/env bash
# Builds the hosted add-ons' binaries the images carry (coredns, flanneld, the flannel CNI plugin,
# konnectivity's proxy-server and proxy-agent) from their Go modules in test/images/<module>/ into
# .cache/addons/<binary>-<version>, the version being the one that module requires. Each has a
# module of its own: their dependency graphs clash with each other's and with the Kubernetes
# wrapper's (flannel needs containernetworking/plugins v1.9.1, the CNI plugin v0.9.1; CoreDNS is on
# client-go v0.37, flannel and konnectivity v0.34). Also the probe the end-to-end tests run in pods
# (test/images/probe), this repository's own, at its main.go's version.
# A binary that already exists is left alone, so a second run is a no-op.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="${ADDON_BIN_DIR:-$top/.cache/addons}"
command -v go >/dev/null || { echo "addon:build: Go is not installed (apt-get install golang, or see README)" >&2; exit 1; }
mkdir -p "$out"

required() { # required MODULE-DIR MODULE: the version test/images/MODULE-DIR/go.mod requires of MODULE
  local version
  version=$(sed -n "s#^\s*\(require \)\?$2 \(v[^ ]*\).*#\2#p" "$top/test/images/$1/go.mod")
  [ -n "$version" ] || { echo "addon:build: test/images/$1/go.mod does not require $2" >&2; exit 1; }
  echo "$version"
}

build() { # build NAME MODULE-DIR REQUIRED-MODULE PACKAGE VERSION-VARIABLE [CGO_ENABLED]
  local version
  version=$(required "$2" "$3")
  compile "$1" "$2" "$version" "$4" "-X $5=$version" "${6:-0}"
}

compile() { # compile NAME MODULE-DIR VERSION PACKAGE EXTRA-LDFLAGS CGO_ENABLED
  local name=$1 mod="$top/test/images/$2" version=$3 pkg=$4 ldflags=$5 cgo=$6
  local bin="$out/$name-$version"
  if [ -x "$bin" ]; then echo "addon:build: $name $version present"; return; fi
  local start=$SECONDS
  echo "addon:build: building $name $version from $pkg ..."
  # A cgo build links statically, as upstream's Makefile does, so the image needs no C library; Go's
  # own resolver and user lookup keep glibc's NSS (which a static binary cannot load) out of it.
  (cd "$mod" && CGO_ENABLED=$cgo go build -trimpath -tags netgo,osusergo \
    -ldflags "-s -w $ldflags -extldflags -static" -o "$bin.tmp" "$pkg")
  mv "$bin.tmp" "$bin"
  echo "addon:build: $name built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
}

build coredns coredns github.com/coredns/coredns github.com/coredns/coredns \
  github.com/coredns/coredns/coremain.GitCommit
# flannel's UDP backend is C on amd64 (upstream builds it with cgo there); the images use vxlan.
build flanneld flannel github.com/flannel-io/flannel github.com/flannel-io/flannel \
  github.com/flannel-io/flannel/pkg/version.Version "$([ "$(go env GOARCH)" = amd64 ] && echo 1 || echo 0)"
build flannel-cni-plugin flannel-cni-plugin github.com/containernetworking/plugins \
  github.com/containernetworking/plugins/plugins/meta/flannel \
  github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion
# konnectivity has no version variable (upstream's Makefile sets none): the version is in the name.
# The checksum database does not know sigs.k8s.io/apiserver-network-proxy, so go.sum alone vouches
# for it; every other module is still checked against sum.golang.org.
konnectivity_version=$(required konnectivity sigs.k8s.io/apiserver-network-proxy)
for cmd in server agent; do
  GONOSUMDB=sigs.k8s.io/apiserver-network-proxy compile "proxy-$cmd" konnectivity "$konnectivity_version" \
    "sigs.k8s.io/apiserver-network-proxy/cmd/$cmd" "" 0
done
# Standard library only, so nothing to require: the version is main.go's `const version`.
probe_version=$(sed -n 's/^const version = "\(v[^"]*\)"$/\1/p' "$top/test/images/probe/main.go")
[ -n "$probe_version" ] || { echo "addon:build: test/images/probe/main.go declares no version" >&2; exit 1; }
compile probe probe "$probe_version" . "" 0
echo "addon:build: binaries in $out"
