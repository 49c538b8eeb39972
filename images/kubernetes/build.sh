#!/usr/bin/env bash
# Builds the devcluster Kubernetes node bundle for linux/amd64 from the Go
# module proxy alone: the Kubernetes binaries from k8s.io/kubernetes used as a
# module dependency, etcd, containerd, runc, crictl, the CNI plugins, CoreDNS
# and pause, then the images kubeadm expects as OCI archives, then manifest.json.
# See README.md.
set -euo pipefail
umask 022

usage() {
  cat <<'EOF'
Usage: build.sh VERSION OUT_DIR [--parts LIST] [--versions FILE]

  VERSION          a Kubernetes release, e.g. v1.37.2
  OUT_DIR          where the bundle goes (created if missing)
  --parts LIST     comma-separated subset of: kubernetes,etcd,containerd,runc,
                   crictl,cni,coredns,pause,images,preload,manifest (default: all,
                   in order; preload needs root and is left out without it)
  --versions FILE  the containerd, runc, crictl and CNI plugin versions for
                   VERSION, in versions.env's form (default: versions.env beside
                   this script, the pins of v1.37.2)

Environment:
  DEVCLUSTER_GO_CACHE  Go module and build caches, kept outside the repository
                       (default /var/cache/devcluster-test/go)
  GOPROXY, GOSUMDB, GOTOOLCHAIN  as for any go command
  BUILD_PARALLEL       go build -p (default: number of CPUs)
EOF
}

