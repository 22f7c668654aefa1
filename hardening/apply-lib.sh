# Helpers for the generated hardening script (hardening/render.ts prepends this file).
# Every helper is idempotent: running the script twice changes nothing the second time.
# shellcheck disable=SC2034 # NEED_UPDATE_GRUB is read by the generated script's final step
export DEBIAN_FRONTEND=noninteractive
CIS_SYSCTL=/etc/sysctl.d/60-syntropy-cis.conf
NEED_UPDATE_GRUB=0

pkg_installed() { dpkg-query -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^i'; }

pkg_install() {
  local todo=() p
  for p in "$@"; do pkg_installed "$p" || todo+=("$p"); done
  [[ ${#todo[@]} -eq 0 ]] || apt-get install -y -q --no-install-recommends "${todo[@]}" >/dev/null
}

pkg_purge() {
  local todo=() p
  for p in "$@"; do if pkg_installed "$p"; then todo+=("$p"); fi; done
  [[ ${#todo[@]} -eq 0 ]] || apt-get purge -y -q "${todo[@]}" >/dev/null
}

unit_enable() {
  local u
  for u in "$@"; do
    systemctl is-enabled -q "$u" 2>/dev/null || systemctl enable "$u" >/dev/null 2>&1
  done
}

# Stops, disables and masks units that exist (a unit that is not installed needs nothing).
UNIT_FILES=''
units_off() {
  local u
  # One listing for all calls: each systemctl call costs seconds in a slow build VM.
  [[ -n "$UNIT_FILES" ]] || UNIT_FILES=$(systemctl list-unit-files --no-legend 2>/dev/null | awk '{ print $1 }')
  for u in "$@"; do
    grep -qxF "$u" <<< "$UNIT_FILES" || continue
    systemctl disable --now "$u" >/dev/null 2>&1 || true
    systemctl mask "$u" >/dev/null
  done
}

set_sysctl() {
  local key="$1" val="$2" esc f
  esc=$(printf '%s' "$key" | sed 's/[.]/[.\/]/g')
  touch "$CIS_SYSCTL"
  # Another file that sets the key later would win at boot: drop the key there.
  for f in /etc/sysctl.conf /etc/sysctl.d/*.conf /etc/ufw/sysctl.conf; do
    if [[ -f "$f" && "$f" != "$CIS_SYSCTL" ]]; then sed -i --follow-symlinks -E "/^[[:space:]]*-?${esc}[[:space:]]*=/d" "$f"; fi
  done
  sed -i -E "/^${esc}[[:space:]]*=/d" "$CIS_SYSCTL"
  printf '%s = %s\n' "$key" "$val" >> "$CIS_SYSCTL"
  sysctl -q -w "$key=$val" 2>/dev/null || echo "  note: $key is not settable on the running kernel; the setting applies at boot"
}

module_off() {
  local m="$1"
  printf 'install %s /bin/false\nblacklist %s\n' "$m" "$m" > "/etc/modprobe.d/60-syntropy-cis-$m.conf"
  modprobe -r "$m" 2>/dev/null || true
}

fstab_has() { awk -v mp="$1" '$1 !~ /^#/ && $2 == mp { found = 1 } END { exit !found }' /etc/fstab; }

mount_entry() {
  local mp="$1" line="$2"
  fstab_has "$mp" && return 0
  mkdir -p "$mp"
  printf '%s\n' "$line" >> /etc/fstab
}

mount_opt() {
  local mp="$1" opt="$2" line="$3"
  mount_entry "$mp" "$line"
  awk -v mp="$mp" -v opt="$opt" '
    $1 !~ /^#/ && $2 == mp { n = split($4, a, ","); f = 0; for (i = 1; i <= n; i++) if (a[i] == opt) f = 1; if (!f) $4 = $4 "," opt }
    { print }' /etc/fstab > /etc/fstab.syntropy-new
  cat /etc/fstab.syntropy-new > /etc/fstab
  rm -f /etc/fstab.syntropy-new
}

# perm_max MAX OWNER GROUPS(a|b) required|optional PATH...: removes mode bits beyond MAX, fixes owners.
perm_max() {
  local max="$1" owner="$2" groups="$3" req="$4" p cur new found=0
  shift 4
  for p in "$@"; do
    [[ -e "$p" ]] || continue
    found=1
    cur=$(stat -c %a "$p")
    new=$(printf '%o' $(( 8#$cur & 8#$max )))
    [[ "$cur" == "$new" ]] || chmod "$new" "$p"
    [[ "$(stat -c %U "$p")" == "$owner" ]] || chown "$owner" "$p"
    [[ "|$groups|" == *"|$(stat -c %G "$p")|"* ]] || chgrp "${groups%%|*}" "$p"
  done
  if [[ $found -eq 0 && "$req" == required ]]; then
    echo "perm_max: required path missing: $*" >&2
    return 1
  fi
}

sshd_set() {
  local key="$1" f
  shift
  for f in /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; do
    if [[ -f "$f" ]]; then sed -i -E "/^[[:space:]]*${key}[[:space:]]/Id" "$f"; fi
  done
  # sshd keeps the first value it reads: state it at the top, above any Include and Match.
  sed -i "1i ${key} $*" /etc/ssh/sshd_config
}

kv_set() {
  local file="$1" key="$2" val="$3" sep="${4:- }"
  [[ "$sep" == " " ]] && sep=$'\t'
  touch "$file"
  sed -i -E "/^#?[[:space:]]*${key}([[:space:]]|=|$)/d" "$file"
  printf '%s%s%s\n' "$key" "$sep" "$val" >> "$file"
}

kv_line() {
  local file="$1" re="$2" line="$3"
  touch "$file"
  sed -i -E "/${re}/d" "$file"
  printf '%s\n' "$line" >> "$file"
}

conf_set() {
  local file="$1" key="$2" val="$3"
  install -d -m 0755 "$(dirname "$file")"
  touch "$file"
  sed -i -E "/^#?[[:space:]]*${key}([[:space:]]|=|$)/d" "$file"
  if [[ -z "$val" ]]; then printf '%s\n' "$key" >> "$file"; else printf '%s = %s\n' "$key" "$val" >> "$file"; fi
}

dropin_set() {
  local file="$1" section="$2" key="$3" val="$4"
  install -d -m 0755 "$(dirname "$file")"
  [[ -f "$file" ]] || printf '[%s]\n' "$section" > "$file"
  sed -i -E "/^${key}=/d" "$file"
  printf '%s=%s\n' "$key" "$val" >> "$file"
}

sudo_default() {
  local f=/etc/sudoers.d/60-syntropy-cis
  touch "$f"
  grep -qxF "Defaults $1" "$f" || printf 'Defaults %s\n' "$1" >> "$f"
  chmod 0440 "$f"
  visudo -cqf "$f"
}

remove_sudo_noauth() {
  local f
  for f in /etc/sudoers /etc/sudoers.d/*; do
    if [[ -f "$f" ]] && grep -q '!authenticate' "$f"; then sed -i -E '/!authenticate/ s/^/# CIS 5.2.5 disabled: /' "$f"; fi
  done
  visudo -cq
}

su_wheel() {
  local group="$1"
  getent group "$group" >/dev/null || groupadd -r "$group"
  grep -qE "^auth[[:space:]]+required[[:space:]]+pam_wheel\.so.*group=${group}" /etc/pam.d/su ||
    sed -i "/pam_rootok.so/a auth       required   pam_wheel.so use_uid group=${group}" /etc/pam.d/su
}

shadow_users_set() {
  local field="$1" value="$2" u flag
  case "$field" in max) flag=-M ;; warn) flag=-W ;; inactive) flag=-I ;; esac
  awk -F: '$2 ~ /^\$/ { print $1 }' /etc/shadow | while read -r u; do chage "$flag" "$value" "$u"; done
}

system_accounts_nologin() {
  local min u
  min=$(awk '/^UID_MIN/ { print $2 }' /etc/login.defs)
  awk -F: -v min="${min:-1000}" '$3 < min && $1 !~ /^(root|sync|shutdown|halt)$/ && $7 !~ /(nologin|false)$/ { print $1 }' /etc/passwd |
    while read -r u; do usermod -s /usr/sbin/nologin "$u"; done
}

nologin_accounts_locked() {
  local u
  awk -F: '$1 != "root" && $7 ~ /(nologin|false)$/ { print $1 }' /etc/passwd | while read -r u; do
    if awk -F: -v u="$u" '$1 == u && $2 !~ /^[!*]/ { found = 1 } END { exit !found }' /etc/shadow; then usermod -L "$u"; fi
  done
}

empty_passwords_lock() {
  awk -F: '$2 == "" { print $1 }' /etc/shadow | while read -r u; do passwd -l "$u" >/dev/null; done
}

write_banner() {
  printf '%s\n' "$CIS_BANNER" > "$1"
  chown root:root "$1"
  chmod 0644 "$1"
}

grub_cmdline_add() {
  install -d -m 0755 /etc/default/grub.d
  # shellcheck disable=SC2016 # $GRUB_CMDLINE_LINUX is expanded by grub-mkconfig, not here
  printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' "$*" > /etc/default/grub.d/60-syntropy-cis.cfg
  NEED_UPDATE_GRUB=1
}

# A superuser password nobody knows: editing boot entries is locked, booting them is not (--unrestricted).
grub_password() {
  local f=/etc/grub.d/01_syntropy_password pw hash
  if [[ ! -f "$f" ]]; then
    pw=$(head -c 48 /dev/urandom | base64 -w0)
    hash=$(printf '%s\n%s\n' "$pw" "$pw" | grub-mkpasswd-pbkdf2 2>/dev/null | sed -n 's/.*is \(grub\.pbkdf2\..*\)$/\1/p')
    unset pw
    [[ -n "$hash" ]] || { echo "grub_password: grub-mkpasswd-pbkdf2 gave no hash" >&2; return 1; }
    printf '#!/bin/sh\n# CIS 1.4.1: set your own with grub-mkpasswd-pbkdf2 if you need the GRUB shell.\ncat <<EOF\nset superusers="root"\npassword_pbkdf2 root %s\nEOF\n' "$hash" > "$f"
    chmod 0700 "$f"
  fi
  sed -i -E '/^CLASS="--class gnu-linux/ { /--unrestricted/! s/"$/ --unrestricted"/ }' /etc/grub.d/10_linux
  NEED_UPDATE_GRUB=1
}

mta_local_only() {
  if pkg_installed postfix; then postconf -e 'inet_interfaces = loopback-only'; fi
  if pkg_installed exim4-config; then
    kv_set /etc/exim4/update-exim4.conf.conf dc_local_interfaces "'127.0.0.1 ; ::1'" =
    update-exim4.conf
  fi
  return 0
}

allow_file() {
  local allow="$1" deny="$2"
  [[ -e "$allow" ]] || install -m 0640 -o root -g root /dev/null "$allow"
  chmod 0640 "$allow"
  rm -f "$deny"
}

ufw_base_policy() {
  local port="$1" i
  shift
  ufw default deny incoming >/dev/null
  ufw default allow outgoing >/dev/null
  ufw default deny routed >/dev/null
  ufw allow "$port/tcp" comment 'SSH' >/dev/null
  for i in "$@"; do
    ufw route allow in on "$i" comment 'agent tunnel' >/dev/null
    ufw route allow out on "$i" comment 'agent tunnel' >/dev/null
  done
  ufw logging low >/dev/null
  # Established connections (Packer's own SSH session among them) survive enabling.
  ufw --force enable >/dev/null
  systemctl enable ufw.service >/dev/null 2>&1
}

logfile_modes() {
  find /var/log -type f -perm /0137 ! -name 'lastlog*' ! -name 'wtmp*' ! -name 'btmp*' -exec chmod g-wx,o-rwx {} +
}

aide_init() {
  pkg_install aide aide-common
  # Debian checks every hash AIDE knows (Checksums = H): minutes per file tree in a slow build VM.
  # SHA-512 alone is the integrity check the benchmark asks for.
  sed -i -E 's/^Checksums = H$/Checksums = sha512/' /etc/aide/aide.conf
}

# The database itself: `apply.sh --aide-init` (packer/provisioners/init-aide.sh), once the image's
# last files are in place. Without AIDE (6.1.3.1 disabled by config) there is nothing to do.
aide_db_init() {
  if ! command -v aideinit >/dev/null 2>&1; then
    echo "aide: not installed (6.1.3.1 is not applied); no database"
    return 0
  fi
  [[ -f /var/lib/aide/aide.db ]] || aideinit -y -f >/dev/null
  echo "aide: database $(stat -c %s /var/lib/aide/aide.db) bytes"
}

prune_args=(-path /proc -o -path /sys -o -path /dev -o -path /run -o -path /var/lib/docker -o -path /var/lib/containerd)
world_writable_fix() {
  find / -xdev \( "${prune_args[@]}" \) -prune -o -type f -perm -0002 -exec chmod o-w {} +
  find / -xdev \( "${prune_args[@]}" \) -prune -o -type d -perm -0002 ! -perm -1000 -exec chmod +t {} +
}

unowned_fix() {
  find / -xdev \( "${prune_args[@]}" \) -prune -o \( -nouser -o -nogroup \) -exec chown root:root {} +
}

interactive_users() { awk -F: '$7 !~ /(nologin|false|sync|shutdown|halt)$/ { print $1 ":" $6 }' /etc/passwd; }

home_dirs_fix() {
  local u h
  interactive_users | while IFS=: read -r u h; do
    [[ -d "$h" ]] || continue
    chown "$u" "$h"
    chmod g-w,o-rwx "$h"
  done
}

dot_files_fix() {
  local u h
  interactive_users | while IFS=: read -r u h; do
    [[ -d "$h" ]] || continue
    rm -f "$h/.forward" "$h/.rhosts"
    find "$h" -maxdepth 1 -name '.*' -type f -exec chmod go-w {} +
    for f in "$h/.netrc" "$h/.bash_history"; do
      if [[ -f "$f" ]]; then chmod 0600 "$f"; fi
    done
  done
}

# Login users that have no password (key-only, like the admin user cloud-init creates) must not
# age out: pam_unix would demand a password change that cannot happen and lock them out of SSH.
keyonly_accounts_unit() {
  install -d -m 0755 /usr/lib/syntropy-hardening
  cat > /usr/lib/syntropy-hardening/keyonly-accounts <<'SH'
#!/bin/sh
# Exempts key-only login users (locked password, login shell, UID >= 1000) from password ageing.
set -eu
# One pass over shadow (locked passwords) and the passwd database (UID, shell): it runs at every
# boot before logins are allowed, so no process per account.
getent passwd | awk -F: 'NR == FNR { if ($2 ~ /^[!*]/) locked[$1] = 1; next }
  ($1 in locked) && $3 >= 1000 && $7 !~ /(nologin|false)$/ { print $1 }' /etc/shadow - | while read -r u; do
  chage -M -1 -I -1 "$u"
done
SH
  chmod 0755 /usr/lib/syntropy-hardening/keyonly-accounts
  cat > /etc/systemd/system/syntropy-keyonly-accounts.service <<'UNIT'
[Unit]
Description=Exempt key-only login users from password ageing (CIS 5.4.1 without lockouts)
# cloud-init creates the login user in its network stage (cloud-init-network.service since
# cloud-init 24.3, cloud-init.service before); ordering after a unit that does not exist is a no-op.
After=cloud-init.service cloud-init-network.service
Before=ssh.service systemd-user-sessions.service

[Service]
Type=oneshot
ExecStart=/usr/lib/syntropy-hardening/keyonly-accounts

[Install]
WantedBy=multi-user.target
UNIT
  systemctl enable syntropy-keyonly-accounts.service >/dev/null 2>&1
  /usr/lib/syntropy-hardening/keyonly-accounts
}
