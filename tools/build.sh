#!/usr/bin/env bash
# Builds the real components of the local federation from the Go module proxy and caches them
# outside the repo, keyed by each wrapper module's pins (go.mod + go.sum + the flags below).
#
#   tools/build.sh            build what is missing (a warm run only checks the keys)
#   tools/build.sh --list     print "name key path" of each tool without building
#
# kubectl is built with the control plane so the tests use one that matches the servers.
# The dev chain (wasmd) comes last, so a brand-new machine has the kube tools before its long build.
# Binaries end up in $GPUFED_CACHE/tools/<tool>-<key>/ and are linked from $GPUFED_CACHE/bin,
# which is where the harness looks (GPUFED_BIN_DIR overrides).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${GPUFED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpufed}
bin=${GPUFED_BIN_DIR:-$cache/bin}
export GOTOOLCHAIN=local            # a toolchain download is never wanted: fail loudly instead
export GOFLAGS=-mod=readonly        # go.sum is committed; building must not rewrite it
export CGO_ENABLED=0
jobs=${GPUFED_BUILD_JOBS:-$(nproc)}

pinned() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$here/$1/go.mod"; }
K8S_VERSION=$(pinned k8s k8s.io/kubernetes)
K8S_MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
HELM_VERSION=$(pinned helm helm.sh/helm/v3)
WASMD_VERSION=$(pinned wasmd github.com/CosmWasm/wasmd)

# name | module dir | packages | output binaries | ldflags | cgo (1 where the tool needs it)
tool_rows() {
  local kv="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
  kv+=" -X k8s.io/component-base/version.gitMinor=$K8S_MINOR -X k8s.io/component-base/version.gitTreeState=clean"
  kv+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  kv+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1"
  kv+=" -X k8s.io/client-go/pkg/version.gitMinor=$K8S_MINOR"
  # Helm assumes Kubernetes 1.20 for template/lint unless told the version it targets.
  local hv="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  hv+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR"
  hv+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR"
  echo "etcd|etcd|go.etcd.io/etcd/server/v3|etcd|"
  echo "k8s|k8s|k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl|kube-apiserver kube-controller-manager kube-scheduler kubectl|$kv"
  echo "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|kwok|"
  echo "kube-state-metrics|kube-state-metrics|k8s.io/kube-state-metrics/v2|kube-state-metrics|"
  echo "helm|helm|helm.sh/helm/v3/cmd/helm|helm|$hv"
  # wasmd stands in for simapp's simd (see tools/wasmd/pin.sh), with simd's address prefix.
  # Its x/wasm VM is a prebuilt libwasmvm that ships in the wasmvm module and needs cgo; the
  # binary also looks for that library beside itself ($ORIGIN), where the build copies it.
  # -checklinkname=0: sonic's loader links to runtime internals by go:linkname.
  local wv="-checklinkname=0 -X github.com/cosmos/cosmos-sdk/version.Name=wasm"
  wv+=" -X github.com/cosmos/cosmos-sdk/version.AppName=wasmd -X github.com/cosmos/cosmos-sdk/version.Version=$WASMD_VERSION"
  wv+=" -X github.com/CosmWasm/wasmd/app.Bech32Prefix=cosmos -extldflags=-Wl,-rpath,\$ORIGIN"
  echo "wasmd|wasmd|github.com/CosmWasm/wasmd/cmd/wasmd|wasmd|$wv|1"
  # The second chain profile of the test federation: the same chain with another address prefix
  # (akash1…), so settlement is tested on a chain that is not `cosmos`. The prefix is fixed at link
  # time, so only the link step differs (Go's build cache has every package from the build above).
  echo "wasmd-akash|wasmd|github.com/CosmWasm/wasmd/cmd/wasmd|wasmd-akash|${wv/Bech32Prefix=cosmos/Bech32Prefix=akash}|1"
}

