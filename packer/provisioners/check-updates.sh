#!/usr/bin/env bash
# Fails the bake if any installed package is older than what the image's own APT sources offer
# (the suite, its -updates and its -security), naming each: package, installed, fixed version.
# Why: AWS Marketplace's first AMI rule is no known-vulnerable software; update-system.sh upgrades
# at the start, and this proves nothing was held back or installed stale since (apt list sees
# held packages too, which `apt-get -s upgrade` would keep back silently).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# "name/suite candidate arch [upgradable from: installed]", one per package ("Listing..." first).
pending=$(apt list --upgradable 2>/dev/null | sed -n 's|^\([^/]*\)/\([^ ]*\) \([^ ]*\) [^ ]* \[upgradable from: \([^]]*\)\]$|\1 \4 \3 \2|p')
if [[ -n "$pending" ]]; then
  echo "check-updates: $(wc -l <<< "$pending") package(s) are older than the mirror offers (package, installed, fixed version, suite):" >&2
  while read -r name installed candidate suite; do
    printf '  %s %s -> %s (%s)%s\n' "$name" "$installed" "$candidate" "$suite" "$(apt-mark showhold "$name" | grep -qx "$name" && echo ', held')" >&2
  done <<< "$pending"
  exit 1
fi
echo "check-updates: every installed package is at the newest version the suite, -updates and -security offer"
