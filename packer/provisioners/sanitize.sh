#!/usr/bin/env bash
# Sanitizes the build VM for AWS Marketplace by applying every rule of sanitize.list.
# Why: an image must carry no build keys, host keys, history, instance state or passwords.
set -euo pipefail

staging="${SYNTROPY_STAGING:-/var/tmp/syntropy-build}"
list="$staging/sanitize.list"
keep="/run/syntropy-build"          # not part of the image; validate.sh reads the list from here
[[ -f "$list" ]] || { echo "sanitize: rule list $list is missing" >&2; exit 1; }
mkdir -p "$keep"
cp "$list" "$keep/sanitize.list"

# Services that write state at shutdown are stopped now, so the files removed below stay gone.
for unit in systemd-random-seed.service wtmpdb-update-boot.service; do
  systemctl stop "$unit" 2>/dev/null || true
done
# The rest of this boot logs to memory only; the image keeps its persistent journal setting.
# (99-: it must sort after the image's own drop-ins, which ask for persistent storage.)
mkdir -p /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /run/systemd/journald.conf.d/99-sanitize.conf
systemctl restart systemd-journald
cloud-init clean --logs >/dev/null 2>&1 || true
apt-get clean

set_sshd() {
  local key="$1" value="$2" f
  # Drop every other setting of KEY (sshd takes the first one it reads), then state it first.
  for f in /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; do
    [[ -f "$f" ]] || continue
    sed -i -E "/^[[:space:]]*${key}[[:space:]]/Id" "$f"
  done
  sed -i "1i ${key} ${value}" /etc/ssh/sshd_config
}

while read -r kind a b; do
  case "$kind" in
    ''|'#'*) continue ;;
    absent)
      # shellcheck disable=SC2086 # the rule is a glob on purpose
      rm -rf -- $a
      ;;
    absent-name)
      find / -xdev -name "$a" -exec rm -rf -- {} + 2>/dev/null || true
      ;;
    empty-files)
      find "$a" -xdev -type f -size +0 -exec truncate -s 0 -- {} +
      ;;
    content)
      printf '%s\n' "$b" > "$a"
      ;;
    shadow-locked)
      passwd -l "$a" >/dev/null
      ;;
    shadow-no-hashes)
      awk -F: '$2 !~ /^(\*|!|!\*|!!)$/ { print $1 }' /etc/shadow | while read -r user; do
        usermod -p '!*' "$user"
      done
      ;;
    sshd)
      set_sshd "$a" "$b"
      ;;
    *)
      echo "sanitize: unknown rule kind '$kind' in $list" >&2
      exit 1
      ;;
  esac
  echo "sanitize: $kind $a${b:+ $b}"
done < "$list"

# The steps after this one still run commands with sudo, which logs them (CIS 5.2.3) and whose
# lines rsyslog copies: from here on logs go to memory. The image's own files stay visible to
# the final checks through a bind view of the root file system (no submounts in it).
systemctl stop rsyslog.service syslog.socket 2>/dev/null || true
view="$keep/image"
mkdir -p "$view"
mountpoint -q "$view" || mount --bind / "$view"
mountpoint -q /var/log || mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs /var/log

# Give freed blocks back (local: holes in the qcow2; EBS: a smaller snapshot).
fstrim -v / || echo "sanitize: the disk does not support discard; image keeps freed blocks"
