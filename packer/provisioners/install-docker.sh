#!/usr/bin/env bash
# Installs Docker Engine from Debian and writes a hardened daemon.json from the build config.
# Why: the agent runs as a container; the daemon must not overlap the agent's 10.69.0.0/16.
set -euo pipefail
: "${DOCKER_ADDRESS_POOLS:?}" "${DOCKER_LOG_MAX_SIZE:?}" "${DOCKER_LOG_MAX_FILE:?}"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends docker.io docker-cli

install -d -m 0755 /etc/docker
cat > /etc/docker/daemon.json.new <<JSON
{
  "live-restore": true,
  "icc": false,
  "no-new-privileges": true,
  "userland-proxy": false,
  "log-driver": "json-file",
  "log-opts": { "max-size": "$DOCKER_LOG_MAX_SIZE", "max-file": "$DOCKER_LOG_MAX_FILE" },
  "default-address-pools": $DOCKER_ADDRESS_POOLS
}
JSON
dockerd --validate --config-file /etc/docker/daemon.json.new
chmod 0644 /etc/docker/daemon.json.new
mv /etc/docker/daemon.json.new /etc/docker/daemon.json

systemctl enable docker.service containerd.service
systemctl restart docker.service
docker info --format 'install-docker: Docker {{.ServerVersion}}, storage {{.Driver}}, live-restore {{.LiveRestoreEnabled}}'
