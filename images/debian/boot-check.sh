#!/usr/bin/env bash
# Boots an image made by build.sh under QEMU, the way devcluster does (direct
# kernel boot, a qcow2 overlay on the image, a NoCloud seed with an injected
# SSH host key), and checks the guest contract from inside over SSH.
# Commands in single quotes are scripts for the guest's shell, not the host's:
# shellcheck disable=SC2016,SC2029
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: boot-check.sh IMAGE_DIR [--accel tcg|kvm] [--grow 2G] [--network dhcp|static] [--port N]
                     [--boots N] [--keep DIR]

  IMAGE_DIR          directory with disk.qcow2, vmlinuz, initrd.img, manifest.json
  --accel            tcg (software emulation, the default) or kvm
  --grow SIZE        grow the overlay by SIZE before the first boot (default 2G)
  --network          network-config in the seed: DHCP (default) or the static
                     address QEMU's user network would have handed out
  --port N           host port forwarded to the guest's SSH (default 10022)
  --boots N          boot the same VM N times (default 1); later boots check that
                     identity and host key survive
  --keep DIR         keep overlay, seed, keys and console log in DIR
EOF
}

say() { printf 'boot-check: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

image="" accel=tcg grow=2G network=dhcp port=10022 boots=1 keep=""
while (($#)); do
  case $1 in
    --accel | --grow | --network | --port | --boots | --keep)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --accel) accel=$2 ;; --grow) grow=$2 ;; --network) network=$2 ;;
        --port) port=$2 ;; --boots) boots=$2 ;; --keep) keep=$2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) image=$1; shift ;;
  esac
done
[[ -n $image && -f $image/manifest.json ]] || { usage >&2; die "IMAGE_DIR with a manifest.json is required"; }
[[ $accel == tcg || $accel == kvm ]] || die "--accel tcg|kvm"
[[ $network == dhcp || $network == static ]] || die "--network dhcp|static"
[[ $boots =~ ^[1-9][0-9]*$ ]] || die "--boots N"
# As root, the whole check runs in a network namespace of its own holding
# only a loopback interface: the guest gets QEMU's full user network (DHCP
# with a gateway and DNS, as devcluster gives it) and still cannot reach
# anything. Otherwise QEMU's restrict=on isolates it, and DHCP then hands
# out no gateway or DNS server.
if ((EUID == 0)) && [[ ${BOOT_CHECK_NETNS:-} != 1 ]] && command -v unshare >/dev/null; then
  export BOOT_CHECK_NETNS=1
  exec unshare --net -- "$0" "$image" --accel "$accel" --grow "$grow" --network "$network" \
    --port "$port" --boots "$boots" ${keep:+--keep "$keep"}
fi
restrict=on
if [[ ${BOOT_CHECK_NETNS:-} == 1 ]]; then
  ip link set lo up
  restrict=off
fi

for tool in qemu-system-x86_64 qemu-img genisoimage ssh ssh-keygen ssh-keyscan jq; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

image=$(cd "$image" && pwd)
cmdline=$(jq -r .kernelCmdline "$image/manifest.json")
base_size=$(jq -r .formats.qcow2.virtualSize "$image/manifest.json")

if [[ -n $keep ]]; then
  mkdir -p "$keep"
  dir=$(cd "$keep" && pwd)
else
  dir=$(mktemp -d)
fi
qemu_pid=""
finish() {
  local status=$?
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if ((status != 0)); then
    say "console log (last 40 lines):"
    tail -n 40 "$dir/console.log" 2>/dev/null >&2 || true
  fi
  [[ -n $keep ]] || rm -rf "$dir"
}
trap finish EXIT

# Keys: the client's login key, and the guest's host key made here and
# injected through the seed so the very first connection is already pinned.
rm -f "$dir/id_ed25519" "$dir/host_ed25519"{,.pub}
ssh-keygen -q -t ed25519 -N '' -C devcluster-boot-check -f "$dir/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C devcluster-host -f "$dir/host_ed25519"
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" >"$dir/known_hosts"

