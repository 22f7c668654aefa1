#!/usr/bin/env bash
# Applies the CIS Debian 13 Level 1 Server catalog from hardening/ (controls as data).
# Why: the product ships hardened; the catalog, not this script, decides what is applied.
set -euo pipefail
staging="${SYNTROPY_STAGING:?}"

if [[ "${HARDENING_ENABLED:-true}" != true ]]; then
  echo "harden: disabled by config (hardening.enabled = false)"
  exit 0
fi
runner="$staging/hardening/apply.sh"
[[ -f "$runner" ]] || { echo "harden: $runner is missing (scripts/build.ts renders it from hardening/)" >&2; exit 1; }
bash "$runner"