need() {
  command -v go >/dev/null || {
    echo "error: Go is not installed. Install Go >= 1.26 (https://go.dev/dl, or your distribution's golang package) and re-run." >&2
    exit 2
  }
  local have; have=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n1.26\n' "$have" | sort -V | head -1)" != "1.26" ]; then
    echo "error: Go $have is too old; the wrappers under tools/ need Go >= 1.26 (GOTOOLCHAIN=local, no download)." >&2
    exit 2
  fi
}

key_of() { # dir flags -> short sha256 of the pins and the flags
  { cat "$here/$1/go.mod" "$here/$1/go.sum"; echo "$2"; go env GOVERSION; } | sha256sum | cut -c1-16
}

progress() { # prefix: count lines of `go build -v` and report every 50 packages
  local n=0 line
  while IFS= read -r line; do
    case "$line" in
      *" "*|"") echo "    $line" ;;              # compiler messages, not package names
      *) n=$((n + 1)); [ $((n % 50)) -eq 0 ] && echo "    $1: $n packages compiled ($(($(date +%s) - start))s)" ;;
    esac
  done
  echo "    $1: $n packages compiled"
}

list=false
[ "${1:-}" = "--list" ] && list=true
need
mkdir -p "$bin" "$cache/tools"
total=$(tool_rows | wc -l); i=0; built=0; t0=$(date +%s)
while IFS='|' read -r name dir pkgs outs ldflags cgo; do
  i=$((i + 1))
  key=$(key_of "$dir" "$ldflags${cgo:+ CGO_ENABLED=$cgo}")
  dest="$cache/tools/$name-$key"
  if $list; then echo "$name $key $dest"; continue; fi
  if [ -f "$dest/.complete" ]; then
    echo "[$i/$total] $name: cached ($dest)"
  else
    echo "[$i/$total] $name: building ($outs) -> $dest"
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if [ -n "$cgo" ] && ! command -v "$(go env CC)" >/dev/null; then
      echo "error: $name needs cgo and a C compiler ($(go env CC)); install gcc and re-run." >&2; exit 2
    fi
    if ! (cd "$here/$dir" && CGO_ENABLED=${cgo:-0} go build -v -p "$jobs" -trimpath -ldflags "-s -w $ldflags" -o "$dest.tmp/" $pkgs) 2>&1 | progress "$name"; then
      echo "error: building $name failed (see the output above)" >&2; exit 1
    fi
    # `go build` names a /v3 module's binary after the element before /v3 ("server"): fix etcd's name.
    [ -f "$dest.tmp/server" ] && mv "$dest.tmp/server" "$dest.tmp/etcd"
    [ -f "$dest.tmp/v2" ] && mv "$dest.tmp/v2" "$dest.tmp/kube-state-metrics"
    [ "$name" = wasmd-akash ] && mv "$dest.tmp/wasmd" "$dest.tmp/wasmd-akash"
    # A cleaned module cache must not break wasmd: keep its libwasmvm beside it (found by $ORIGIN).
    if [ "$name" = wasmd ] || [ "$name" = wasmd-akash ]; then
      cp "$(cd "$here/$dir" && go list -m -f '{{.Dir}}' github.com/CosmWasm/wasmvm/v3)/internal/api/libwasmvm.$(uname -m).so" "$dest.tmp/"
    fi
    for o in $outs; do [ -x "$dest.tmp/$o" ] || { echo "error: $name did not produce $o" >&2; exit 1; }; done
    touch "$dest.tmp/.complete"; rm -rf "$dest"; mv "$dest.tmp" "$dest"
    # Builds of this tool under older pins are superseded: keep the cache from growing without bound.
    for old in "$cache/tools/$name"-*; do
      [[ "$old" != "$dest" && "${old#"$cache/tools/$name"-}" =~ ^[0-9a-f]{16}$ ]] && rm -rf "$old"
    done
    echo "[$i/$total] $name: built in $(($(date +%s) - start))s"
    built=$((built + 1))
  fi
  for o in $outs; do ln -sfn "$dest/$o" "$bin/$o"; done
done < <(tool_rows)
$list && exit 0
echo "tools ready in $bin ($built built, $((total - built)) cached, $(($(date +%s) - t0))s)"
"$bin/kube-apiserver" --version
