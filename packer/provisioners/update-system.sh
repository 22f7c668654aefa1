#!/usr/bin/env bash
# Refreshes apt and applies every pending Debian update.
# Why: Marketplace rejects images with known-vulnerable packages at publish time.
set -euo pipefail

# Build-only apt setting (the mirror's Release files may be past Valid-Until); sanitize removes it.
printf 'Acquire::Check-Valid-Until "false";\nAcquire::Retries "3";\n' > /etc/apt/apt.conf.d/99syntropy-build
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade
apt-get -y -q autoremove --purge