mac=52:54:00:12:34:56
mkdir -p "$dir/seed"
{
  echo '#cloud-config'
  echo 'hostname: devcluster-check'
  echo 'fqdn: devcluster-check'
  echo 'preserve_hostname: false'
  echo 'disable_root: true'
  echo 'ssh_pwauth: false'
  echo 'users:'
  echo '  - name: devcluster'
  echo '    shell: /bin/bash'
  echo '    lock_passwd: true'
  echo '    sudo: "ALL=(ALL) NOPASSWD:ALL"'
  echo "    ssh_authorized_keys: [\"$(cat "$dir/id_ed25519.pub")\"]"
  echo 'ssh_deletekeys: false'
  echo 'ssh_keys:'
  echo '  ed25519_private: |'
  sed 's/^/    /' "$dir/host_ed25519"
  echo "  ed25519_public: \"$(cat "$dir/host_ed25519.pub")\""
  echo 'runcmd:'
  echo '  - set -e'
  echo '  - [mkdir, -p, /var/lib/devcluster]'
  echo '  - [touch, /var/lib/devcluster/ready]'
} >"$dir/seed/user-data"
printf 'instance-id: boot-check-%s\nlocal-hostname: devcluster-check\n' "$(date +%s)" >"$dir/seed/meta-data"
if [[ $network == static ]]; then
  # QEMU's user network: guest 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3.
  cat >"$dir/seed/network-config" <<EOF
version: 2
ethernets:
  eth0:
    match: { macaddress: "$mac" }
    dhcp4: false
    addresses: [10.0.2.15/24]
    routes: [ { to: 0.0.0.0/0, via: 10.0.2.2 } ]
    nameservers: { addresses: [10.0.2.3] }
EOF
else
  cat >"$dir/seed/network-config" <<EOF
version: 2
ethernets:
  eth0:
    match: { macaddress: "$mac" }
    dhcp4: true
EOF
fi
genisoimage -quiet -V cidata -J -R -o "$dir/seed.iso" \
  "$dir/seed/user-data" "$dir/seed/meta-data" "$dir/seed/network-config"

rm -f "$dir/overlay.qcow2"
qemu-img create -q -f qcow2 -F qcow2 -b "$image/disk.qcow2" "$dir/overlay.qcow2"
qemu-img resize -q "$dir/overlay.qcow2" "+$grow"

ssh_opts=(-i "$dir/id_ed25519" -p "$port" -o UserKnownHostsFile="$dir/known_hosts"
  -o StrictHostKeyChecking=yes -o HostKeyAlgorithms=ssh-ed25519 -o IdentitiesOnly=yes
  -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR)
guest() { ssh "${ssh_opts[@]}" devcluster@127.0.0.1 "$@"; }

boot() { # $1: boot number
  local console=$dir/console-$1.log
  ln -sfn "console-$1.log" "$dir/console.log"
  local accel_opt=(-accel "tcg,thread=multi" -cpu max)
  [[ $accel == kvm ]] && accel_opt=(-accel kvm -cpu host)
  started=$(date +%s.%N)
  # The devices and options devcluster's QEMU driver uses.
  qemu-system-x86_64 -nodefaults -display none -no-reboot -machine q35 "${accel_opt[@]}" -smp 2 -m 2048 \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$cmdline" \
    -drive "if=virtio,file=$dir/overlay.qcow2,format=qcow2,cache=writeback,discard=unmap" \
    -drive "if=virtio,file=$dir/seed.iso,format=raw,readonly=on,media=disk" \
    -device virtio-rng-pci \
    -netdev "user,id=n0,restrict=$restrict,hostfwd=tcp:127.0.0.1:$port-:22" \
    -device "virtio-net-pci,netdev=n0,mac=$mac" \
    -chardev "file,id=serial0,path=$console" -serial chardev:serial0 \
    </dev/null >"$dir/qemu-$1.log" 2>&1 &
  qemu_pid=$!
  local deadline=$((SECONDS + 900))
  until guest true 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || die "QEMU exited during boot $1 (see $dir/qemu-$1.log)"
    ((SECONDS < deadline)) || die "no SSH login within 900 s on boot $1"
    sleep 1
  done
  ssh_at=$(date +%s.%N)
  say "boot $1: SSH login after $(awk -v a="$started" -v b="$ssh_at" 'BEGIN { printf "%.1f", b - a }') s"
}

