#!/usr/bin/env bash
# Builds the devcluster Debian guest image from Debian's packages: an ext4
# filesystem that is the whole disk (no partition table, no bootloader), plus
# the kernel and initrd for QEMU's direct kernel boot. See README.md.
set -euo pipefail
umask 022

readonly ROOT_LABEL=devcluster-root
readonly KERNEL_CMDLINE="root=LABEL=${ROOT_LABEL} rw console=ttyS0,115200n8 net.ifnames=0"
readonly DEFAULT_MIRROR=http://deb.debian.org/debian
readonly DEFAULT_SECURITY_MIRROR=http://deb.debian.org/debian-security
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# What the guest needs beyond Debian's required set, grouped by why.
readonly PACKAGES=(
  # boot and init: systemd as PID 1, udev for devices, dbus for systemd's APIs
  # (the systemd cgroup driver of runc and the kubelet talks to systemd over it)
  linux-image-cloud-amd64 initramfs-tools zstd systemd systemd-sysv udev dbus libpam-systemd
  # first boot and login: cloud-init reads the NoCloud seed; sshd with keys only
  cloud-init openssh-server sudo
  # network: cloud-init on Debian 12 renders network-config for ifupdown;
  # resolvconf applies the nameservers of static configurations, and net-tools
  # provides the "route" command cloud-init writes static routes with (the
  # default route included)
  ifupdown isc-dhcp-client resolvconf net-tools iproute2 netbase ca-certificates curl
  # Kubernetes node, OS side only: the tools kubeadm's preflight and kube-proxy's
  # host checks look for. containerd, runc, the CNI plugins and Kubernetes come
  # from devcluster's node bundle, installed at start, so one guest image
  # serves every Kubernetes version.
  iptables ipset conntrack socat ethtool kmod e2fsprogs lz4
)