say() { printf 'kube-bundle: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
readonly ALL_PARTS=kubernetes,etcd,containerd,runc,crictl,cni,coredns,pause,images,preload,manifest

(($# >= 1)) && [[ $1 == -h || $1 == --help ]] && { usage; exit 0; }
(($# >= 2)) || { usage >&2; exit 2; }
version=$1 out=$2
shift 2
parts=$ALL_PARTS versions_file=$here/versions.env
while (($#)); do
  case $1 in
    --parts) (($# >= 2)) || die "--parts needs a value"; parts=$2; shift 2 ;;
    --versions) (($# >= 2)) || die "--versions needs a file"; versions_file=$2; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] ||
  die "VERSION must be a Kubernetes release like v1.37.2, not '$version'"
readonly version k8s_minor=${BASH_REMATCH[1]} k8s_patch=${BASH_REMATCH[2]}
for p in ${parts//,/ }; do
  [[ ,$ALL_PARTS, == *,"$p",* ]] || die "unknown part '$p' (known: $ALL_PARTS)"
done
want() { [[ ,$parts, == *,"$1",* ]]; }
[[ -f $versions_file && -r $versions_file ]] || die "--versions: '$versions_file' is not a readable file"
readonly versions_file

# The versions file is read, not executed: only known keys with version-shaped values.
declare -A pin=()
n=0
while IFS= read -r line || [[ -n $line ]]; do
  n=$((n + 1))
  [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
  [[ $line =~ ^(CONTAINERD|RUNC|CNI_PLUGINS|CRI_TOOLS)_VERSION=(v[0-9]+\.[0-9]+\.[0-9]+)$ ]] ||
    die "$versions_file:$n: expected one of CONTAINERD_VERSION, RUNC_VERSION, CNI_PLUGINS_VERSION, CRI_TOOLS_VERSION=vX.Y.Z, got '$line'"
  pin[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <"$versions_file"
for key in CONTAINERD RUNC CNI_PLUGINS CRI_TOOLS; do
  [[ -n ${pin[$key]:-} ]] || die "$versions_file does not set ${key}_VERSION"
done
readonly CONTAINERD_VERSION=${pin[CONTAINERD]} RUNC_VERSION=${pin[RUNC]}
readonly CNI_PLUGINS_VERSION=${pin[CNI_PLUGINS]} CRI_TOOLS_VERSION=${pin[CRI_TOOLS]}

command -v go >/dev/null || die "go is not on PATH"
go_cache=${DEVCLUSTER_GO_CACHE:-/var/cache/devcluster-test/go}
export GOMODCACHE=$go_cache/mod GOCACHE=$go_cache/build
# -modcacherw: Go otherwise makes the module cache read-only, and deleting
# it would need a chmod first.
export GOOS=linux GOARCH=amd64 GOFLAGS="-buildvcs=false -modcacherw"
readonly work=$go_cache/work parallel=${BUILD_PARALLEL:-$(nproc)}
mkdir -p "$GOMODCACHE" "$GOCACHE" "$work" "$out"
out=$(cd "$out" && pwd)
readonly out
# A bundle is complete only once manifest.json is written (last, atomically):
# any run may change files, so the old one goes first.
rm -f "$out/manifest.json" "$out/manifest.json.tmp"
mkdir -p "$out/bin" "$out/cni" "$out/components" "$out/images" "$out/versions"

# Seconds per part, printed at the end and kept in versions/timings.
declare -A took=()
timed() {
  local name=$1 start=$SECONDS
  shift
  say "== $name"
  "$@"
  took[$name]=$((SECONDS - start))
  say "== $name done in ${took[$name]}s"
}

# Path of a module's go.mod / .info in the download cache (after go mod download).
mod_file() { printf '%s/cache/download/%s/@v/%s.%s' "$GOMODCACHE" "$1" "$2" "$3"; }

# A generated module whose only job is to build main packages of one dependency
# in that dependency's own module graph (so MVS never mixes two projects'
# pins). Its go line is the dependency's, which gives the same GODEBUG defaults
# as a build inside the project's own repository.
#   wrapper_module DIR MODULE VERSION [EXTRA_GO_MOD_TEXT]
wrapper_module() {
  local dir=$1 mod=$2 ver=$3 extra=${4:-} gomod go_line
  go mod download "$mod@$ver"
  gomod=$(mod_file "$mod" "$ver" mod)
  go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
  [[ -n $go_line ]] || die "$mod@$ver: no go directive in $gomod"
  mkdir -p "$dir"
  {
    printf '// Generated by images/kubernetes/build.sh; do not edit.\n'
    printf 'module devcluster.local/kube-bundle/%s\n\ngo %s\n\n' "$(basename "$dir")" "$go_line"
    printf 'require %s %s\n' "$mod" "$ver"
    printf '%s' "$extra"
  } >"$dir/go.mod.new"
  # Keep go.sum (and skip tidy) when the module file did not change: a warm
  # rebuild then needs no proxy at all.
  if ! cmp -s "$dir/go.mod.new" "$dir/go.mod.gen" 2>/dev/null; then
    cp "$dir/go.mod.new" "$dir/go.mod"
    rm -f "$dir/go.sum"
    (cd "$dir" && go mod tidy)
    mv "$dir/go.mod.new" "$dir/go.mod.gen"
  else
    rm "$dir/go.mod.new"
  fi
}

# go build inside a wrapper module; output path last-but-packages via -o.
#   gobuild DIR CGO TAGS LDFLAGS OUTPUT PACKAGE...
gobuild() {
  local dir=$1 cgo=$2 tags=$3 ldflags=$4 output=$5
  shift 5
  (cd "$dir" && CGO_ENABLED=$cgo go build -p "$parallel" -trimpath -tags "$tags" \
    -ldflags "$ldflags" -o "$output" "$@")
}

# The module's publication time, used wherever a build date is stamped, so the
# same version always yields the same bytes.
module_time() { sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(mod_file "$1" "$2" info)"; }

# ---------------------------------------------------------------- kubernetes
readonly K8S_COMMANDS="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"

build_kubernetes() {
  local dir=$work/kubernetes-$version gomod staging godebug build_date ldflags="-s -w" pkg cmd
  go mod download "k8s.io/kubernetes@$version"
  gomod=$(mod_file k8s.io/kubernetes "$version" mod)
  # The release maps every staging module to ./staging/src/...; Go honours
  # replace only in the main module, so the wrapper points each one at its
  # published tag v0.<minor>.<patch> instead.
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$gomod")
  [[ -n $staging ]] || die "no staging replace directives in $gomod"
  godebug=$(grep '^godebug ' "$gomod" || true)
  local extra
  extra=$(
    printf '\n%s\n\ntool (\n' "$godebug"
    for cmd in $K8S_COMMANDS; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$cmd"; done
    printf ')\n\nreplace (\n'
    for pkg in $staging; do printf '\t%s => %s v0.%s.%s\n' "$pkg" "$pkg" "$k8s_minor" "$k8s_patch"; done
    printf ')\n'
  )
  wrapper_module "$dir" k8s.io/kubernetes "$version" "$extra"$'\n'
  build_date=$(module_time k8s.io/kubernetes "$version")
  # Unstamped binaries report v0.0.0-master+$Format:%H$, which kubeadm's
  # preflight cannot parse and which makes kubeadm tag images
  # v1.0.0-placeholder-version. The proxy gives no commit for a release, so
  # gitCommit stays empty rather than invented.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit="
  done
  local -a pkgs=()
  for cmd in $K8S_COMMANDS; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  # One go build for all seven so shared packages compile once. No binary
  # needs cgo since 1.36 (kubelet went static in kubernetes#135870).
  gobuild "$dir" 0 selinux,notest,grpcnotrace "$ldflags" "$work/kubernetes-bin-$version/" "${pkgs[@]}"
  # Moved, not copied: the seven binaries are 450 MB.
  for cmd in kubeadm kubelet kubectl; do mv -f "$work/kubernetes-bin-$version/$cmd" "$out/bin/$cmd"; done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    mv -f "$work/kubernetes-bin-$version/$cmd" "$out/components/$cmd"
  done
  chmod 0755 "$out"/bin/kube* "$out"/components/kube-*
  cp "$dir/go.mod" "$out/versions/kubernetes.go.mod"
  cp "$dir/go.sum" "$out/versions/kubernetes.go.sum"
}

# What kubeadm pulls for this version; the images part builds exactly these.
kubeadm_images() {
  [[ -x $out/bin/kubeadm ]] || die "bin/kubeadm is missing: build the kubernetes part first"
  "$out/bin/kubeadm" config images list --kubernetes-version "$version" 2>/dev/null
}
image_tag() { # image_tag NAME -> tag kubeadm wants for registry.k8s.io/NAME
  local ref
  ref=$(kubeadm_images | grep -E "^registry\.k8s\.io/$1:" || true)
  [[ -n $ref ]] || die "kubeadm $version lists no image named $1"
  printf '%s\n' "${ref##*:}"
}

# ---------------------------------------------------------------- etcd
build_etcd() {
  local tag ver dir
  tag=$(image_tag etcd)     # e.g. 3.7.0-0: etcd version, then the image revision
  ver=v${tag%-*}
  dir=$work/etcd-$ver
  # etcd's server module replaces its sibling modules with ../ paths, so it
  # cannot be go-installed at a version; the wrapper requires it instead.
  wrapper_module "$dir" go.etcd.io/etcd/server/v3 "$ver" $'\ntool go.etcd.io/etcd/server/v3\n'
  gobuild "$dir" 0 "" "-s -w" "$out/components/etcd" go.etcd.io/etcd/server/v3
  printf '%s\n' "$ver" >"$out/versions/etcd"
}

# ---------------------------------------------------------------- containerd
build_containerd() {
  local dir=$work/containerd-$CONTAINERD_VERSION m=github.com/containerd/containerd/v2 ldflags
  # The preload is this containerd's on-disk state: a new containerd makes it stale.
  rm -rf "$out/preload"
  wrapper_module "$dir" "$m" "$CONTAINERD_VERSION" \
    $'\ntool (\n\t'"$m/cmd/containerd"$'\n\t'"$m/cmd/ctr"$'\n\t'"$m/cmd/containerd-shim-runc-v2"$'\n)\n'
  ldflags="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m"
  # Static like containerd's STATIC=1 release builds; without cgo the btrfs
  # snapshotter is left out (overlayfs is the default snapshotter).
  gobuild "$dir" 0 "urfave_cli_no_docs osusergo netgo static_build" "$ldflags" "$out/bin/" \
    "$m/cmd/containerd" "$m/cmd/ctr"
  # The shim is built with no_grpc, as containerd's Makefile does.
  gobuild "$dir" 0 "urfave_cli_no_docs no_grpc osusergo netgo static_build" "$ldflags" \
    "$out/bin/containerd-shim-runc-v2" "$m/cmd/containerd-shim-runc-v2"
  printf '%s\n' "$CONTAINERD_VERSION" >"$out/versions/containerd"
}

# ---------------------------------------------------------------- runc
build_runc() {
  local dir=$work/runc-$RUNC_VERSION m=github.com/opencontainers/runc
  # runc's nsenter is C, so runc needs cgo; seccomp needs libseccomp's
  # static library (Debian: libseccomp-dev). Linked statically, like the
  # release binaries. The libpathrs tag (a Rust library) is left out: runc
  # then uses its Go implementation.
  [[ -f /usr/lib/x86_64-linux-gnu/libseccomp.a ]] ||
    die "runc needs libseccomp's static library: apt-get install libseccomp-dev"
  command -v gcc >/dev/null || die "runc needs gcc (cgo): apt-get install gcc libc6-dev"
  wrapper_module "$dir" "$m" "$RUNC_VERSION" $'\ntool '"$m"$'\n'
  gobuild "$dir" 1 "seccomp urfave_cli_no_docs netgo osusergo" \
    "-s -w -X main.version=${RUNC_VERSION#v} -linkmode external -extldflags -static" \
    "$out/bin/runc" "$m"
  printf '%s\n' "$RUNC_VERSION" >"$out/versions/runc"
}

# ---------------------------------------------------------------- crictl
build_crictl() {
  local dir=$work/cri-tools-$CRI_TOOLS_VERSION m=sigs.k8s.io/cri-tools
  wrapper_module "$dir" "$m" "$CRI_TOOLS_VERSION" $'\ntool '"$m/cmd/crictl"$'\n'
  gobuild "$dir" 0 "" "-s -w -X $m/pkg/version.Version=$CRI_TOOLS_VERSION" "$out/bin/crictl" "$m/cmd/crictl"
  printf '%s\n' "$CRI_TOOLS_VERSION" >"$out/versions/crictl"
}

# ---------------------------------------------------------------- cni
build_cni() {
  local dir=$work/cni-plugins-$CNI_PLUGINS_VERSION m=github.com/containernetworking/plugins p
  local -a pkgs=("$m/plugins/main/bridge" "$m/plugins/main/loopback" "$m/plugins/ipam/host-local" "$m/plugins/meta/portmap")
  local tools=$'\ntool (\n'
  for p in "${pkgs[@]}"; do tools+=$'\t'"$p"$'\n'; done
  wrapper_module "$dir" "$m" "$CNI_PLUGINS_VERSION" "$tools)"$'\n'
  gobuild "$dir" 0 "" "-s -w -X $m/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "$out/cni/" "${pkgs[@]}"
  printf '%s\n' "$CNI_PLUGINS_VERSION" >"$out/versions/cni-plugins"
}

# ---------------------------------------------------------------- coredns
build_coredns() {
  local ver dir m=github.com/coredns/coredns
  ver=$(image_tag coredns/coredns)
  dir=$work/coredns-$ver
  wrapper_module "$dir" "$m" "$ver" $'\ntool '"$m"$'\n'
  gobuild "$dir" 0 "" "-s -w" "$out/components/coredns" "$m"
  printf '%s\n' "$ver" >"$out/versions/coredns"
}

# ---------------------------------------------------------------- pause
build_pause() {
  local tag src
  tag=$(image_tag pause)
  src=$GOMODCACHE/k8s.io/kubernetes@$version/build/pause/linux/pause.c
  go mod download "k8s.io/kubernetes@$version"
  [[ -f $src ]] || die "$src is missing from the k8s.io/kubernetes module"
  command -v gcc >/dev/null || die "pause needs gcc and libc6-dev"
  # The flags of kubernetes' build/pause/Makefile; REV (a git describe there)
  # is the Kubernetes release the source came from.
  gcc -Os -Wall -Werror -static "-DVERSION=v$tag-$version" -o "$work/pause-$tag" "$src"
  strip "$work/pause-$tag"
  install -m 0755 "$work/pause-$tag" "$out/components/pause"
  printf '%s\n' "$tag" >"$out/versions/pause"
}

# ---------------------------------------------------------------- kube-proxy's userland
# kube-proxy programs the kernel through the iptables-restore and nft
# programs, which are C. The official image takes them from Debian 12 on
# distroless (kubernetes/release images/build/distroless-iptables); here they
# come from Debian 12's archive through this host's apt, unpacked (not
# installed) with glibc and the libraries they load. Missing compared with
# upstream: ipset, kmod (modprobe), a shell and iptables-wrapper, which picks
# the legacy or nft back end at run time; this image uses iptables-nft, the
# Debian 12 default and what the devcluster guests run.
readonly KUBE_PROXY_DEBS="iptables nftables libnftables1 libnftnl11 libmnl0 libxtables12 libip4tc2 libip6tc2
  libnetfilter-conntrack3 libnfnetlink0 libjansson4 libgmp10 libedit2 libbsd0 libmd0 libtinfo6 libc6 libgcc-s1"

kube_proxy_root=$work/kube-proxy-rootfs
kube_proxy_rootfs() { # unpacks into $kube_proxy_root
  local debs=$work/debs root=$kube_proxy_root pkg deb tool
  grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release ||
    die "kube-proxy's iptables/nft come from Debian 12 (bookworm) packages; this host is not Debian 12"
  command -v apt-get >/dev/null || die "apt-get is needed to fetch kube-proxy's Debian packages"
  command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack kube-proxy's Debian packages"
  mkdir -p "$debs"
  rm -rf "$root" "$out/versions/kube-proxy-debs"
  mkdir -p "$root"
  # apt's _apt user cannot write into a root-owned cache directory; saying so
  # up front keeps apt from warning about it for every package.
  local -a apt_opts=(-q)
  ((EUID == 0)) && apt_opts+=(-o APT::Sandbox::User=root)
  for pkg in $KUBE_PROXY_DEBS; do
    # One directory per package, emptied first, so exactly apt's current
    # candidate is unpacked.
    rm -rf "${debs:?}/$pkg"
    mkdir -p "$debs/$pkg"
    (cd "$debs/$pkg" && apt-get download "${apt_opts[@]}" "$pkg" >&2) || die "apt-get download $pkg failed (run apt-get update?)"
    deb=$(find "$debs/$pkg" -name '*.deb')
    [[ -f $deb ]] || die "apt-get download $pkg left no single .deb in $debs/$pkg"
    dpkg-deb -x "$deb" "$root"
    printf '%s %s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >>"$out/versions/kube-proxy-debs"
  done
  rm -rf "${root:?}/usr/share" "$root/etc/init.d" "$root/etc/default"
  # What update-alternatives would have chosen on Debian 12: the nft back end.
  for tool in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
    ln -sfn "${tool/tables/tables-nft}" "$root/usr/sbin/$tool"
  done
  # Each program must start inside the tree alone, or a library is missing.
  if ((EUID == 0)); then
    for tool in iptables ip6tables-restore nft; do
      chroot "$root" "/usr/sbin/$tool" --version >&2 ||
        die "$tool does not run inside the kube-proxy image tree (a library is missing from KUBE_PROXY_DEBS)"
    done
  else
    say "WARNING: not root, so the kube-proxy tree was not run-checked with chroot"
  fi
}

# ---------------------------------------------------------------- images
build_images() {
  local tool=$work/bundletool ref name tag
  (cd "$here/bundletool" && CGO_ENABLED=0 go build -trimpath -o "$tool" .)
  local created
  created=$(module_time k8s.io/kubernetes "$version")
  rm -f "$out"/images/*.tar
  # The preload holds these images unpacked: it goes with them.
  rm -rf "$out/preload"
  kube_proxy_rootfs
  while read -r ref; do
    name=${ref#registry.k8s.io/} tag=${ref##*:}
    name=${name%:*}
    local -a args=(image -ref "$ref" -created "$created" -out "$out/images/${name//\//_}_$tag.tar")
    case $name in
      kube-apiserver | kube-controller-manager | kube-scheduler)
        args+=(-file "/usr/local/bin/$name=$out/components/$name" -dir /tmp:1777) ;;
      kube-proxy)
        args+=(-file "/usr/local/bin/$name=$out/components/$name" -dir /tmp:1777 -tree "/=$kube_proxy_root") ;;
      etcd) args+=(-file "/usr/local/bin/etcd=$out/components/etcd" -dir /tmp:1777 -dir /var/lib/etcd:0700) ;;
      coredns/coredns) args+=(-file "/coredns=$out/components/coredns" -entrypoint /coredns) ;;
      pause) args+=(-file "/pause=$out/components/pause" -entrypoint /pause -user 65535:65535) ;;
      *) die "kubeadm lists an image this recipe does not know how to build: $ref" ;;
    esac
    "$tool" "${args[@]}"
  done < <(kubeadm_images)
}

# ---------------------------------------------------------------- preload
# The images as the guest's containerd holds them after importing them: its
# content store, metadata database and overlayfs snapshots, made by this
# bundle's containerd with the same snapshotter and namespace as the guest's.
# The guest extracts it into a fresh /var/lib/containerd instead of importing
# the archives, which costs over a minute under software emulation (each layer
# is hashed, decompressed and written there; docs/benchmarks.md). Unpacking
# creates files owned by other users and overlay whiteouts, so it needs root;
# without root the bundle has no preload and the guest imports the archives.
readonly PRELOAD_FILE=preload/containerd-overlayfs.tar
build_preload() {
  rm -rf "$out/preload"
  if ((EUID != 0)); then
    say "WARNING: not root, so no preload: the guest will import the images instead (slower)"
    return 0
  fi
  command -v unshare >/dev/null || die "the preload needs unshare (util-linux)"
  [[ -x $out/bin/containerd && -x $out/bin/ctr ]] || die "bin/containerd and bin/ctr are missing: build the containerd part first"
  local -a archives=("$out"/images/*.tar)
  [[ -f ${archives[0]} ]] || die "images/ is empty: build the images part first"
  local dir=$work/preload pid sock ctr_log i
  # The snapshots need a file system that can hold overlay upper directories
  # (not overlayfs itself): $work is on the cache's disk.
  rm -rf "$dir"
  mkdir -p "$dir/root" "$dir/state"
  sock=$dir/state/containerd.sock ctr_log=$dir/containerd.log
  cat >"$dir/config.toml" <<'EOT'
version = 3
# Only the content store, metadata and snapshotter are needed here: the CRI
# plugins would want CNI and a runtime this host may not have.
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]
EOT
  # Its own mount namespace: whatever containerd mounts while unpacking stays there.
  unshare --mount --propagation private "$out/bin/containerd" --config "$dir/config.toml" \
    --root "$dir/root" --state "$dir/state" --address "$sock" --log-level warn 2>"$ctr_log" &
  pid=$!
  for ((i = 0; i < 300; i++)); do
    "$out/bin/ctr" --address "$sock" version >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$ctr_log" >&2; die "containerd exited while starting"; }
    sleep 0.1
  done
  local a
  for a in "${archives[@]}"; do
    "$out/bin/ctr" --address "$sock" --namespace k8s.io images import --snapshotter overlayfs \
      --platform linux/amd64 "$a" >>"$dir/import.log" 2>&1 || { kill "$pid"; cat "$dir/import.log" "$ctr_log" >&2; die "ctr import $a failed"; }
  done
  local listed
  listed=$("$out/bin/ctr" --address "$sock" --namespace k8s.io images ls -q | wc -l)
  kill "$pid"
  wait "$pid" || true
  ((listed == ${#archives[@]})) || die "containerd holds $listed images after importing ${#archives[@]}"
  mkdir -p "$out/preload"
  # Only what the import made; containerd creates its other directories itself.
  # Overlay whiteouts are device nodes and opaque directories carry trusted.*
  # attributes, so both travel in the archive.
  tar --create --file "$out/$PRELOAD_FILE.tmp" --sort=name --numeric-owner --format=posix \
    --xattrs --xattrs-include='trusted.*' --xattrs-include='security.capability' \
    --exclude=./io.containerd.content.v1.content/ingest \
    -C "$dir/root" ./io.containerd.content.v1.content ./io.containerd.metadata.v1.bolt ./io.containerd.snapshotter.v1.overlayfs
  mv "$out/$PRELOAD_FILE.tmp" "$out/$PRELOAD_FILE"
  rm -rf "$dir"
}

# ---------------------------------------------------------------- manifest
write_manifest() {
  local tool=$work/bundletool f
  # Built every time (Go's cache makes it quick): a tool left by an older run would write an older manifest.
  (cd "$here/bundletool" && CGO_ENABLED=0 go build -trimpath -o "$tool" .)
  local -a comps=(-component "kubernetes=$version")
  for f in "$out"/versions/*; do
    # One-line version files only; the go.mod/go.sum and package lists are
    # provenance, listed among the files.
    [[ $f == *.go.mod || $f == *.go.sum || $f == */kube-proxy-debs ]] && continue
    comps+=(-component "$(basename "$f")=$(<"$f")")
  done
  "$tool" manifest -dir "$out" -kubernetes-version "$version" -go "$(go env GOVERSION)" "${comps[@]}" \
    >"$out/manifest.json.tmp"
  mv "$out/manifest.json.tmp" "$out/manifest.json"
}

say "building $version into $out (parts: $parts; caches in $go_cache; go $(go env GOVERSION))"
say "pins from $versions_file: containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, crictl $CRI_TOOLS_VERSION, CNI plugins $CNI_PLUGINS_VERSION"
want kubernetes && timed kubernetes build_kubernetes
want etcd && timed etcd build_etcd
want containerd && timed containerd build_containerd
want runc && timed runc build_runc
want crictl && timed crictl build_crictl
want cni && timed cni build_cni
want coredns && timed coredns build_coredns
want pause && timed pause build_pause
want images && timed images build_images
want preload && timed preload build_preload
want manifest && timed manifest write_manifest
# Timings stay out of the bundle (they differ run to run); kept beside the caches.
for p in "${!took[@]}"; do printf '%s %s %s %ss\n' "$(date -u +%FT%TZ)" "$version" "$p" "${took[$p]}"; done |
  tee -a "$work/timings.log" >&2
say "done: $out"
