#!/usr/bin/env bash
# Builds the real Kubernetes binaries the tests and images run (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, and kubectl: a client nobody here
# wrote, of the same version, for the end-to-end tier and the playground) and etcd from their Go modules into
# .cache/kube/<version>/; then the control plane's and kube-proxy's binaries of the previous patch
# release (PREVIOUS_PATCH_KUBERNETES_VERSION, test/kube/previous-patch), which the upgrade tests start
# from, into .cache/kube/<that version>/ (its third-party packages are the default's, already compiled).
# A binary that already exists is left alone, so a second run is a no-op.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
versions="$top/packages/shared/src/versions.ts"
kube_version=$(sed -n "s/^export const DEFAULT_KUBERNETES_VERSION = '\(.*\)';/\1/p" "$versions")
previous_version=$(sed -n "s/^export const PREVIOUS_PATCH_KUBERNETES_VERSION = '\(.*\)';/\1/p" "$versions")
etcd_version=$(sed -n "s/^export const DEFAULT_ETCD_VERSION = '\(.*\)';/\1/p" "$versions")
out="${KUBE_BIN_DIR:-$top/.cache/kube/$kube_version}"
mod="$top/test/kube"

for pair in ".:$kube_version" "previous-patch:$previous_version"; do
  dir=${pair%%:*} version=${pair#*:}
  if ! grep -qE "^\s*(require )?k8s.io/kubernetes $version( |\$)" "$mod/$dir/go.mod"; then
    echo "kube:build: test/kube/$dir/go.mod is not for $version; run test/kube/gen-gomod.sh $version $dir" >&2
    exit 1
  fi
done
command -v go >/dev/null || { echo "kube:build: Go is not installed (apt-get install golang, or see README)" >&2; exit 1; }
ldflags() { # ldflags VERSION: -s -w, and the version `--version` and /version report
  local minor=${1#v1.}; minor=${minor%%.*}
  echo "-s -w \
 -X k8s.io/component-base/version.gitVersion=$1 \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$1"
}

build() { # build OUT MODULE_DIR NAME PACKAGE [extra go build args...]
  local out=$1 dir=$2 name=$3 pkg=$4; shift 4
  if [ -x "$out/$name" ]; then echo "kube:build: $out/$name present"; return; fi
  local start=$SECONDS
  mkdir -p "$out"
  echo "kube:build: building $out/$name from $pkg ..."
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$out/$name.tmp" "$@" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "kube:build: $name built in $((SECONDS - start))s, $(du -h "$out/$name" | cut -f1)"
}

build "$out" "$mod" etcd ./etcd -ldflags "-s -w"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  build "$out" "$mod" "$cmd" "k8s.io/kubernetes/cmd/$cmd" -ldflags "$(ldflags "$kube_version")"
done
echo "$etcd_version" > "$out/ETCD_VERSION"
echo "kube:build: binaries in $out"

# The release the upgrade tests start from (not with KUBE_BIN_DIR, which names one release's binaries).
if [ -z "${KUBE_BIN_DIR:-}" ]; then
  previous_out="$top/.cache/kube/$previous_version"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    build "$previous_out" "$mod/previous-patch" "$cmd" "k8s.io/kubernetes/cmd/$cmd" \
      -ldflags "$(ldflags "$previous_version")"
  done
  echo "kube:build: $previous_version binaries in $previous_out"
fi
