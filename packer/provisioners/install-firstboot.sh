#!/usr/bin/env bash
# Installs the first-boot service (bundle, helpers, units, login hook) on the nodejs and ufw
# install-node.sh installed.
# Why: first boot asks for the agent token and UDP range, or reads them from user data or SSM.
set -euo pipefail
src="${SYNTROPY_STAGING:?}/firstboot"
for tool in node ufw; do
  command -v "$tool" >/dev/null || { echo "install-firstboot: $tool is missing (install-node.sh runs before this)" >&2; exit 1; }
done

for f in dist/syntropy-firstboot.mjs dist/syntropy-route-failover.mjs bin/run-agent bin/console-done bin/boot bin/profile.sh bin/syntropy-firstboot bin/snapshot-main.cjs bin/build-node-snapshot bin/90syntropy-node-snapshot units/enable.list firstboot.conf; do
  [[ -f "$src/$f" ]] || { echo "install-firstboot: $src/$f is missing" >&2; exit 1; }
done
compgen -G "$src/dist/chunks/*.mjs" >/dev/null || { echo "install-firstboot: $src/dist/chunks/ has no modules (scripts/lib/bake/firstboot-stage.ts)" >&2; exit 1; }
install -d -m 0755 /usr/lib/syntropy-firstboot /usr/lib/syntropy-firstboot/chunks /etc/syntropy
install -m 0644 "$src/dist/syntropy-firstboot.mjs" /usr/lib/syntropy-firstboot/syntropy-firstboot.mjs
# Modules the programs import only on some paths (e.g. the AWS SDK's SSM client), and shared ones.
install -m 0644 "$src"/dist/chunks/*.mjs /usr/lib/syntropy-firstboot/chunks/
# The reference deployment's route failover (inert without /etc/syntropy/failover.json).
install -m 0644 "$src/dist/syntropy-route-failover.mjs" /usr/lib/syntropy-firstboot/syntropy-route-failover.mjs
install -m 0755 "$src/bin/run-agent" /usr/lib/syntropy-firstboot/run-agent
install -m 0755 "$src/bin/console-done" /usr/lib/syntropy-firstboot/console-done
install -m 0755 "$src/bin/boot" /usr/lib/syntropy-firstboot/boot
install -m 0644 "$src/bin/profile.sh" /etc/profile.d/syntropy-firstboot.sh
install -m 0755 "$src/bin/syntropy-firstboot" /usr/sbin/syntropy-firstboot
# Node's bootstrap as a startup snapshot, built on this image's node (the wrapper above starts
# from it while node is unchanged; an admin reruns build-node-snapshot after a nodejs update).
install -m 0644 "$src/bin/snapshot-main.cjs" /usr/lib/syntropy-firstboot/snapshot-main.cjs
install -m 0755 "$src/bin/build-node-snapshot" /usr/lib/syntropy-firstboot/build-node-snapshot
install -m 0644 "$src/bin/90syntropy-node-snapshot" /etc/apt/apt.conf.d/90syntropy-node-snapshot
/usr/lib/syntropy-firstboot/build-node-snapshot

# Settings first boot takes from the build config (no secrets), written on the build host
# through their contract (contracts/firstboot-conf.ts).
install -m 0644 "$src/firstboot.conf" /etc/syntropy/firstboot.conf

for unit in "$src"/units/*.service; do
  install -m 0644 "$unit" "/usr/lib/systemd/system/$(basename "$unit")"
done
# Drop-ins for units of the system (the consoles' gettys give way to the setup dialogue).
for dropin in "$src"/units/*.d/*.conf; do
  dir="/usr/lib/systemd/system/$(basename "$(dirname "$dropin")")"
  install -d -m 0755 "$dir"
  install -m 0644 "$dropin" "$dir/$(basename "$dropin")"
done
systemctl daemon-reload
grep -vE '^[[:space:]]*(#|$)' "$src/units/enable.list" | while read -r unit; do
  systemctl enable "$unit"
done
/usr/sbin/syntropy-firstboot --help >/dev/null
echo "install-firstboot: node $(node --version), $(grep -cvE '^[[:space:]]*(#|$)' "$src/units/enable.list") units enabled"
