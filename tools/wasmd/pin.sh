#!/usr/bin/env bash
# Re-pin the dev-chain wrapper: ./pin.sh [wasmd-version] [cosmos-sdk-version]
# wasmd stands in for cosmossdk.io/simapp's simd: simapp has no tags, and the module proxy this
# project reaches serves no pseudo-version of it at any v0.53 release commit. wasmd is tagged, is
# built on the same SDK line and carries x/bank and x/authz (tools/build.sh sets its prefix to cosmos).
set -euo pipefail
WASMD=${1:-v0.61.14}
SDK=${2:-v0.53.8}
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
# Replaces in a dependency's go.mod do not apply here: repeat wasmd's own.
GOMOD=$(go mod download -json "github.com/CosmWasm/wasmd@${WASMD}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
sed -n '/^replace (/,/^)/p' "$GOMOD" | sed -n 's#^[[:space:]]*\([^/[:space:]][^[:space:]]*\) => \([^[:space:]]*\) \(v[^[:space:]]*\).*#\1=\2@\3#p' |
  while read -r r; do go mod edit -replace="$r"; done
# Go 1.26 needs sonic >= v1.15 (v1.14's internal/rt no longer compiles) and its loader >= v0.5.
go get "github.com/cosmos/cosmos-sdk@${SDK}" github.com/bytedance/sonic@v1.15.5
go get -tool "github.com/CosmWasm/wasmd/cmd/wasmd@${WASMD}"
go mod tidy
