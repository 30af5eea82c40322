#!/usr/bin/env bash
# Builds the validators the tests use that Debian does not package: ignition-validate (the Ignition
# spec's own validator) from its Go module, into .cache/bin/. A no-op when it exists.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.cache/bin"
mkdir -p "$bin"
if [ ! -x "$bin/ignition-validate" ]; then
  echo "test-tools: building ignition-validate from github.com/coreos/ignition/v2/validate@v2.24.0"
  tmp=$(mktemp -d)
  GOBIN="$tmp" CGO_ENABLED=0 go install github.com/coreos/ignition/v2/validate@v2.24.0
  mv "$tmp/validate" "$bin/ignition-validate"
  rmdir "$tmp"
fi
echo "test-tools: $bin/ignition-validate"
