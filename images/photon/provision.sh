#!/bin/bash
# Turns a fresh Photon OS 5 root file system into the devcluster guest.
#
# photon-os-installer runs this as a "postinstallscripts" entry, chrooted into
# the image it is building (see kickstart.json), after the packages, GRUB and
# fstab are in place. build.sh stages versions.env under /tmp/devcluster
# through the kickstart's "additional_files"; /tmp is a tmpfs during the
# install, so it does not end up in the image.
#
# The image carries the OS only. containerd, runc, crictl, the CNI plugins and
# Kubernetes come from devcluster's node bundle, which `devcluster start`
# installs over SSH into /usr/local and /opt/cni/bin together with their units
# and configuration (src/kube/node-files.ts). What stays here is what is
# specific to Photon: its firewall, its hardening sysctls, its presets.
set -euo pipefail
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

STAGE_DIR=${DEVCLUSTER_STAGE_DIR:-/tmp/devcluster}
VERSIONS_FILE=$STAGE_DIR/versions.env

# Kernel modules that must be in the initrd whatever hypervisor boots the disk:
# virtio (QEMU, HyperKit), Hyper-V storage/network, NVMe, and the LSI Logic SCSI
# controller the OVA declares. AHCI, PIIX, PVSCSI and virtio-pci are built in.
INITRD_MODULES=(virtio_blk virtio_scsi virtio_net nvme hv_vmbus hv_storvsc hv_netvsc mptspi)

# Units the guest contract needs at boot. cloud-init's own units are handled
# separately because their names changed across cloud-init releases.
ENABLED_UNITS=(sshd.service hv_kvp_daemon.service vmtoolsd.service
  iptables.service systemd-networkd.service systemd-resolved.service)

# Photon packages that must not be in the image: the node bundle installs the
# container runtime and Kubernetes, and a second, older copy from Photon (the
# minimal metapackage pulls docker, with containerd 1.6 and runc 1.1) would sit
# on PATH next to it. kubernetes-kubeadm would also enable its own kubelet unit.
FORBIDDEN_PACKAGES=(docker docker-engine containerd runc cni cri-tools kubernetes kubernetes-kubeadm)

declare -A PIN=()

die() {
  printf 'provision.sh: error: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'provision.sh: %s\n' "$*" >&2
}

# This script rewrites sshd, firewall and boot configuration of the system it
# runs on; make sure that is an image being built, not somebody's machine.
require_image_root() {
  [[ -f /etc/photon-release ]] || die "/etc/photon-release not found: this is not a Photon OS root file system"
  if [[ ${DEVCLUSTER_PROVISION_FORCE:-} != 1 && "$(stat -c %d:%i /)" == "$(stat -c %d:%i /proc/1/root/.)" ]]; then
    die "not running in a chroot; provision.sh only runs inside photon-os-installer (set DEVCLUSTER_PROVISION_FORCE=1 to override)"
  fi
}

load_versions() {
  local file=$1 line key value n=0
  [[ -r $file ]] || die "versions file $file is missing: build.sh must stage images/photon/versions.env there"
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    [[ $line =~ ^([A-Z][A-Z0-9_]*)=([^[:space:]]+)$ ]] || die "$file:$n: expected KEY=VALUE, got '$line'"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    case $key in
      PHOTON_RELEASE) [[ $value =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "$file:$n: $key is not a version" ;;
      POI_COMMIT) [[ $value =~ ^[0-9a-f]{40}$ ]] || die "$file:$n: POI_COMMIT must be a full 40-digit commit id" ;;
      POI_REPO) [[ $value =~ ^https://[^[:space:]]+$ ]] || die "$file:$n: POI_REPO must be an https URL" ;;
      *) die "$file:$n: unknown key $key" ;;
    esac
    PIN[$key]=$value
  done <"$file"
  for key in PHOTON_RELEASE POI_REPO POI_COMMIT; do
    [[ -n ${PIN[$key]:-} ]] || die "$file does not set $key"
  done
}