usage() {
  cat <<EOF
Usage: build.sh --out DIR [--mirror URL] [--security-mirror URL|none] [--size 3G] [--suite bookworm]

Builds the devcluster Debian guest image into DIR: disk.qcow2, vmlinuz,
initrd.img and manifest.json (written last). Needs root.

  --out DIR               where the image goes (created if missing)
  --mirror URL            Debian mirror (default: the first URI of this host's
                          Debian apt sources, else ${DEFAULT_MIRROR})
  --security-mirror URL   security mirror, or "none" to leave it out (default:
                          this host's debian-security URI, else ${DEFAULT_SECURITY_MIRROR})
  --size SIZE             size of the root filesystem, e.g. 3G or 4096M (default 3G);
                          the guest grows it to fill a larger disk at boot
  --suite SUITE           Debian suite (default bookworm)
EOF
}

# Exit codes: 2 a wrong argument, 5 this host lacks something the build needs
# (a tool, root, x86_64), 1 or the failing tool's own code for anything else.
readonly EXIT_USAGE=2 EXIT_HOST=5
say() { printf 'build.sh: %s\n' "$*" >&2; }
die() { say "error: $1"; exit "${2:-1}"; }

# The first URI of an apt source on this host, in deb822 (.sources) or
# one-line (.list) format. $1: file, $2: "security" to pick the entry for the
# security suite, "main" for any other.
host_source_uri() {
  local file=$1 kind=$2
  [[ -r $file ]] || return 0
  if [[ $file == *.sources ]]; then
    awk -v kind="$kind" '
      function flush() {
        if (uri != "" && ((kind == "security") == (suites ~ /-security/)) && found == "") found = uri
        uri = ""; suites = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/   { uri = $2 }
      /^Suites:/ { $1 = ""; suites = $0 }
      END { flush(); if (found != "") print found }
    ' "$file"
  else
    awk -v kind="$kind" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ((kind == "security") == ($(i + 1) ~ /-security/)) { print $i; exit }
      }
    ' "$file"
  fi
}

# Host sources count only where they are Debian's: debian.sources by name,
# sources.list only on a Debian host (an Ubuntu mirror would not do).
host_mirror() {
  local kind=$1 uri=""
  uri=$(host_source_uri /etc/apt/sources.list.d/debian.sources "$kind")
  if [[ -z $uri ]] && grep -qs '^ID=debian$' /etc/os-release; then
    uri=$(host_source_uri /etc/apt/sources.list "$kind")
  fi
  [[ $uri == http://* || $uri == https://* ]] && printf '%s\n' "${uri%/}"
  return 0
}

check_tools() {
  local missing=() entry tool package
  for entry in mmdebstrap:mmdebstrap mke2fs:e2fsprogs e2fsck:e2fsprogs qemu-img:qemu-utils \
    jq:jq unshare:util-linux flock:util-linux dpkg-query:dpkg sha256sum:coreutils; do
    tool=${entry%%:*} package=${entry#*:}
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool (package $package)")
  done
  [[ -r $KEYRING ]] || missing+=("$KEYRING (package debian-archive-keyring)")
  if ((${#missing[@]})); then
    die "missing: ${missing[*]}" "$EXIT_HOST"
  fi
  # mke2fs learned -d (populate from a directory) in e2fsprogs 1.43.
  local version
  version=$(mke2fs -V 2>&1 | awk '/^mke2fs/ { print $2; exit }')
  if ! printf '1.43\n%s\n' "$version" | sort -V -C; then
    die "mke2fs $version cannot populate a filesystem from a directory (-d); e2fsprogs 1.43 or later is needed" "$EXIT_HOST"
  fi
}

out="" mirror="" security_mirror="" size=3G suite=bookworm
while (($#)); do
  case $1 in
    --out | --mirror | --security-mirror | --size | --suite)
      (($# >= 2)) || die "$1 needs a value (see --help)" "$EXIT_USAGE"
      case $1 in
        --out) out=$2 ;;
        --mirror) mirror=${2%/} ;;
        --security-mirror) security_mirror=${2%/} ;;
        --size) size=$2 ;;
        --suite) suite=$2 ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" "$EXIT_USAGE" ;;
  esac
done

[[ -n $out ]] || { usage >&2; die "--out DIR is required" "$EXIT_USAGE"; }
[[ $size =~ ^[1-9][0-9]*[KMGT]?$ ]] || die "--size $size: expected a number with an optional K, M, G or T suffix, e.g. 3G" "$EXIT_USAGE"
[[ $suite =~ ^[a-z]+$ ]] || die "--suite $suite: expected a Debian codename such as bookworm" "$EXIT_USAGE"
[[ -z $mirror || $mirror =~ ^https?:// ]] || die "--mirror $mirror: expected an http:// or https:// URL" "$EXIT_USAGE"
[[ -z $security_mirror || $security_mirror == none || $security_mirror =~ ^https?:// ]] ||
  die "--security-mirror $security_mirror: expected an http:// or https:// URL, or none" "$EXIT_USAGE"
((EUID == 0)) || die "needs root (mmdebstrap installs packages as root and mke2fs must record root ownership)" "$EXIT_HOST"
[[ $(uname -m) == x86_64 ]] || die "builds amd64 images on an x86_64 host only (this host is $(uname -m))" "$EXIT_HOST"
check_tools

[[ -n $mirror ]] || mirror=$(host_mirror main)
[[ -n $mirror ]] || mirror=$DEFAULT_MIRROR
[[ -n $security_mirror ]] || security_mirror=$(host_mirror security)
[[ -n $security_mirror ]] || security_mirror=$DEFAULT_SECURITY_MIRROR

# The mmdebstrap hooks find the overlay tree and customize.sh through this.
DEVCLUSTER_IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DEVCLUSTER_IMAGE_DIR
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One build per output directory at a time (the lock is on the directory).
exec 9<"$out"
flock -n 9 || die "another build is writing to $out"

work=$(mktemp -d "$out/.build.XXXXXX")
# apt downloads as the unprivileged _apt user, which must reach the tree.
chmod 0755 "$work"
cleanup() {
  local status=$?
  # The guest tree was only ever mounted into inside a private namespace, so
  # nothing below $work is a mount point here; --one-file-system guards anyway.
  rm -rf --one-file-system "$work"
  ((status == 0)) || say "failed; nothing in $out was changed"
}
trap cleanup EXIT
# mmdebstrap runs in the background so that a signal is handled at once, not
# when the package installation is over. Killing unshare kills everything in
# its PID namespace, and with the last process the namespace's mounts go too.
bootstrap_pid=""
on_signal() {
  [[ -z $bootstrap_pid ]] || kill -KILL "$bootstrap_pid" 2>/dev/null || true
  exit 130
}
trap on_signal INT TERM HUP

started=$(date +%s)
rootdir=$work/root
sources=("deb $mirror $suite main" "deb $mirror $suite-updates main")
[[ $security_mirror == none ]] || sources+=("deb $security_mirror $suite-security main")
say "building Debian $suite from $mirror$([[ $security_mirror == none ]] || echo " and $security_mirror")"

# mmdebstrap's root mode mounts /proc, /sys and /dev into the guest tree. The
# private mount and PID namespaces keep those mounts (and any daemon a
# maintainer script starts) away from the host and end them with the build.
# The hooks are single-quoted on purpose: mmdebstrap runs them under sh,
# with $1 set to the guest tree.
include=$(IFS=,; echo "${PACKAGES[*]}")
# shellcheck disable=SC2016
unshare --mount --propagation private --pid --fork --kill-child -- \
  mmdebstrap --mode=root --variant=minbase --architectures=amd64 --format=directory \
  --keyring="$KEYRING" \
  --include="$include" \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --setup-hook='cp -r --no-preserve=ownership "$DEVCLUSTER_IMAGE_DIR"/rootfs/. "$1"/' \
  --customize-hook='"$DEVCLUSTER_IMAGE_DIR"/customize.sh "$1"' \
  "$suite" "$rootdir" "${sources[@]}" \
  </dev/null &
bootstrap_pid=$!
wait "$bootstrap_pid"
bootstrap_pid=""
debootstrapped=$(date +%s)

# What went in, for the manifest.
pkgver() { dpkg-query --admindir="$rootdir/var/lib/dpkg" -W -f='${Version}' "$1"; }
kernels=("$rootdir"/boot/vmlinuz-*)
if ((${#kernels[@]} != 1)) || [[ ! -f ${kernels[0]} ]]; then
  die "expected one kernel in the guest's /boot, found: ${kernels[*]}"
fi
kernel_release=${kernels[0]##*/vmlinuz-}
[[ -f $rootdir/boot/initrd.img-$kernel_release ]] || die "the guest has no initrd for kernel $kernel_release"
debian_version=$(<"$rootdir/etc/debian_version")
[[ $debian_version =~ ^[0-9]+ ]] || die "unexpected /etc/debian_version in the guest: $debian_version"
name=debian-${BASH_REMATCH[0]}
build_epoch=${SOURCE_DATE_EPOCH:-$started}
version=$debian_version-$(date -u -d "@$build_epoch" +%Y%m%d)

cp "${kernels[0]}" "$work/vmlinuz"
cp "$rootdir/boot/initrd.img-$kernel_release" "$work/initrd.img"

# The filesystem is the whole disk: a sparse file formatted and filled in one
# go by mke2fs, so no loop device or mount is ever needed. Inode tables and
# journal are initialised now rather than lazily by the guest's first boot.
used_mib=$(du -sm --apparent-size "$rootdir" | cut -f1)
say "guest tree is ${used_mib} MiB; making a $size ext4 filesystem"
truncate -s "$size" "$work/disk.raw"
mke2fs -q -t ext4 -L "$ROOT_LABEL" -d "$rootdir" -E lazy_itable_init=0,lazy_journal_init=0 \
  -F "$work/disk.raw" ||
  die "mke2fs failed; if the tree does not fit, give a larger --size than $size"
fsck_report=$(e2fsck -f -n "$work/disk.raw" 2>&1) || die "the new filesystem does not pass e2fsck: $fsck_report"
qemu-img convert -c -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
rm -f "$work/disk.raw"

describe() { # file -> {file, sha256, size}
  jq -n --arg file "$1" --arg sha256 "$(sha256sum "$work/$1" | cut -d' ' -f1)" \
    --argjson size "$(stat -c %s "$work/$1")" '{file: $file, sha256: $sha256, size: $size}'
}
jq -n \
  --arg name "$name" --arg version "$version" --arg suite "$suite" \
  --argjson qcow2 "$(describe disk.qcow2)" --argjson kernel "$(describe vmlinuz)" \
  --argjson initrd "$(describe initrd.img)" \
  --argjson virtualSize "$(qemu-img info --output=json "$work/disk.qcow2" | jq '."virtual-size"')" \
  --arg cmdline "$KERNEL_CMDLINE" --arg rootLabel "$ROOT_LABEL" \
  --arg debian "$debian_version" --arg kernelRelease "$kernel_release" \
  --arg kernelPackage "$(pkgver "linux-image-$kernel_release")" \
  --arg iptables "$(pkgver iptables)" --arg cloudinit "$(pkgver cloud-init)" \
  --arg openssh "$(pkgver openssh-server)" --arg systemd "$(pkgver systemd)" \
  --arg builtAt "$(date -u -d "@$build_epoch" +%Y-%m-%dT%H:%M:%SZ)" \
  '{
    name: $name,
    version: $version,
    suite: $suite,
    formats: { qcow2: ($qcow2 + {virtualSize: $virtualSize}), kernel: $kernel, initrd: $initrd },
    kernelCmdline: $cmdline,
    rootLabel: $rootLabel,
    packages: {
      debian: $debian,
      kernel: $kernelRelease,
      "linux-image": $kernelPackage,
      iptables: $iptables,
      "cloud-init": $cloudinit,
      "openssh-server": $openssh,
      systemd: $systemd
    },
    builtAt: $builtAt
  }' >"$work/manifest.json"

# Publish: the old manifest goes first and the new one last, so a manifest in
# $out always describes the files beside it.
rm -f "$out/manifest.json"
mv -f "$work/disk.qcow2" "$work/vmlinuz" "$work/initrd.img" "$out/"
mv -f "$work/manifest.json" "$out/manifest.json"

finished=$(date +%s)
say "done in $((finished - started)) s (packages $((debootstrapped - started)) s, disk $((finished - debootstrapped)) s)"
say "$out: disk.qcow2 $(du -h --apparent-size "$out/disk.qcow2" | cut -f1), vmlinuz, initrd.img, manifest.json"
