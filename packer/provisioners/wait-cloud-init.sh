#!/usr/bin/env bash
# Waits until cloud-init has finished the build VM's first boot.
# Why: cloud-init creates the login user and holds apt; provisioning earlier races it.
set -euo pipefail

if command -v cloud-init >/dev/null 2>&1; then
  # 0 = done, 2 = done with recoverable errors (deprecation warnings); anything else fails.
  rc=0
  cloud-init status --wait >/dev/null || rc=$?
  if [[ $rc -ne 0 && $rc -ne 2 ]]; then
    cloud-init status --long >&2 || true
    exit "$rc"
  fi
fi
echo "wait-cloud-init: done ($(uname -r), $(grep -m1 "^PRETTY_NAME=" /etc/os-release | cut -d= -f2-))"
