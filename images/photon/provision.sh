#!/bin/bash
# Turns a fresh Photon OS 5 root file system into the devcluster guest.
#
# photon-os-installer runs this as a "postinstallscripts" entry, chrooted into
# the image it is building (see kickstart.json), after the packages, GRUB and
# fstab are in place. build.sh stages the pinned runtime artifacts and
# versions.env under /tmp/devcluster through the kickstart's "additional_files";
# /tmp is a tmpfs during the install, so none of it ends up in the image.
#
# Nothing here downloads anything: every artifact was fetched by build.sh and is
# checked again against the sha256 pinned in versions.env before it is used.
set -euo pipefail
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

STAGE_DIR=${DEVCLUSTER_STAGE_DIR:-/tmp/devcluster}
VERSIONS_FILE=$STAGE_DIR/versions.env
PAYLOAD_DIR=$STAGE_DIR/payload

# Kernel modules that must be in the initrd whatever hypervisor boots the disk:
# virtio (QEMU, HyperKit), Hyper-V storage/network, NVMe, and the LSI Logic SCSI
# controller the OVA declares. AHCI, PIIX, PVSCSI and virtio-pci are built in.
INITRD_MODULES=(virtio_blk virtio_scsi virtio_net nvme hv_vmbus hv_storvsc hv_netvsc mptspi)

# Units the guest contract needs at boot. cloud-init's own units are handled
# separately because their names changed across cloud-init releases.
ENABLED_UNITS=(sshd.service containerd.service hv_kvp_daemon.service vmtoolsd.service
  iptables.service systemd-networkd.service systemd-resolved.service)

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
      *_SHA256) [[ $value =~ ^[0-9a-f]{64}$ ]] || die "$file:$n: $key must be 64 lowercase hex digits" ;;
      *_VERSION | PHOTON_RELEASE) [[ $value =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "$file:$n: $key is not a version" ;;
      POI_COMMIT) [[ $value =~ ^[0-9a-f]{40}$ ]] || die "$file:$n: POI_COMMIT must be a full 40-digit commit id" ;;
      POI_REPO) [[ $value =~ ^https://[^[:space:]]+$ ]] || die "$file:$n: POI_REPO must be an https URL" ;;
      *) die "$file:$n: unknown key $key" ;;
    esac
    PIN[$key]=$value
  done <"$file"
  for key in CONTAINERD_VERSION CONTAINERD_SHA256 RUNC_VERSION RUNC_SHA256 \
    CNI_PLUGINS_VERSION CNI_PLUGINS_SHA256 CRICTL_VERSION CRICTL_SHA256; do
    [[ -n ${PIN[$key]:-} ]] || die "$file does not set $key"
  done
}

verify_sha256() {
  local file=$1 expected=$2 actual
  [[ -f $file ]] || die "payload file $file is missing"
  actual=$(sha256sum "$file")
  actual=${actual%% *}
  [[ $actual == "$expected" ]] || die "$file: sha256 is $actual, versions.env pins $expected; refusing to install it"
}

# The minimal metapackage would pull docker, and with it Photon's containerd
# 1.6 and runc 1.1; kickstart.json leaves it out on purpose. Two runtimes on
# one PATH is a trap, so stop the build if one slipped in anyway.
refuse_distro_runtime() {
  local pkg
  for pkg in docker docker-engine containerd runc cni cri-tools; do
    if rpm -q --quiet "$pkg"; then
      die "Photon package $pkg is installed; the image must carry only the pinned upstream runtime (check kickstart.json packages)"
    fi
  done
}

