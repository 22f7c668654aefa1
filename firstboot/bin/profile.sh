# shellcheck shell=sh
# Installed as /etc/profile.d/syntropy-firstboot.sh: at an interactive login of the admin user
# while the agent is unconfigured, run the setup dialogue (EC2 users rarely see the console).
if [ -e /run/syntropy/needs-dialogue ] && [ -t 0 ] && [ -t 1 ] && [ -z "${SYNTROPY_FIRSTBOOT_SKIP:-}" ]; then
  case $- in
    *i*)
      if [ "$(id -u)" -ne 0 ] && id -nG | grep -qw sudo; then
        sudo /usr/sbin/syntropy-firstboot configure || true
      fi
      ;;
  esac
fi
