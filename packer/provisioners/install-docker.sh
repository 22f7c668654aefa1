#!/usr/bin/env bash
# Installs Docker Engine and writes a hardened daemon.json from the build config.
# Why: the agent runs as a container; the daemon must not overlap the agent's 10.69.0.0/16.
# Source (docker.source): Debian's docker.io (default), or Docker's own repository (docker-ce),
# whose signing key the build fetched and held to the pinned fingerprint before staging it.
set -euo pipefail
: "${DOCKER_ADDRESS_POOLS:?}" "${DOCKER_LOG_MAX_SIZE:?}" "${DOCKER_LOG_MAX_FILE:?}"
: "${DOCKER_SOURCE:=debian}"

export DEBIAN_FRONTEND=noninteractive
case "$DOCKER_SOURCE" in
  debian)
    apt-get install -y -q --no-install-recommends docker.io docker-cli
    ;;
  docker-ce)
    : "${DOCKER_CE_REPO:?}" "${DOCKER_CE_SUITE:?}" "${SYNTROPY_STAGING:?}"
    key="$SYNTROPY_STAGING/keys/docker.asc"
    [[ -s "$key" ]] || { echo "install-docker: docker.source docker-ce but no verified key at $key" >&2; exit 1; }
    install -d -m 0755 /etc/apt/keyrings /etc/apt/sources.list.d
    install -m 0644 "$key" /etc/apt/keyrings/docker.asc
    # Only this key may sign this repository (Signed-By), as Docker's install guide sets it up.
    cat > /etc/apt/sources.list.d/docker.sources <<SOURCES
Types: deb
URIs: $DOCKER_CE_REPO
Suites: $DOCKER_CE_SUITE
Components: stable
Architectures: $(dpkg --print-architecture)
Signed-By: /etc/apt/keyrings/docker.asc
SOURCES
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker-ce docker-ce-cli containerd.io
    ;;
  *) echo "install-docker: unknown DOCKER_SOURCE '$DOCKER_SOURCE' (debian or docker-ce)" >&2; exit 1 ;;
esac

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
