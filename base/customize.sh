#!/usr/bin/env bash
# Customizes the mmdebstrap root of the local base disk so it boots like Debian's official AMI:
# GRUB on an MBR disk, serial console, cloud-init with the Ec2 datasource and the `admin` user.
set -euo pipefail

root="${1:?usage: customize.sh ROOTDIR}"
: "${BASE_ROOT_UUID:?BASE_ROOT_UUID must name the root filesystem UUID}"
: "${BASE_MIRROR:?BASE_MIRROR must name the Debian mirror}"
: "${BASE_SECURITY_MIRROR:?BASE_SECURITY_MIRROR must name the Debian security mirror}"
: "${BASE_SUITE:?BASE_SUITE must name the Debian suite}"

kernel_version() {
  local k
  k=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -n 1)
  [[ -n "$k" ]] || { echo "customize: no kernel in $root/boot" >&2; exit 1; }
  echo "${k#vmlinuz-}"
}
kver=$(kernel_version)
[[ -f "$root/boot/initrd.img-$kver" ]] || { echo "customize: no initrd for $kver" >&2; exit 1; }

cat > "$root/etc/fstab" <<EOF
UUID=$BASE_ROOT_UUID / ext4 defaults,discard,errors=remount-ro 0 1
EOF
echo localhost > "$root/etc/hostname"

# Debian's deb822 sources, with updates and security as on the official images.
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $BASE_MIRROR
Suites: $BASE_SUITE $BASE_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $BASE_SECURITY_MIRROR
Suites: $BASE_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# GRUB: a hand-written grub.cfg for the first boot; /etc/default/grub makes a later
# update-grub inside the booted system produce the same kernel command line.
cat > "$root/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR="Debian"
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
mkdir -p "$root/boot/grub/i386-pc"
cp -a "$root/usr/lib/grub/i386-pc/." "$root/boot/grub/i386-pc/"
cat > "$root/boot/grub/grub.cfg" <<EOF
set timeout=0
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
menuentry 'Debian GNU/Linux' {
  insmod part_msdos
  insmod ext2
  search --no-floppy --fs-uuid --set=root $BASE_ROOT_UUID
  linux /boot/vmlinuz-$kver root=UUID=$BASE_ROOT_UUID ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img-$kver
}
EOF
chmod 0600 "$root/boot/grub/grub.cfg"
# core.img goes right after the MBR; built with the target's own GRUB so modules match.
chroot "$root" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
  -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2

# cloud-init: the EC2 datasource only, IPv4 metadata only (the IPv6 endpoint would leave a
# local guest's network), and the `admin` default user of Debian's official AMIs.
cat > "$root/etc/cloud/cloud.cfg.d/01_debian_cloud.cfg" <<'EOF'
datasource_list: [ Ec2, None ]
datasource:
  Ec2:
    metadata_urls: [ "http://169.254.169.254" ]
    timeout: 5
    max_wait: 60
system_info:
  default_user:
    name: admin
    lock_passwd: true
    gecos: Debian
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
apt:
  preserve_sources_list: true
ssh_pwauth: false
EOF

# Amazon Time Sync is a link-local address: correct on EC2, and inert inside a local guest.
if [[ -d "$root/etc/systemd/timesyncd.conf.d" || -f "$root/etc/systemd/timesyncd.conf" ]]; then
  mkdir -p "$root/etc/systemd/timesyncd.conf.d"
  printf '[Time]\nNTP=169.254.169.123\nFallbackNTP=\n' > "$root/etc/systemd/timesyncd.conf.d/50-aws.conf"
fi
# chrony (preinstalled for the hardening step): no internet pool from a local guest; the
# hardening step adds the Amazon Time Sync Service as its one source.
if [[ -f "$root/etc/chrony/chrony.conf" ]]; then
  sed -i -E 's/^(pool|server)[[:space:]]/# Amazon Time Sync Service only (sources.d): &/' "$root/etc/chrony/chrony.conf"
fi

# Networking is cloud-init -> netplan -> systemd-networkd, as on the official image; ifupdown's
# networking.service would only add a serial step to every boot.
if [[ -e "$root/var/lib/dpkg/info/ifupdown.list" ]]; then
  chroot "$root" apt-get -y -q purge ifupdown
fi

# Per-instance identity is created at first boot, not baked.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
rm -rf "$root/var/lib/cloud/"*