# kickstart.json leaves the minimal metapackage out for this reason; stop the
# build if a runtime slipped in anyway, through some other dependency.
refuse_distro_runtime() {
  local pkg
  for pkg in "${FORBIDDEN_PACKAGES[@]}"; do
    if rpm -q --quiet "$pkg"; then
      die "Photon package $pkg is installed; the image carries the OS only and the node bundle brings the runtime (check kickstart.json packages)"
    fi
  done
}

# Photon's iptables.service flushes every table when it starts. The node
# bundle's containerd and kubelet (units written by devcluster at start) must
# come up after it at boot, or the NAT rules of the CNI bridge and kube-proxy
# are wiped. Drop-ins for units that do not exist yet are ignored until they do.
order_runtime_after_firewall() {
  local unit
  for unit in containerd.service kubelet.service; do
    install -d -m 0755 "/etc/systemd/system/$unit.d"
    cat >"/etc/systemd/system/$unit.d/05-devcluster-after-firewall.conf" <<'EOF'
# devcluster (Photon image): iptables.service flushes every table when it
# starts; start after it so the rules this service's pods need survive boot.
[Unit]
After=iptables.service
Wants=iptables.service
EOF
  done
}

# The same paths and contents devcluster writes at start (and the Debian image
# carries), so that start finds them unchanged instead of adding a second copy.
# The sysctl file sorts after Photon's 50-security-hardening.conf, which sets
# ip_forward=0.
configure_kernel() {
  cat >/etc/modules-load.d/devcluster-kubernetes.conf <<'EOF'
overlay
br_netfilter
EOF
  cat >/etc/sysctl.d/90-devcluster-kubernetes.conf <<'EOF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
EOF
  # The kernel's default of 128 inotify instances per user runs out once the
  # kubelet, containerd and a few pods watch their files. A file of its own,
  # which devcluster's start never rewrites.
  cat >/etc/sysctl.d/90-devcluster-inotify.conf <<'EOF'
fs.inotify.max_user_instances = 8192
fs.inotify.max_user_watches = 524288
EOF
}

# Photon restores /etc/systemd/scripts/ip4save at boot with INPUT and FORWARD
# policies DROP. Keep that shape and open what a single-node cluster needs.
configure_firewall() {
  [[ -x /etc/systemd/scripts/iptables ]] || die "/etc/systemd/scripts/iptables missing: is the iptables package installed?"
  cat >/etc/systemd/scripts/ip4save <<'EOF'
# devcluster: Photon OS default policy (DROP) with the ports and ranges a
# single-node Kubernetes cluster needs. Loaded by iptables.service.
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8443 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 6443 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 10250 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 30000:32767 -j ACCEPT
-A INPUT -p udp -m udp --dport 30000:32767 -j ACCEPT
-A INPUT -s 10.244.0.0/16 -j ACCEPT
-A INPUT -s 10.96.0.0/12 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 10.244.0.0/16 -j ACCEPT
-A FORWARD -d 10.244.0.0/16 -j ACCEPT
-A FORWARD -s 10.96.0.0/12 -j ACCEPT
-A FORWARD -d 10.96.0.0/12 -j ACCEPT
-A OUTPUT -j ACCEPT
COMMIT
EOF
  chmod 0644 /etc/systemd/scripts/ip4save
  # --test parses the rules without committing them. It still talks to the
  # build host's kernel, which may lack netfilter support inside the installer
  # container, so a failure here is reported but cannot fail the build.
  if ! iptables-restore --test </etc/systemd/scripts/ip4save; then
    log "warning: iptables-restore --test could not check ip4save in this build environment; the rules were not validated"
  fi
}

configure_cloud_init() {
  install -d -m 0755 /etc/cloud/cloud.cfg.d
  # ds-identify only reads datasource_list when the list is on one line.
  cat >/etc/cloud/cloud.cfg.d/90-devcluster.cfg <<'EOF'
# devcluster: per-VM settings arrive on a NoCloud seed (volume label cidata);
# VMware guestinfo is kept for VMware hosts. Nothing else is probed.
datasource_list: [ NoCloud, VMware, None ]
ssh_pwauth: false
disable_root: true
EOF
  rm -rf /var/lib/cloud/instance /var/lib/cloud/instances /var/lib/cloud/data /var/lib/cloud/sem
  rm -f /var/log/cloud-init.log /var/log/cloud-init-output.log
}

