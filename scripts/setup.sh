#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for building and testing: the host packages in
# deps/apt-packages.txt and the npm dependencies pinned by package-lock.json.
# Why: one command for newcomers and CI; nothing is installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r p binary; do
  if [[ -n "${binary:-}" ]] && command -v "$binary" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done < <(grep -vE '^[[:space:]]*(#|$)' deps/apt-packages.txt)
if (( ${#missing[@]} > 0 )); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: host packages present"
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<11)) { console.error("setup: Node.js >= 20.11 is required, found "+process.version); process.exit(1) }'
npm ci --no-audit --no-fund
echo "setup: done"
