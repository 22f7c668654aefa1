#!/usr/bin/env bash
# Proves, inside the image (or against a root directory), that every sanitize.list rule holds.
# Why: a leftover key, history file or password must fail the build, not ship.
# Usage: validate.sh [ROOT]   (list: $SANITIZE_LIST, default /run/syntropy-build/sanitize.list)
set -euo pipefail

# In the build VM, sanitize.sh leaves a bind view of the image's root file system (its /var/log
# without the tmpfs the last build steps log into): judge that by default.
default_root=/
if [[ -z "${1:-}" ]] && mountpoint -q /run/syntropy-build/image 2>/dev/null; then default_root=/run/syntropy-build/image; fi
root="${1:-$default_root}"
root="${root%/}"
list="${SANITIZE_LIST:-/run/syntropy-build/sanitize.list}"
[[ -f "$list" ]] || { echo "validate: rule list $list is missing" >&2; exit 2; }
[[ -d "$root/" ]] || { echo "validate: root directory '$root/' does not exist" >&2; exit 2; }

failures=()
fail() { failures+=("$*"); }

# Effective value of an sshd option from the config files: sshd keeps the first value it reads,
# Include is expanded in place, and settings after the first Match line are conditional.
sshd_effective() {
  local key="$1"
  sshd_scan "$root/etc/ssh/sshd_config" "$key"
}
sshd_scan() {
  local file="$1" key="$2" line word rest inc
  [[ -f "$file" ]] || return 1
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%%#*}"
    read -r word rest <<< "$line" || true
    [[ -n "${word:-}" ]] || continue
    case "${word,,}" in
      match) return 1 ;;
      include)
        for inc in $rest; do
          [[ "$inc" = /* ]] || inc="/etc/ssh/$inc"
          for f in $root$inc; do
            if [[ -f "$f" ]] && sshd_scan "$f" "$key"; then return 0; fi
          done
        done
        ;;
      "${key,,}") echo "$rest"; return 0 ;;
    esac
  done < "$file"
  return 1
}

while read -r kind a b; do
  case "$kind" in
    ''|'#'*) continue ;;
    absent)
      shopt -s nullglob dotglob
      # shellcheck disable=SC2206 # the rule is a glob on purpose
      matches=($root$a)
      shopt -u nullglob dotglob
      for m in "${matches[@]}"; do
        if [[ -e "$m" || -L "$m" ]]; then fail "absent $a: found ${m#"$root"}"; fi
      done
      ;;
    absent-name)
      while IFS= read -r m; do
        fail "absent-name $a: found ${m#"$root"}"
      done < <(find "$root/" -xdev -name "$a" 2>/dev/null)
      ;;
    empty-files)
      if [[ -d "$root$a" ]]; then
        while IFS= read -r m; do
          fail "empty-files $a: ${m#"$root"} is not empty"
        # sudo records every command in /var/log/sudo.log (CIS 5.2.3), so the build's last steps
        # (collect-manifest, this check, the poweroff) leave their own sudo lines: no secrets.
        done < <(find "$root$a" -xdev -type f -size +0 ! -path "$root/var/log/sudo.log")
      fi
      ;;
    content)
      if [[ ! -f "$root$a" ]]; then fail "content $a: file is missing"
      elif [[ "$(cat "$root$a")" != "$b" ]]; then fail "content $a: expected '$b'"
      fi
      ;;
    shadow-locked)
      field=$(awk -F: -v u="$a" '$1 == u { print $2 }' "$root/etc/shadow")
      [[ "$field" == '!'* || "$field" == '*'* ]] || fail "shadow-locked $a: password of $a is not locked"
      ;;
    shadow-no-hashes)
      while IFS= read -r user; do
        fail "shadow-no-hashes: account $user has a password or an empty password field"
      done < <(awk -F: '$2 !~ /^(\*|!|!\*|!!)$/ { print $1 }' "$root/etc/shadow")
      ;;
    sshd)
      value=$(sshd_effective "$a" || true)
      [[ "${value,,}" == "${b,,}" ]] || fail "sshd $a: effective value is '${value:-unset}', expected '$b'"
      grep -qiE "^[[:space:]]*${a}[[:space:]]+${b}[[:space:]]*$" "$root/etc/ssh/sshd_config" 2>/dev/null \
        || fail "sshd $a: /etc/ssh/sshd_config itself does not say '$a $b'"
      ;;
    *)
      echo "validate: unknown rule kind '$kind' in $list" >&2
      exit 2
      ;;
  esac
done < "$list"

if (( ${#failures[@]} > 0 )); then
  echo "validate: FAILED, ${#failures[@]} leftover(s) in the image:" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "validate: image is clean ($(grep -cvE '^[[:space:]]*(#|$)' "$list") rules checked)"