configure_sshd() {
  local cfg=/etc/ssh/sshd_config tmp out
  [[ -f $cfg ]] || die "$cfg missing: is openssh-server installed?"
  install -d -m 0755 /etc/ssh/sshd_config.d
  cat >/etc/ssh/sshd_config.d/10-devcluster.conf <<'EOF'
# devcluster: key-only logins, never as root. sshd keeps the first value it
# reads for a keyword, and sshd_config includes this directory on its first line.
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
EOF
  chmod 0600 /etc/ssh/sshd_config.d/10-devcluster.conf
  if ! grep -Eq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' "$cfg"; then
    tmp=$(mktemp)
    {
      printf 'Include /etc/ssh/sshd_config.d/*.conf\n'
      cat "$cfg"
    } >"$tmp"
    cat "$tmp" >"$cfg"
    rm -f "$tmp"
  fi

  # Host keys must be unique per VM: devcluster injects one through cloud-init,
  # and sshd-keygen.service covers any boot without one.
  rm -f /etc/ssh/ssh_host_*

  tmp=$(mktemp -d)
  ssh-keygen -q -t ed25519 -N '' -f "$tmp/probe_key"
  out=$(sshd -T -f "$cfg" -h "$tmp/probe_key" -C user=devcluster,host=localhost,addr=127.0.0.1) ||
    die "sshd rejects $cfg"
  rm -rf "$tmp"
  local want
  for want in 'passwordauthentication no' 'kbdinteractiveauthentication no' 'permitrootlogin no' 'authenticationmethods publickey'; do
    grep -qx "$want" <<<"$out" || die "effective sshd setting is not '$want'"
  done
}

configure_network() {
  # Hosts find the guest's lease by MAC (minikube's lease parser does the
  # same); systemd-networkd defaults to a machine-id based DUID instead.
  # 99-dhcp-en.network is Photon's catch-all; 10-cloud-init-eth0.network is
  # what cloud-init renders for its fallback DHCP config. A drop-in for a
  # .network file that does not exist is ignored.
  local unit
  for unit in 99-dhcp-en.network 10-cloud-init-eth0.network; do
    install -d -m 0755 "/etc/systemd/network/$unit.d"
    cat >"/etc/systemd/network/$unit.d/50-devcluster-client-id.conf" <<'EOF'
[DHCPv4]
ClientIdentifier=mac
EOF
  done
}

configure_paths() {
  # The node bundle's binaries go to /usr/local/bin and /usr/local/sbin; sudo
  # and login shells must find them (sudo crictl, sudo kubeadm over SSH).
  cat >/etc/sudoers.d/10-devcluster-path <<'EOF'
Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EOF
  chmod 0440 /etc/sudoers.d/10-devcluster-path
  visudo -cf /etc/sudoers.d/10-devcluster-path >/dev/null || die "visudo rejects /etc/sudoers.d/10-devcluster-path"
  cat >/etc/profile.d/devcluster-path.sh <<'EOF'
case ":$PATH:" in
  *:/usr/local/bin:*) ;;
  *) PATH="/usr/local/sbin:/usr/local/bin:$PATH" ;;
esac
EOF
}

configure_repos() {
  # The Photon download host moved; repo files baked into packages still name
  # the old one, which now answers 404.
  local repo
  for repo in /etc/yum.repos.d/*.repo; do
    [[ -f $repo ]] || continue
    sed -i 's|packages\.vmware\.com|packages.broadcom.com|g' "$repo"
  done
}

configure_grub() {
  local grub_cfg=/boot/grub2/grub.cfg
  [[ -f $grub_cfg ]] || die "$grub_cfg missing: photon-os-installer writes it before post-install scripts run"
  sed -i 's/^set timeout=.*/set timeout=0/' "$grub_cfg"
  grep -qx 'set timeout=0' "$grub_cfg" || die "could not set the GRUB timeout to 0 in $grub_cfg"
}

