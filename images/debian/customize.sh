#!/usr/bin/env bash
# mmdebstrap customize hook for the devcluster Debian guest: runs on the build
# host, inside build.sh's private mount namespace, after all packages are
# installed. $1 is the root directory of the guest.
set -euo pipefail

root=${1:?usage: customize.sh ROOTDIR}
in_guest() { chroot "$root" "$@"; }

# Identity: every VM must get its own machine-id, host keys and hostname, so
# the image carries none of them. systemd creates the machine-id on first boot,
# cloud-init writes the injected host key and the seed's hostname.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
# (mmdebstrap copied the build host's /etc/hostname, mode included.)
echo devcluster | install -m 0644 /dev/stdin "$root/etc/hostname"
install -m 0644 /dev/stdin "$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF

# No password for root (locked); logins are by SSH key only.
in_guest usermod --password '*' root

# mmdebstrap copied the build host's resolver config in. resolvconf assembles
# /etc/resolv.conf from DHCP and from the nameservers of a static
# network-config (dns-nameservers lines in /etc/network/interfaces.d).
# resolvconf's install kept that copy as "original"; it must not ship either.
ln -sfn ../run/resolvconf/resolv.conf "$root/etc/resolv.conf"
rm -f "$root/etc/resolvconf/resolv.conf.d/original"

# Services. Masking (not disabling) keeps systemd's first-boot preset pass
# from turning the timers back on; apt's daily runs would compete with the
# cluster for CPU and hold the dpkg lock.
in_guest systemctl enable ssh.service networking.service resolvconf.service \
  cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service
in_guest systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service

# Nothing of the build should remain: no cloud-init state (the first boot must
# be a first boot) and no logs. mmdebstrap itself removes the package lists,
# the apt cache and its own apt options after this hook.
rm -rf "$root"/var/lib/cloud/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -delete
