#!/bin/bash
# Runs inside the photon-os-installer container (started by build.sh with
# --privileged -v /dev:/dev). Opens the finished raw disk read-only, checks the
# guest contract on the file system itself, and extracts what direct-kernel
# boots (HyperKit) need.
#
# Usage: inspect-image.sh RAW_IMAGE OUT_DIR
# Writes to OUT_DIR: vmlinuz, initrd, cmdline (one line), kernel-release,
#                    rpms.tsv (NAME<TAB>VERSION-RELEASE, sorted).
# Env:   HOST_UID, HOST_GID - owner to give the results back to.
set -euo pipefail

raw=${1:?raw image}
out=${2:?output directory}
mnt=/mnt/devcluster-inspect
loopdev=""
mounted=0
rpmdb_copy=""
problems=()

cleanup() {
  local rc=$?
  if [[ $mounted == 1 ]]; then umount "$mnt" || true; fi
  if [[ -n $loopdev ]]; then losetup -d "$loopdev" || true; fi
  if [[ -n $rpmdb_copy ]]; then rm -rf "$rpmdb_copy"; fi
  if [[ -n ${HOST_UID:-} && -n ${HOST_GID:-} && -d $out ]]; then
    chown -R "$HOST_UID:$HOST_GID" "$out" || true
  fi
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "inspect-image.sh: $*" >&2
  exit 1
}

problem() {
  problems+=("$*")
}

# Reads KEY=value from a GRUB environment block written by Photon packages.
grub_env_value() {
  local file=$1 key=$2 line
  while IFS= read -r line; do
    if [[ $line == "$key="* ]]; then
      printf '%s' "${line#"$key"=}"
      return 0
    fi
  done <"$file"
  return 1
}

