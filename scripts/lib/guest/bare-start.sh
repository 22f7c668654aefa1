#!/usr/bin/env bash
# The bare container start `npm run bench` divides "answers -> agent running" by: run-agent's own
# `docker run` (a test holds the two equal), timed to the point the apply confirms, a UDP port
# bound in the range. Run in the guest as root, sent on stdin (`sudo bash -s`).
set -euo pipefail

# Why: the ratio must compare the same work. Same image, flags and in-container loader as
# firstboot/bin/run-agent, a throwaway 0600 env file with a dummy token (the agent exits without
# one); without the project: no lock or env checks, no unit, no firewall, no journal. No command
# here may read stdin (the rest of the script is there): each docker call reads /dev/null.
# Prints bare_running_ms (Docker's State.StartedAt) and bare_bound_ms (first port in the range
# seen), both from just before `docker run`; then stops the container as the agent unit does
# (SIGTERM: the agent's WireGuard links live in the host's namespace and outlast a killed
# container) and waits until the range is free again for the next start.

lock="${BENCH_LOCK_FILE:-/etc/syntropy/agent-image.lock}"
udp_tables=("${BENCH_PROC_NET_UDP:-/proc/net/udp}" "${BENCH_PROC_NET_UDP6:-/proc/net/udp6}")
agent_lock="${BENCH_AGENT_LOCK:-/var/lock/syntropy}"
xtables_lock="${BENCH_XTABLES_LOCK:-/run/xtables.lock}"
range_start=51820
range_end=51919
name=bench-bare
deadline_s=${BENCH_DEADLINE_S:-60}

image_id=$(sed -n 's/^AGENT_IMAGE_ID=//p' "$lock")
exec_b64=$(sed -n 's/^AGENT_IMAGE_EXEC=//p' "$lock")
[[ "$image_id" =~ ^sha256:[a-f0-9]{64}$ ]] || { echo "bare-start: no image ID in $lock" >&2; exit 1; }
[[ -n "$exec_b64" ]] || { echo "bare-start: $lock has no AGENT_IMAGE_EXEC" >&2; exit 1; }
mapfile -d '' -t entry < <(base64 -d <<< "$exec_b64")

# Sets `found` to the first UDP port bound inside the range; fails if none is (builtins only, in
# this shell: no process per look).
bound_in_range() {
  local table local_addr port
  for table in "${udp_tables[@]}"; do
    [[ -r "$table" ]] || continue
    {
      read -r _ || continue
      while read -r _ local_addr _; do
        [[ "$local_addr" == *:* ]] || continue
        port=$((16#${local_addr##*:}))
        if (( port >= range_start && port <= range_end )); then found=$port; return 0; fi
      done
    } < "$table"
  done
  return 1
}

# Sleeps without starting a process each time (read's timeout on a pipe nobody writes to).
exec {nap}<> <(:)
nap() { read -r -t "$1" -u "$nap" _ || true; }

found=
if bound_in_range; then
  echo "bare-start: UDP port $found in $range_start-$range_end is already bound (an agent or its links still up)" >&2
  exit 1
fi

env_dir=$(mktemp -d)
removed=
trap '[[ -n "$removed" ]] || docker rm --force "$name" >/dev/null 2>&1 </dev/null || true; rm -rf "$env_dir"' EXIT
env_file="$env_dir/agent.env"
install -m 0600 /dev/null "$env_file"
printf '%s\n' SYNTROPY_AGENT_TOKEN=bench-dummy-not-a-real-token "SYNTROPY_PORT_RANGE=$range_start-$range_end" SYNTROPY_AGENT_NAME=bench-bare > "$env_file"
for f in "$agent_lock" "$xtables_lock"; do [[ -e "$f" ]] || install -m 0600 /dev/null "$f"; done

# shellcheck disable=SC2016 # expanded by the container's shell, not here
loader='while IFS= read -r line || [ -n "$line" ]; do case "$line" in SYNTROPY_*=*) export "$line" ;; esac; done < /run/syntropy/agent.env; exec "$@"'
args=(
  --detach --name "$name"
  --network host
  --restart on-failure:10
  --cap-add NET_ADMIN --cap-add SYS_MODULE
  --device /dev/net/tun:/dev/net/tun
  --volume "$agent_lock:/var/lock/syntropy"
  --volume "$xtables_lock:/run/xtables.lock"
  --volume "$env_file:/run/syntropy/agent.env:ro"
  --pull never
  --label "io.syntropy.image-ref=bench-bare"
  --entrypoint /bin/sh
)

t0=${EPOCHREALTIME/./}
docker run "${args[@]}" "$image_id" -c "$loader" syntropy-agent "${entry[@]}" >/dev/null </dev/null
until bound_in_range; do
  if (( (${EPOCHREALTIME/./} - t0) / 1000000 >= deadline_s )); then
    docker logs "$name" </dev/null 2>&1 | tail -n 5 >&2 || true
    echo "bare-start: no UDP port in $range_start-$range_end bound within ${deadline_s} s" >&2
    exit 1
  fi
  nap 0.02
done
t1=${EPOCHREALTIME/./}
bound_port=$found
read -r running started < <(docker inspect --format '{{eq .State.Status "running"}} {{.State.StartedAt}}' "$name" </dev/null)
[[ "$running" == true ]] || { echo "bare-start: port $bound_port bound but $name is not running" >&2; exit 1; }
t_started=$(( $(date -d "$started" +%s%N) / 1000 ))

docker stop --time 20 "$name" >/dev/null </dev/null
docker rm "$name" >/dev/null </dev/null
removed=1
t2=${EPOCHREALTIME/./}
while bound_in_range; do
  if (( (${EPOCHREALTIME/./} - t2) / 1000000 >= deadline_s )); then
    echo "bare-start: port $found still bound ${deadline_s} s after the container stopped" >&2
    exit 1
  fi
  nap 0.05
done
echo "bare_running_ms=$(( (t_started - t0) / 1000 )) bare_bound_ms=$(( (t1 - t0) / 1000 )) bare_port=$bound_port"