# The installer builds the initrd in a container, where Photon's mkinitrd makes
# it generic; make that explicit so a disk moved between hypervisors still finds
# its root device, and check the drivers really are inside.
rebuild_initrd() {
  local add="" mod kver initrd listing found=0
  for mod in "${INITRD_MODULES[@]}"; do add+=" $mod"; done
  cat >/etc/dracut.conf.d/90-devcluster.conf <<EOF
# devcluster: one image boots on QEMU, HyperKit, Hyper-V, VirtualBox and VMware.
hostonly="no"
add_drivers+="$add "
EOF
  for kver in /lib/modules/*; do
    kver=${kver##*/}
    [[ -f /boot/vmlinuz-$kver ]] || continue
    found=1
    initrd=/boot/initrd.img-$kver
    mkinitrd -q --no-hostonly "$initrd" "$kver" || die "mkinitrd failed for kernel $kver"
    listing=$(lsinitrd "$initrd") || die "lsinitrd cannot read $initrd"
    for mod in "${INITRD_MODULES[@]}"; do
      grep -Eq "/${mod}\.ko(\.(xz|zst|gz))?\$" <<<"$listing" || die "$initrd lacks kernel module $mod"
    done
  done
  [[ $found == 1 ]] || die "no kernel found in /boot"
}

enable_units() {
  local unit units=()
  for unit in "${ENABLED_UNITS[@]}"; do
    [[ -f /usr/lib/systemd/system/$unit || -f /lib/systemd/system/$unit || -f /etc/systemd/system/$unit ]] ||
      die "unit $unit not found: is its package in kickstart.json?"
  done
  # cloud-init's network stage is cloud-init.service up to 24.2 and
  # cloud-init-network.service after; enable whichever this release ships.
  for unit in cloud-init-local.service cloud-init.service cloud-init-network.service cloud-config.service cloud-final.service; do
    if [[ -f /usr/lib/systemd/system/$unit || -f /lib/systemd/system/$unit ]]; then
      units+=("$unit")
    fi
  done
  [[ ${#units[@]} -ge 3 ]] || die "cloud-init systemd units not found"
  systemctl enable "${ENABLED_UNITS[@]}" "${units[@]}"
  # Photon's hyper-v preset disables hv_kvp_daemon; check the links exist now.
  # (systemd 253 as Photon builds it applies first-boot presets in enable-only
  # mode, so they cannot undo this.)
  local state
  for unit in "${ENABLED_UNITS[@]}"; do
    state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
    [[ $state == enabled ]] || die "$unit is $state, not enabled"
  done
  # cloud-init units without an [Install] section are pulled in by others.
  for unit in "${units[@]}"; do
    state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
    [[ $state == enabled || $state == static ]] || die "$unit is $state, not enabled"
  done
}

write_image_info() {
  install -d -m 0755 /usr/lib/devcluster
  cat >/usr/lib/devcluster/image-info <<EOF
NAME=photon-5
PHOTON_RELEASE=${PIN[PHOTON_RELEASE]}
INSTALLER_COMMIT=${PIN[POI_COMMIT]}
EOF
}

# Every clone must generate its own machine-id (and with it its DHCP DUID).
reset_identity() {
  : >/etc/machine-id
  rm -f /var/lib/systemd/random-seed /var/lib/dbus/machine-id
  rm -f /root/.bash_history
}

main() {
  require_image_root
  load_versions "$VERSIONS_FILE"
  refuse_distro_runtime
  order_runtime_after_firewall
  configure_kernel
  configure_firewall
  configure_cloud_init
  configure_sshd
  configure_network
  configure_paths
  configure_repos
  configure_grub
  rebuild_initrd
  enable_units
  write_image_info
  reset_identity
  log "done"
}

main "$@"