# Resolves a symlink found inside the mounted image against the image root.
in_image() {
  local path=$1 target hops=0
  while [[ -L $mnt$path ]]; do
    ((++hops <= 16)) || fail "symlink loop at $path in the image"
    target=$(readlink "$mnt$path")
    if [[ $target == /* ]]; then path=$target; else path=${path%/*}/$target; fi
  done
  printf '%s' "$mnt$path"
}

[[ -f $raw ]] || fail "raw image $raw not found"
mkdir -p "$out" "$mnt"

loopdev=$(losetup --show -f -P -r "$raw")
# Partition nodes appear asynchronously after losetup -P.
for _ in $(seq 1 50); do
  compgen -G "${loopdev}p*" >/dev/null && break
  sleep 0.2
done

root_part=""
for part in "${loopdev}"p*; do
  [[ -b $part ]] || continue
  [[ "$(blkid -s TYPE -o value "$part" || true)" == ext4 ]] || continue
  mount -o ro,noload "$part" "$mnt"
  mounted=1
  if [[ -e $mnt/boot/photon.cfg ]]; then
    root_part=$part
    break
  fi
  umount "$mnt"
  mounted=0
done
[[ -n $root_part ]] || fail "no ext4 partition with /boot/photon.cfg in $raw"

partuuid=$(blkid -s PARTUUID -o value "$root_part")
[[ -n $partuuid ]] || fail "root partition $root_part has no PARTUUID"

photon_cfg=$(in_image /boot/photon.cfg)
photon_linux=$(grub_env_value "$photon_cfg" photon_linux) || fail "/boot/photon.cfg has no photon_linux"
photon_initrd=$(grub_env_value "$photon_cfg" photon_initrd) || fail "/boot/photon.cfg has no photon_initrd"
photon_cmdline=$(grub_env_value "$photon_cfg" photon_cmdline) || fail "/boot/photon.cfg has no photon_cmdline"
systemd_cmdline=""
if [[ -f $mnt/boot/systemd.cfg ]]; then
  systemd_cmdline=$(grub_env_value "$mnt/boot/systemd.cfg" systemd_cmdline || true)
fi
# grub.cfg falls back to this when systemd.cfg is absent; so must we.
[[ -n $systemd_cmdline ]] || systemd_cmdline="net.ifnames=0"
user_cmdline=""
if [[ -f $mnt/boot/user.cfg ]]; then
  user_cmdline=$(grub_env_value "$mnt/boot/user.cfg" user_cmdline || true)
fi

kernel_release=${photon_linux#vmlinuz-}
[[ -f $mnt/boot/$photon_linux ]] || fail "kernel /boot/$photon_linux missing"
[[ -f $mnt/boot/$photon_initrd ]] || fail "initrd /boot/$photon_initrd missing"

# --- the guest contract, checked on the finished file system ---------------
[[ $kernel_release != *esx* ]] || problem "kernel $kernel_release is the linux-esx flavour; the generic linux kernel is required"
compgen -G "$mnt/usr/lib/modules/$kernel_release/kernel/drivers/block/virtio_blk.ko*" >/dev/null ||
  problem "kernel $kernel_release has no virtio_blk module"
compgen -G "$mnt/usr/lib/modules/$kernel_release/kernel/drivers/hv/hv_vmbus.ko*" >/dev/null ||
  problem "kernel $kernel_release has no hv_vmbus module"
if grep -Eq '^[^#]*[[:space:]]swap[[:space:]]' "$mnt/etc/fstab"; then
  problem "/etc/fstab declares swap"
fi
if compgen -G "$mnt/etc/ssh/ssh_host_*" >/dev/null; then
  problem "SSH host keys are baked into the image"
fi
machine_id=""
if [[ -f $mnt/etc/machine-id ]]; then machine_id=$(tr -d '[:space:]' <"$mnt/etc/machine-id"); fi
[[ -z $machine_id || $machine_id == uninitialized ]] || problem "/etc/machine-id is set ($machine_id)"
grep -Eq '^datasource_list: \[ NoCloud, VMware, None \]$' "$mnt/etc/cloud/cloud.cfg.d/90-devcluster.cfg" ||
  problem "cloud-init datasource_list is not [ NoCloud, VMware, None ]"
grep -qx 'PasswordAuthentication no' "$mnt/etc/ssh/sshd_config.d/10-devcluster.conf" ||
  problem "sshd drop-in does not disable passwords"
for unit in sshd.service hv_kvp_daemon.service vmtoolsd.service iptables.service; do
  [[ -L $mnt/etc/systemd/system/multi-user.target.wants/$unit ]] || problem "$unit is not enabled"
done
grep -qx 'set timeout=0' "$mnt/boot/grub2/grub.cfg" || problem "GRUB timeout is not 0"
grep -q -- '--dport 8443 -j ACCEPT' "$mnt/etc/systemd/scripts/ip4save" || problem "firewall does not open the API server port"
grep -qx 'br_netfilter' "$mnt/etc/modules-load.d/devcluster-kubernetes.conf" || problem "br_netfilter is not loaded at boot"
grep -qx 'net.ipv4.ip_forward = 1' "$mnt/etc/sysctl.d/90-devcluster-kubernetes.conf" || problem "net.ipv4.ip_forward is not set to 1"
for unit in containerd.service kubelet.service; do
  grep -qx 'After=iptables.service' "$mnt/etc/systemd/system/$unit.d/05-devcluster-after-firewall.conf" ||
    problem "$unit is not ordered after iptables.service"
done
# OS only: the node bundle brings the runtime and Kubernetes at start.
for path in usr/local/bin/containerd usr/local/sbin/runc usr/local/bin/crictl usr/local/bin/kubelet \
  usr/bin/containerd usr/bin/runc usr/bin/crictl usr/bin/kubelet opt/cni/bin/bridge etc/containerd/config.toml; do
  [[ ! -e $mnt/$path && ! -L $mnt/$path ]] || problem "/$path is in the image; the node bundle provides it"
done

# rpm may need to write next to a database it opens; query a private copy.
rpmdb_copy=$(mktemp -d)
cp -a "$mnt/usr/lib/sysimage/rpm/." "$rpmdb_copy/"
rpm --dbpath "$rpmdb_copy" -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n' | LC_ALL=C sort >"$out/rpms.tsv"
[[ -s $out/rpms.tsv ]] || fail "could not list the packages installed in the image"
for pkg in docker docker-engine containerd runc cni cri-tools kubernetes kubernetes-kubeadm linux-esx; do
  if grep -q "^${pkg}"$'\t' "$out/rpms.tsv"; then problem "package $pkg is installed"; fi
done
for pkg in linux cloud-init openssh-server sudo hyper-v open-vm-tools iptables ipset conntrack-tools socat ethtool ebtables \
  kmod util-linux e2fsprogs tar cloud-utils; do
  grep -q "^${pkg}"$'\t' "$out/rpms.tsv" || problem "package $pkg is not installed"
done

if ((${#problems[@]} > 0)); then
  printf 'inspect-image.sh: image violates the guest contract: %s\n' "${problems[@]}" >&2
  exit 1
fi

# --- direct-boot artefacts ------------------------------------------------
cp "$mnt/boot/$photon_linux" "$out/vmlinuz"
cp "$mnt/boot/$photon_initrd" "$out/initrd"
printf '%s\n' "$kernel_release" >"$out/kernel-release"
# Same arguments GRUB passes (see /boot/grub2/grub.cfg), in the same order.
cmdline="root=PARTUUID=$partuuid $photon_cmdline $systemd_cmdline $user_cmdline"
read -r -a words <<<"$cmdline"
printf '%s\n' "${words[*]}" >"$out/cmdline"
