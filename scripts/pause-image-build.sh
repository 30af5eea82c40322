#!/usr/bin/env bash
# Builds the pods' sandbox ("pause") image offline: the static Go program in test/kube/pause packed
# by hand into an OCI image archive (oci-layout, index.json, blobs/sha256/...), the format
# `ctr images import` reads. registry.k8s.io/pause cannot be pulled where the tests run.
# Prints the archive's path, .cache/pause/pause-<hash>.tar; the hash covers the source, this script
# and the Go version, so a change builds a new archive and an existing one is reused.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# The name containerd's sandbox_image refers to (scripts/worker-root-build.sh) and ctr gives the image.
image=${PAUSE_IMAGE:-localhost/k8s-on-k8s/pause:1}
src="$top/test/kube/pause"
command -v go >/dev/null || { echo "pause-image-build: Go is not installed" >&2; exit 1; }

hash=$( (cat "$src/main.go" "$0"; go version; echo "$image") | sha256sum | cut -c1-12)
cache="${PAUSE_IMAGE_CACHE:-$top/.cache/pause}"
out="$cache/pause-$hash.tar"
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

(cd "$top/test/kube" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" \
  -o "$tmp/rootfs/pause" ./pause)
# One uncompressed layer holding /pause; fixed owners and times make the digest reproducible.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
  -C "$tmp/rootfs" -cf "$tmp/layer.tar" pause

blobs="$tmp/oci/blobs/sha256"
mkdir -p "$blobs"
# put FILE: stores FILE as a blob and prints "DIGEST SIZE".
put() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$blobs/$digest"
  echo "sha256:$digest $size"
}
read -r layer_digest layer_size < <(put "$tmp/layer.tar")
# An uncompressed layer's diff ID is its digest. User and entrypoint as in registry.k8s.io/pause.
printf '%s' '{"architecture":"amd64","os":"linux","config":{"User":"65535:65535","Entrypoint":["/pause"],'\
'"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["'"$layer_digest"'"]},'\
'"history":[{"created_by":"scripts/pause-image-build.sh"}]}' > "$tmp/config.json"
read -r config_digest config_size < <(put "$tmp/config.json")
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'\
'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'"$config_digest"'","size":'"$config_size"'},'\
'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"'"$layer_digest"'","size":'"$layer_size"'}]}' \
  > "$tmp/manifest.json"
read -r manifest_digest manifest_size < <(put "$tmp/manifest.json")
# ctr import names the image after io.containerd.image.name; ref.name is the OCI layout's tag.
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{'\
'"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"'"$manifest_digest"'","size":'"$manifest_size"','\
'"platform":{"architecture":"amd64","os":"linux"},'\
'"annotations":{"io.containerd.image.name":"'"$image"'","org.opencontainers.image.ref.name":"'"${image##*:}"'"}}]}' \
  > "$tmp/oci/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$tmp/oci/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
  -C "$tmp/oci" -cf "$tmp/image.tar" oci-layout index.json blobs
mv "$tmp/image.tar" "$out"
echo "pause-image-build: $image ($manifest_digest) in $out" >&2
echo "$out"
