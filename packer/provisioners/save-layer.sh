#!/usr/bin/env bash
# Ends the hardened layer (local target): records its cache key and the baseline compliance
# facts on its disk, where /run does not survive the power-off.
# Why: qemu.local boots this layer later and must prove it is the layer of its own key.
set -euo pipefail
: "${LAYER_KEY:?}"
[[ "$LAYER_KEY" =~ ^[0-9a-f]{16,64}$ ]] || { echo "save-layer: LAYER_KEY '$LAYER_KEY' is not a hex key" >&2; exit 1; }
dir=/var/lib/syntropy-build-layer     # removed again by open-layer.sh; sanitize.list proves it
baseline=/run/syntropy-build/out/compliance-baseline.raw
[[ -s "$baseline" ]] || { echo "save-layer: $baseline is missing (probe-compliance.sh runs before this)" >&2; exit 1; }
install -d -m 0700 "$dir"
install -m 0600 "$baseline" "$dir/compliance-baseline.raw"
printf '%s\n' "$LAYER_KEY" > "$dir/key"
sync
echo "save-layer: layer $LAYER_KEY"
