#!/usr/bin/env bash
# Installs what the first-boot service runs on: Debian's nodejs, and ufw for the agent's rule.
# Why: part of the hardened layer (install-firstboot.sh puts the program itself after it, so a
# change to first boot does not make the local target harden again).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# ufw: first boot owns the rule that opens the agent's UDP range (hardening owns the policy).
packages=(nodejs ufw)
apt-get install -y -q --no-install-recommends "${packages[@]}"
echo "install-node: node $(node --version), $(ufw version | head -n1)"
