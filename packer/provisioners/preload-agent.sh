#!/usr/bin/env bash
# Preloads the agent image into Docker and writes the lock file first boot verifies.
# Why: first boot must start the agent with no registry access, from exactly this image.
set -euo pipefail
: "${SYNTROPY_TARGET:?}" "${AGENT_REF:?}" "${AGENT_DIGEST:?}" "${SYNTROPY_STAGING:?}" "${AGENT_REGISTRY_MIRROR?}"

case "$SYNTROPY_TARGET" in
  local)
    # The test double archive built on the host; its image ID is the digest it is pinned to.
    docker load -i "$SYNTROPY_STAGING/agent-image.tar"
    source_kind=archive
    ;;
  aws)
    if [[ -n "${AGENT_REGISTRY_MIRROR:-}" ]]; then
      # A Docker Hub mirror for this one pull (config agent.registry_mirror): a runtime drop-in
      # under /run sets dockerd's --registry-mirror through $DOCKER_OPTS (Debian's docker.service
      # passes it), so nothing of it is baked into the image; removed and dockerd restarted after.
      dropin=/run/systemd/system/docker.service.d/90-syntropy-bake-mirror.conf
      install -d -m 0755 "${dropin%/*}"
      printf '[Service]\nEnvironment="DOCKER_OPTS=--registry-mirror=%s"\n' "$AGENT_REGISTRY_MIRROR" > "$dropin"
      trap 'rm -f "$dropin"; systemctl daemon-reload; systemctl restart docker.service' EXIT
      systemctl daemon-reload
      systemctl restart docker.service
      docker info --format '{{json .RegistryConfig.Mirrors}}' | grep -qF -- "${AGENT_REGISTRY_MIRROR%/}" \
        || { echo "preload-agent: dockerd did not take the registry mirror $AGENT_REGISTRY_MIRROR" >&2; exit 1; }
    fi
    docker pull "$AGENT_REF"
    source_kind=registry
    ;;
  *) echo "preload-agent: unknown target '$SYNTROPY_TARGET'" >&2; exit 1 ;;
esac

image_id=$(docker image inspect --format '{{.Id}}' "$AGENT_REF")
if [[ "$source_kind" == archive ]]; then
  [[ "$image_id" == "$AGENT_DIGEST" ]] || { echo "preload-agent: loaded image $image_id, expected $AGENT_DIGEST" >&2; exit 1; }
else
  docker image inspect --format '{{join .RepoDigests "\n"}}' "$AGENT_REF" | grep -qx -- "${AGENT_REF%@*}@$AGENT_DIGEST" \
    || { echo "preload-agent: pulled image does not carry digest $AGENT_DIGEST" >&2; exit 1; }
fi

# The packages of the image's layers, for the SBOM: its dpkg or apk database (the real agent is
# Alpine-based, the double Debian-based), copied out of a container that is created, never
# started (`docker cp` reads a created container's file system), then removed. A database the
# image does not have is simply absent (docker cp fails, tar reads nothing).
pkgdir=/run/syntropy-build/agent-packages
install -d -m 0755 "$pkgdir"
cid=$(docker create "$AGENT_REF")
found=""
for db in /var/lib/dpkg/status /lib/apk/db/installed; do
  name=$([[ "$db" == */dpkg/* ]] && echo dpkg-status || echo apk-installed)
  if docker cp "$cid:$db" - 2>/dev/null | tar -xO > "$pkgdir/$name" 2>/dev/null; then
    found="$found $name"
  else
    rm -f "$pkgdir/$name"
  fi
done
docker rm "$cid" > /dev/null
echo "preload-agent: package database(s) of the image:${found:- none readable}"

# The lock file's one format (contracts/agent-image-lock.ts), written by first boot's own writer.
/usr/sbin/syntropy-firstboot record-image --image "$AGENT_REF" --digest "$AGENT_DIGEST" --source "$source_kind"
echo "preload-agent: $AGENT_REF ($image_id) from $source_kind"
