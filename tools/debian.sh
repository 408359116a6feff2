#!/usr/bin/env bash
# Installs the Debian packages the local federation needs that are not built from the Go module
# proxy: Prometheus (the provider clusters' metering store) and a C compiler (the dev chain, wasmd,
# links its CosmWasm VM with cgo). Does nothing when they are already there, so a warm run is
# instant; prints the versions either way.
#
# The package's own service is never left running: its postinst would start a daemon on :9090
# (simd's gRPC port), and the federation runs its own Prometheus per cluster on a free loopback
# port with its own config and TSDB. A policy-rc.d forbids starting services during the install,
# and anything the package started anyway is stopped and disabled afterwards.
set -euo pipefail

packages=(prometheus gcc libc6-dev)

missing() { ! command -v prometheus >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; }

stop_service() {
  # Best effort: no systemd or no SysV script in a container is fine.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
}

if missing; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: Prometheus or gcc is missing; run tools/debian.sh as root (or: sudo apt-get install --no-install-recommends ${packages[*]})" >&2
    exit 2
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "error: no apt-get: install ${packages[*]} (>= 2.42) with your package manager" >&2; exit 2; }
  # Forbid invoke-rc.d from starting any service while packages install (exit 101 = action
  # forbidden, see /usr/share/doc/init-system-helpers/README.policy-rc.d). Keep an existing policy.
  policy=/usr/sbin/policy-rc.d
  ours=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# gpufed tools/debian.sh: no services during package installs.\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    ours=true
  fi
  trap '$ours && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  stop_service
fi

prometheus --version 2>&1 | head -n 1
gcc --version | head -n 1
