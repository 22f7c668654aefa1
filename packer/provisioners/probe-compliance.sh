#!/usr/bin/env bash
# Records the compliance facts of the image before hardening (the baseline report's input).
# Why: the host judges the CIS catalog from these facts; the probe script is generated from the catalog.
set -euo pipefail
staging="${SYNTROPY_STAGING:?}"
keep=/run/syntropy-build            # not part of the image; survives sanitize.sh
install -d -m 0755 "$keep/out"
install -m 0644 "$staging/hardening/probe.sh" "$keep/probe.sh"
t0=$(date +%s%N)
sh "$keep/probe.sh" > "$keep/out/compliance-baseline.raw"
echo "probe-compliance: baseline facts $(wc -c < "$keep/out/compliance-baseline.raw") bytes in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
