#!/usr/bin/env bash
# Re-pin the control-plane wrapper to another k8s patch: ./pin.sh v1.34.N
# Reads upstream's own go.mod from the module cache so every staging module gets a replace.
set -euo pipefail
K8S=${1:?usage: pin.sh v1.34.N}
STAGING="v0.${K8S#v1.}"
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
GOMOD=$(go mod download -json "k8s.io/kubernetes@${K8S}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
mods=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$GOMOD")
go mod edit -require="k8s.io/kubernetes@${K8S}"
for m in $mods; do go mod edit -replace="${m}=${m}@${STAGING}"; done
go mod tidy