install_runtime() {
  local tmp
  verify_sha256 "$PAYLOAD_DIR/containerd.tar.gz" "${PIN[CONTAINERD_SHA256]}"
  verify_sha256 "$PAYLOAD_DIR/runc.amd64" "${PIN[RUNC_SHA256]}"
  verify_sha256 "$PAYLOAD_DIR/cni-plugins.tgz" "${PIN[CNI_PLUGINS_SHA256]}"
  verify_sha256 "$PAYLOAD_DIR/crictl.tar.gz" "${PIN[CRICTL_SHA256]}"

  tmp=$(mktemp -d)
  tar -xzf "$PAYLOAD_DIR/containerd.tar.gz" -C "$tmp" --no-same-owner
  [[ -x $tmp/bin/containerd && -x $tmp/bin/containerd-shim-runc-v2 ]] ||
    die "containerd archive does not contain bin/containerd and bin/containerd-shim-runc-v2"
  install -d -m 0755 /usr/local/bin /usr/local/sbin /opt/cni/bin /etc/cni/net.d
  install -m 0755 "$tmp"/bin/* /usr/local/bin/
  rm -rf "$tmp"

  install -m 0755 "$PAYLOAD_DIR/runc.amd64" /usr/local/sbin/runc
  tar -xzf "$PAYLOAD_DIR/cni-plugins.tgz" -C /opt/cni/bin --no-same-owner
  tar -xzf "$PAYLOAD_DIR/crictl.tar.gz" -C /usr/local/bin --no-same-owner crictl
  chown -R root:root /opt/cni/bin
  chmod 0755 /usr/local/bin/crictl

  local plugin
  for plugin in bridge host-local portmap firewall loopback; do
    [[ -x /opt/cni/bin/$plugin ]] || die "CNI plugin $plugin missing from the cni-plugins archive"
  done

  # The binaries report their own versions; a mismatch means the pin and the
  # payload disagree even though the digest matched (wrong pin edited).
  local reported
  reported=$(/usr/local/bin/containerd --version)
  [[ $reported == *" v${PIN[CONTAINERD_VERSION]} "* ]] ||
    die "containerd --version reports '$reported', expected v${PIN[CONTAINERD_VERSION]}"
  reported=$(/usr/local/sbin/runc --version)
  [[ $reported == *"runc version ${PIN[RUNC_VERSION]}"* ]] ||
    die "runc --version reports '$reported', expected ${PIN[RUNC_VERSION]}"
  reported=$(/usr/local/bin/crictl --version)
  [[ $reported == *"v${PIN[CRICTL_VERSION]}"* ]] ||
    die "crictl --version reports '$reported', expected v${PIN[CRICTL_VERSION]}"
}

configure_containerd() {
  install -d -m 0755 /etc/containerd
  cat >/etc/containerd/config.toml <<'EOF'
# devcluster: containerd 2.x (config version 3). The kubelet uses the systemd
# cgroup driver, so runc must too; everything else keeps containerd's defaults
# (CNI binaries in /opt/cni/bin, configs in /etc/cni/net.d).
version = 3

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = '/usr/local/sbin/runc'
  SystemdCgroup = true
EOF

  # Photon's iptables.service flushes every table when it starts; containerd
  # and the kubelet must come up after it, or their NAT rules are wiped.
  cat >/etc/systemd/system/containerd.service <<'EOF'
[Unit]
Description=containerd container runtime (devcluster)
Documentation=https://containerd.io
After=network.target local-fs.target dbus.service iptables.service
Wants=iptables.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
EOF

  install -d -m 0755 /etc/systemd/system/kubelet.service.d
  cat >/etc/systemd/system/kubelet.service.d/05-devcluster-after-firewall.conf <<'EOF'
# devcluster: see containerd.service. Harmless until a kubelet.service exists.
[Unit]
After=iptables.service containerd.service
Wants=containerd.service
EOF

  cat >/etc/crictl.yaml <<'EOF'
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
EOF

  # containerd parses the file without starting; check the effective value
  # sits in the runc options table, not merely somewhere in the output.
  local dump
  dump=$(/usr/local/bin/containerd --config /etc/containerd/config.toml config dump) ||
    die "containerd rejected /etc/containerd/config.toml"
  awk '
    /^[[:space:]]*\[/ { in_runc = ($0 ~ /runtimes\.runc\.options\]/) }
    in_runc && /^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true/ { found = 1 }
    END { exit found ? 0 : 1 }
  ' <<<"$dump" || die "containerd's effective config does not set SystemdCgroup = true for runc"
}

configure_kernel() {
  cat >/etc/modules-load.d/devcluster-k8s.conf <<'EOF'
overlay
br_netfilter
EOF
  # Sorts after Photon's 50-security-hardening.conf, which sets ip_forward=0.
  cat >/etc/sysctl.d/99-devcluster-k8s.conf <<'EOF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
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
  # Upstream binaries live in /usr/local; sudo and login shells must find them
  # (kubeadm's preflight looks for crictl and conntrack on PATH).
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
PHOTON_RELEASE=${PIN[PHOTON_RELEASE]:-5.0}
CONTAINERD_VERSION=${PIN[CONTAINERD_VERSION]}
RUNC_VERSION=${PIN[RUNC_VERSION]}
CNI_PLUGINS_VERSION=${PIN[CNI_PLUGINS_VERSION]}
CRICTL_VERSION=${PIN[CRICTL_VERSION]}
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
  log "installing containerd ${PIN[CONTAINERD_VERSION]}, runc ${PIN[RUNC_VERSION]}, CNI plugins ${PIN[CNI_PLUGINS_VERSION]}, crictl ${PIN[CRICTL_VERSION]}"
  install_runtime
  configure_containerd
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
