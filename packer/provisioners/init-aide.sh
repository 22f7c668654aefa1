#!/usr/bin/env bash
# Creates AIDE's database (CIS 6.1.3.1) after the last file the image ships is in place.
# Why: hardening installs and configures AIDE; its database must describe the finished image
# (the preloaded agent included), and the local target's cached layer comes before the agent.
set -euo pipefail
staging="${SYNTROPY_STAGING:?}"
if [[ "${HARDENING_ENABLED:-true}" != true ]]; then
  echo "init-aide: hardening disabled by config (hardening.enabled = false)"
  exit 0
fi
runner="$staging/hardening/apply.sh"
[[ -f "$runner" ]] || { echo "init-aide: $runner is missing (scripts/build.ts renders it from hardening/)" >&2; exit 1; }
bash "$runner" --aide-init
