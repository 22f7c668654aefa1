#!/usr/bin/env bash
# Records what the image contains (packages, kernel, agent image, disk use) for the build manifest.
# Why: every image must be traceable to exact package versions and the agent digest.
set -euo pipefail
out=/run/syntropy-build/out
install -d -m 0755 "$out"

# The source package and its version too: what Debian's security tracker and scanners key on.
dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n' | sort > "$out/packages.tsv"
{
  echo "running=$(uname -r)"
  dpkg-query -W -f '${Package}=${Version}\n' 'linux-image-*' 2>/dev/null | grep -v '=$' || true
} > "$out/kernel.txt"
cp /etc/os-release "$out/os-release"
cp /etc/syntropy/agent-image.lock "$out/agent-image.lock"
# The agent image's own package database(s), read by preload-agent.sh (none: nothing recorded).
if [[ -d /run/syntropy-build/agent-packages ]]; then cp -r /run/syntropy-build/agent-packages "$out/agent-packages"; fi
# The hardened image's compliance facts, after sanitize: what ships is what is judged.
# sanitize.sh made /run/syntropy-build/image, a bind view of the image without the build's tmpfs.
# A process that opened a log before that tmpfs (the sudo running sanitize.sh records its end)
# still writes into the image: empty what reached it, naming it.
if mountpoint -q /run/syntropy-build/image; then
  find /run/syntropy-build/image/var/log -xdev -type f -size +0 -print0 | while IFS= read -r -d '' f; do
    echo "collect-manifest: emptying ${f#/run/syntropy-build/image} ($(wc -l < "$f") line(s) written after sanitize)"
    truncate -s 0 "$f"
  done
fi
if [[ -f /run/syntropy-build/probe.sh ]]; then
  PROBE_ROOT=/run/syntropy-build/image sh /run/syntropy-build/probe.sh > "$out/compliance-hardened.raw"
fi
df -B1 --output=used,size / | tail -n 1 | awk '{ printf "{\"used_bytes\": %s, \"size_bytes\": %s}\n", $1, $2 }' > "$out/rootfs.json"
# One file crosses back to the host: directory downloads differ between Packer versions.
tar -C "$out" -cf /run/syntropy-build/image-info.tar .
# The hardened umask (027) would keep the build user, who downloads it, from reading it.
chmod 0644 /run/syntropy-build/image-info.tar
echo "collect-manifest: $(wc -l < "$out/packages.tsv") packages, rootfs $(df -h --output=used / | tail -n 1 | tr -d ' ') used"
