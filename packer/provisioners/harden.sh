#!/usr/bin/env bash
# Applies the CIS Debian 13 Level 1 Server catalog from hardening/ (controls as data).
# Why: the product ships hardened; the catalog, not this script, decides what is applied.
set -euo pipefail
staging="${SYNTROPY_STAGING:?}"

if [[ "${HARDENING_ENABLED:-true}" != true ]]; then
  echo "harden: disabled by config (hardening.enabled = false)"
  exit 0
fi
runner="$staging/rootfs/usr/lib/syntropy-hardening/apply"
if [[ ! -x "$runner" ]]; then
  echo "harden: no control catalog in this tree yet: nothing applied"
  exit 0
fi
"$runner"