# Each check is one shell script run by the guest's login shell.
check() { # description, script that must succeed in the guest
  local out
  if out=$(guest "$2" 2>&1); then
    say "ok   $1${out:+: $(echo "$out" | tr '\n' ' ' | cut -c1-160)}"
  else
    say "FAIL $1: $out"
    failures=$((failures + 1))
  fi
}

failures=0
machine_id=""
for ((n = 1; n <= boots; n++)); do
  boot "$n"
  # The host key was pinned before the first connection; BatchMode and
  # StrictHostKeyChecking=yes mean the login above already proved it matched.
  scanned=$(ssh-keyscan -p "$port" -t ed25519 127.0.0.1 2>/dev/null | cut -d' ' -f2,3)
  [[ $scanned == "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" ]] || die "host key differs from the injected one: $scanned"
  say "ok   presented host key equals the injected one"
  check "cloud-init finished" 'cloud-init status --wait --long && cloud-init status | grep -qx "status: done"'
  check "readiness marker" 'test -f /var/lib/devcluster/ready'
  check "sshd active" 'systemctl is-active ssh'
  check "kernel modules" 'lsmod | grep -E "^(overlay|br_netfilter) " | cut -d" " -f1 | sort | tr "\n" " "; test "$(lsmod | grep -cE "^(overlay|br_netfilter) ")" = 2'
  check "sysctls" '/sbin/sysctl net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables | tr "\n" " "; test "$(cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables | tr -d "\n")" = 11'
  check "no swap" 'test "$(wc -l </proc/swaps)" = 1'
  check "tools kubeadm and kube-proxy look for" 'for t in iptables ip6tables conntrack socat ethtool modprobe; do command -v $t >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done'
  check "root fs grew past the image size" "size=\$(df -B1 --output=size / | tail -n1); echo \$size bytes; test \$size -gt $base_size"
  check "root fsck ran in the initramfs" 'sudo grep -h "^devcluster-root:" /run/initramfs/fsck.log'
  check "root by label on /dev/vda" 'findmnt -no SOURCE,FSTYPE,OPTIONS /; test "$(findmnt -no SOURCE /)" = /dev/vda'
  check "only the injected host key" 'ls /etc/ssh/ssh_host_*; test "$(ls /etc/ssh/ssh_host_*_key)" = /etc/ssh/ssh_host_ed25519_key'
  check "password login refused" 'sudo sshd -T | grep -E "^(passwordauthentication|kbdinteractiveauthentication) " | tr "\n" " "; sudo sshd -T | grep -qx "passwordauthentication no"'
  check "root has no password" 'test "$(sudo getent shadow root | cut -d: -f2)" = "*"'
  check "hostname from the seed" 'hostname; test "$(hostname)" = devcluster-check && getent hosts devcluster-check'
  if [[ $restrict == off || $network == static ]]; then
    check "DNS server from the network config" 'grep "^nameserver" /etc/resolv.conf; grep -qx "nameserver 10.0.2.3" /etc/resolv.conf'
    check "default route" 'ip route show default; ip route show default | grep -q "via 10.0.2.2"'
  fi
  check "no failed units" 'failed=$(systemctl --failed --no-legend); echo "$failed"; test -z "$failed"'
  check "machine-id set" 'cat /etc/machine-id; test -s /etc/machine-id' 
  id_now=$(guest cat /etc/machine-id)
  if [[ -n $machine_id && $id_now != "$machine_id" ]]; then
    say "FAIL machine-id changed between boots"
    failures=$((failures + 1))
  fi
  machine_id=$id_now
  guest 'systemd-analyze 2>/dev/null; cloud-init analyze show 2>/dev/null | grep -E "^Finished stage|^Total Time"; systemd-analyze blame 2>/dev/null | head -n 12' |
    sed 's/^/boot-check:      /' >&2 || true
  guest sudo systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$qemu_pid" 2>/dev/null; then
    say "FAIL guest did not power off within 120 s"
    failures=$((failures + 1))
  fi
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
done

((failures == 0)) || die "$failures check(s) failed"
say "all checks passed"
