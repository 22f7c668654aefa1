# shellcheck shell=sh
# Installed as /etc/profile.d/syntropy-firstboot.sh: at an interactive login of the admin user
# while the agent is unconfigured, run the setup dialogue (EC2 users rarely see the console).
# SSH can be up before first boot has looked at user data: wait for it to decide first.
syntropy_firstboot_login() {
  [ -t 0 ] && [ -t 1 ] && [ -z "${SYNTROPY_FIRSTBOOT_SKIP:-}" ] || return 0
  case $- in *i*) ;; *) return 0 ;; esac
  [ "$(id -u)" -ne 0 ] && id -nG | grep -qw sudo || return 0
  [ -e /var/lib/syntropy/firstboot/state.json ] && [ ! -e /run/syntropy/needs-dialogue ] && return 0
  if ! systemctl is-active --quiet syntropy-firstboot.service && ! systemctl is-failed --quiet syntropy-firstboot.service; then
    echo "Waiting for the Syntropy first-boot check to finish..."
    _sfb_i=0
    while [ $_sfb_i -lt 90 ] && ! systemctl is-active --quiet syntropy-firstboot.service && ! systemctl is-failed --quiet syntropy-firstboot.service; do
      sleep 2
      _sfb_i=$((_sfb_i + 1))
    done
  fi
  if [ -e /run/syntropy/needs-dialogue ]; then
    sudo /usr/sbin/syntropy-firstboot configure || true
  fi
}
syntropy_firstboot_login
unset -f syntropy_firstboot_login; unset _sfb_i
