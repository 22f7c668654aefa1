#!/usr/bin/env bash
# Starts the image from a hardened layer (local target): the booted disk must be the layer of
# this build's key; its baseline compliance facts go back where collect-manifest.sh reads them.
# Why: a layer built from other inputs (a stale cache, a wrong file) must never become an image.
set -euo pipefail
: "${LAYER_KEY:?}" "${SYNTROPY_STAGING:?}"
dir=/var/lib/syntropy-build-layer
[[ -f "$dir/key" ]] || { echo "open-layer: $dir/key is missing: the booted disk is not a hardened layer" >&2; exit 1; }
found=$(cat "$dir/key")
[[ "$found" == "$LAYER_KEY" ]] || { echo "open-layer: the booted layer has key $found, this build needs $LAYER_KEY" >&2; exit 1; }
keep=/run/syntropy-build
install -d -m 0755 "$keep/out"
install -m 0644 "$dir/compliance-baseline.raw" "$keep/out/compliance-baseline.raw"
# The probe collect-manifest.sh runs on the finished image (probe-compliance.sh put it there in the layer's boot).
install -m 0644 "$SYNTROPY_STAGING/hardening/probe.sh" "$keep/probe.sh"
rm -rf "$dir"
echo "open-layer: layer $LAYER_KEY"
