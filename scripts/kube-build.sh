#!/usr/bin/env bash
# Builds the real Kubernetes binaries the tests and images run (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, and kubectl: a client nobody here
# wrote, of the same version, for the end-to-end tier and the playground) and etcd from their Go modules into
# .cache/kube/<version>/.
# A binary that already exists is left alone, so a second run is a no-op.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
versions="$top/packages/shared/src/versions.ts"
kube_version=$(sed -n "s/^export const DEFAULT_KUBERNETES_VERSION = '\(.*\)';/\1/p" "$versions")
etcd_version=$(sed -n "s/^export const DEFAULT_ETCD_VERSION = '\(.*\)';/\1/p" "$versions")
out="${KUBE_BIN_DIR:-$top/.cache/kube/$kube_version}"
mod="$top/test/kube"

if ! grep -qE "^\s*(require )?k8s.io/kubernetes $kube_version( |\$)" "$mod/go.mod"; then
  echo "kube:build: test/kube/go.mod is not for $kube_version; run test/kube/gen-gomod.sh $kube_version" >&2
  exit 1
fi
command -v go >/dev/null || { echo "kube:build: Go is not installed (apt-get install golang, or see README)" >&2; exit 1; }
mkdir -p "$out"

minor=${kube_version#v1.}; minor=${minor%%.*}
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$kube_version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$kube_version"

build() { # build NAME PACKAGE [extra go build args...]
  local name=$1 pkg=$2; shift 2
  if [ -x "$out/$name" ]; then echo "kube:build: $name present"; return; fi
  local start=$SECONDS
  echo "kube:build: building $name from $pkg ..."
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$out/$name.tmp" "$@" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "kube:build: $name built in $((SECONDS - start))s, $(du -h "$out/$name" | cut -f1)"
}

build etcd ./etcd -ldflags "-s -w"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  build "$cmd" "k8s.io/kubernetes/cmd/$cmd" -ldflags "$ldflags"
done
echo "$etcd_version" > "$out/ETCD_VERSION"
echo "kube:build: binaries in $out"
