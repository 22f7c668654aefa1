#!/usr/bin/env bash
# Copies the static rootfs/ tree, which mirrors target paths, into the image in one step.
# Why: static files live in one reviewed tree instead of heredocs scattered over scripts.
set -euo pipefail
src="${SYNTROPY_STAGING:?}/rootfs"
[[ -d "$src" ]] || { echo "install-rootfs: $src is missing" >&2; exit 1; }
# Files become root-owned whatever uid uploaded them; modes come from the repository.
cp -a --no-preserve=ownership "$src/." /
find "$src" -type f -printf 'install-rootfs: /%P\n'
