#!/usr/bin/env bash
# Builds devcluster's golden Photon OS 5 guest image.
#
# photon-os-installer (in its own privileged container) installs Photon from
# kickstart.json into a raw disk and runs provision.sh inside it; this script
# then checks the result (inspect-image.sh) and converts it for every driver:
# qcow2 (QEMU), vhdx (Hyper-V), vmdk + ova (VMware, VirtualBox), and raw plus
# the extracted kernel and initrd (HyperKit direct boot). manifest.json, with
# the sha256 and size of each file, is written last, atomically.
#
# The image carries the OS only: containerd, runc, crictl, the CNI plugins and
# Kubernetes come from devcluster's node bundle, installed at start, so nothing
# here downloads a container runtime.
#
# Needs a Linux host with Docker Engine (privileged containers and loop
# devices), qemu-img, curl, git and internet access. See README.md.
#
# Exit codes (devcluster maps them to error IDs):
#   2 usage error
#   3 docker command not found
#   4 Docker daemon unreachable
#   5 another prerequisite command missing (named in the message)
#   6 a download host is unreachable (named in the message)
#   7 the ISO does not match its --iso-sha256
#   8 a build step failed
set -euo pipefail

readonly EXIT_USAGE=2 EXIT_NO_DOCKER=3 EXIT_DOCKER_DAEMON=4 EXIT_MISSING_TOOL=5
readonly EXIT_OFFLINE=6 EXIT_CHECKSUM=7 EXIT_BUILD=8

readonly IMAGE_NAME=photon-5
readonly ALL_FORMATS=(qcow2 vhdx vmdk ova raw)
readonly PHOTON_HOST_URL=https://packages.broadcom.com/photon/
readonly PIN_KEYS=(PHOTON_RELEASE POI_REPO POI_COMMIT)
readonly REQUIRED_TOOLS=(qemu-img curl sha256sum stat tar sed mktemp date mv cp rm mkdir chmod id)

# Only shell builtins run before the prerequisite checks pass, so that a host
# without the tools gets the right message and nothing is written.
if [[ ${BASH_SOURCE[0]} == */* ]]; then recipe_dir=${BASH_SOURCE[0]%/*}; else recipe_dir=.; fi

out_dir=""
photon_iso=""
iso_sha256=""
formats_arg=$(
  IFS=,
  printf '%s' "${ALL_FORMATS[*]}"
)
image_version=""
installer_image=""
versions_file=""
keep_work=0

declare -A PIN=()
declare -A WANT=()
work_dir=""
manifest_tmp=""
build_ok=0
build_installer=0
iso_path=""

usage() {
  cat <<EOF
Usage: build.sh --out DIR [options]

Builds the devcluster Photon OS 5 golden image into DIR.

Options:
  --out DIR               output directory (created if missing)
  --photon-iso URL|PATH   install from the RPMS repository of this Photon OS 5
                          full ISO instead of the online repositories
  --iso-sha256 HEX        sha256 of the ISO (required with --photon-iso)
  --formats LIST          comma-separated subset of: ${ALL_FORMATS[*]}
                          (default: all). raw also publishes kernel + initrd.
  --version VERSION       image version recorded in manifest.json
                          (default: <Photon release>-<UTC yyyymmddHHMM>)
  --installer-image IMAGE use this photon-os-installer container image instead
                          of building the pinned one
  --versions FILE         pinned Photon release and installer revision
                          (default: versions.env next to this script)
  --keep-work             keep the intermediate files under DIR/.build.*
  -h, --help              show this help
EOF
}

die() {
  local code=$1
  shift
  printf 'build.sh: %s\n' "$*" >&2
  exit "$code"
}

usage_error() {
  printf 'build.sh: %s\n' "$*" >&2
  printf "Run 'build.sh --help' for usage.\n" >&2
  exit "$EXIT_USAGE"
}

log() {
  printf 'build.sh: %s\n' "$*" >&2
}

need_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || usage_error "$1 needs a value"
}

parse_args() {
  while (($#)); do
    case $1 in
      --out) need_value "$@"; out_dir=$2; shift 2 ;;
      --out=*) out_dir=${1#*=}; shift ;;
      --photon-iso) need_value "$@"; photon_iso=$2; shift 2 ;;
      --photon-iso=*) photon_iso=${1#*=}; shift ;;
      --iso-sha256) need_value "$@"; iso_sha256=$2; shift 2 ;;
      --iso-sha256=*) iso_sha256=${1#*=}; shift ;;
      --formats) need_value "$@"; formats_arg=$2; shift 2 ;;
      --formats=*) formats_arg=${1#*=}; shift ;;
      --version) need_value "$@"; image_version=$2; shift 2 ;;
      --version=*) image_version=${1#*=}; shift ;;
      --installer-image) need_value "$@"; installer_image=$2; shift 2 ;;
      --installer-image=*) installer_image=${1#*=}; shift ;;
      --versions) need_value "$@"; versions_file=$2; shift 2 ;;
      --versions=*) versions_file=${1#*=}; shift ;;
      --keep-work) keep_work=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown argument '$1'" ;;
    esac
  done

  [[ -n $out_dir ]] || usage_error "--out DIR is required"
  if [[ -n $photon_iso && -z $iso_sha256 ]]; then
    usage_error "--photon-iso needs --iso-sha256: the ISO is only used after its digest matches"
  fi
  if [[ -z $photon_iso && -n $iso_sha256 ]]; then
    usage_error "--iso-sha256 given without --photon-iso"
  fi
  if [[ -n $iso_sha256 ]]; then
    iso_sha256=${iso_sha256,,}
    [[ $iso_sha256 =~ ^[0-9a-f]{64}$ ]] || usage_error "--iso-sha256 must be 64 hex digits, got '$iso_sha256'"
  fi
  if [[ -n $image_version && ! $image_version =~ ^[0-9A-Za-z][0-9A-Za-z._+-]*$ ]]; then
    usage_error "--version may contain only letters, digits and . _ + - (got '$image_version')"
  fi

  local rest=$formats_arg item known f
  [[ -n $rest ]] || usage_error "--formats is empty; accepted: ${ALL_FORMATS[*]}"
  while [[ -n $rest ]]; do
    item=${rest%%,*}
    if [[ $rest == *,* ]]; then rest=${rest#*,}; else rest=""; fi
    known=0
    for f in "${ALL_FORMATS[@]}"; do
      if [[ $item == "$f" ]]; then known=1; fi
    done
    [[ $known == 1 ]] || usage_error "unknown format '$item' in --formats; accepted: ${ALL_FORMATS[*]}"
    WANT[$item]=1
  done
}

check_prerequisites() {
  command -v docker >/dev/null 2>&1 ||
    die "$EXIT_NO_DOCKER" "missing prerequisite: docker (no 'docker' command on PATH). Install Docker Engine, which runs photon-os-installer in a privileged container, and retry."

  local tool missing=()
  for tool in "${REQUIRED_TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]} > 0)); then
    die "$EXIT_MISSING_TOOL" "missing prerequisite: ${missing[*]} (not found on PATH). qemu-img comes with QEMU (Debian/Ubuntu: qemu-utils)."
  fi

  local security
  security=$(docker info --format '{{json .SecurityOptions}}' 2>/dev/null) ||
    die "$EXIT_DOCKER_DAEMON" "missing prerequisite: a running Docker daemon ('docker info' failed). Start Docker Engine, or give this user access to it, and retry."
  # The installer needs loop devices, which a rootless daemon cannot provide.
  if [[ $security == *rootless* ]]; then
    die "$EXIT_DOCKER_DAEMON" "missing prerequisite: a rootful Docker daemon (this one runs rootless, and the installer needs privileged containers with loop devices)"
  fi
}

# Reads versions.env without executing it: only known keys, validated values.
load_versions() {
  local file=$1 line key value n=0
  [[ -f $file ]] || die "$EXIT_USAGE" "versions file $file not found"
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    [[ $line =~ ^([A-Z][A-Z0-9_]*)=([^[:space:]]+)$ ]] || die "$EXIT_USAGE" "$file:$n: expected KEY=VALUE, got '$line'"
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    case $key in
      PHOTON_RELEASE) [[ $value =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]] || die "$EXIT_USAGE" "$file:$n: $key is not a version" ;;
      POI_COMMIT) [[ $value =~ ^[0-9a-f]{40}$ ]] || die "$EXIT_USAGE" "$file:$n: POI_COMMIT must be a full 40-digit commit id" ;;
      POI_REPO) [[ $value =~ ^https://[^[:space:]]+$ ]] || die "$EXIT_USAGE" "$file:$n: POI_REPO must be an https URL" ;;
      # Pins of an older recipe (containerd, runc, CNI plugins, crictl) land
      # here too: the node bundle provides those now, and a silently ignored
      # pin would look like it still meant something.
      *) die "$EXIT_USAGE" "$file:$n: unknown key $key (accepted: ${PIN_KEYS[*]})" ;;
    esac
    PIN[$key]=$value
  done <"$file"
  for key in "${PIN_KEYS[@]}"; do
    [[ -n ${PIN[$key]:-} ]] || die "$EXIT_USAGE" "$file does not set $key"
  done
}

absolute_path() {
  local path=$1 dir=. abs
  if [[ $path == */* ]]; then dir=${path%/*}; fi
  [[ -n $dir ]] || dir=/
  abs=$(cd "$dir" && pwd)
  printf '%s/%s' "$abs" "${path##*/}"
}

installer_tag() {
  printf 'devcluster/photon-installer:%s' "${PIN[POI_COMMIT]:0:12}"
}

# Decides which installer image to use; building one needs buildx and git.
check_installer_prerequisites() {
  if [[ -n $installer_image ]]; then
    docker image inspect "$installer_image" >/dev/null 2>&1 ||
      die "$EXIT_MISSING_TOOL" "missing prerequisite: installer image '$installer_image' (not present locally; docker image inspect failed)"
    return
  fi
  installer_image=$(installer_tag)
  if docker image inspect "$installer_image" >/dev/null 2>&1; then
    return
  fi
  command -v git >/dev/null 2>&1 ||
    die "$EXIT_MISSING_TOOL" "missing prerequisite: git (not found on PATH), needed to fetch photon-os-installer ${PIN[POI_COMMIT]}"
  docker buildx version >/dev/null 2>&1 ||
    die "$EXIT_MISSING_TOOL" "missing prerequisite: docker buildx (the photon-os-installer Dockerfile needs BuildKit named build contexts)"
  build_installer=1
}

check_reachable() {
  local url=$1 what=$2 code
  code=$(curl -sS -o /dev/null --max-time 20 -w '%{http_code}' "$url" 2>/dev/null) || true
  [[ -n $code && $code != 000 ]] ||
    die "$EXIT_OFFLINE" "cannot reach $what at $url (no HTTP response within 20 s); this build needs internet access"
}

cleanup() {
  local rc=$?
  if [[ -n $manifest_tmp ]]; then rm -f "$manifest_tmp"; fi
  if [[ -n $work_dir && -d $work_dir ]]; then
    if [[ $build_ok == 1 && $keep_work == 0 ]]; then
      rm -rf "$work_dir" 2>/dev/null || log "could not remove $work_dir (files owned by root?); remove it by hand"
    else
      log "intermediate files kept in $work_dir"
    fi
  fi
  exit "$rc"
}

sha256_of() {
  local sum
  sum=$(sha256sum "$1")
  printf '%s' "${sum%% *}"
}

verify_sha256() {
  local file=$1 expected=$2 what=$3 actual
  actual=$(sha256_of "$file")
  [[ $actual == "$expected" ]] ||
    die "$EXIT_CHECKSUM" "$what: sha256 is $actual but $expected is pinned; refusing to use $file"
}

# Returns the ISO path to mount into the installer, downloading it if needed.
prepare_iso() {
  local dest=$1
  if [[ $photon_iso =~ ^https?:// ]]; then
    log "downloading $photon_iso"
    curl -fSL --retry 3 --connect-timeout 30 -o "$dest" "$photon_iso" || die "$EXIT_OFFLINE" "download failed: $photon_iso"
  else
    [[ -f $photon_iso ]] || die "$EXIT_USAGE" "--photon-iso: $photon_iso is not a file"
    dest=$(absolute_path "$photon_iso")
  fi
  log "verifying the ISO's sha256"
  verify_sha256 "$dest" "$iso_sha256" "Photon ISO"
  iso_path=$dest
}

build_installer_image() {
  local src=$1
  log "building photon-os-installer ${PIN[POI_COMMIT]} as $installer_image"
  mkdir -p "$src"
  git -C "$src" init -q
  git -C "$src" fetch -q --depth 1 "${PIN[POI_REPO]}" "${PIN[POI_COMMIT]}" ||
    die "$EXIT_BUILD" "git could not fetch ${PIN[POI_COMMIT]} from ${PIN[POI_REPO]}"
  git -C "$src" -c advice.detachedHead=false checkout -q FETCH_HEAD
  local head
  head=$(git -C "$src" rev-parse HEAD)
  [[ $head == "${PIN[POI_COMMIT]}" ]] ||
    die "$EXIT_BUILD" "photon-os-installer checkout is $head, not ${PIN[POI_COMMIT]}"
  # The Dockerfile's poi-helper stage is where the installer source comes
  # from; pointing it at the pinned checkout keeps it from cloning master.
  docker buildx build --load --build-context "poi-helper=$src" -t "$installer_image" "$src/docker" ||
    die "$EXIT_BUILD" "docker buildx build of photon-os-installer failed"
}

stage_inputs() {
  local stage=$1
  mkdir -p "$stage"
  cp "$recipe_dir/kickstart.json" "$stage/kickstart.json"
  cp "$recipe_dir/provision.sh" "$stage/provision.sh"
  chmod 0755 "$stage/provision.sh"
  cp "$versions_file" "$stage/versions.env"
}

run_installer() {
  local stage=$1 repo_url uid gid
  repo_url="https://packages.broadcom.com/photon/${PIN[PHOTON_RELEASE]}/photon_updates_${PIN[PHOTON_RELEASE]}_x86_64"
  uid=$(id -u)
  gid=$(id -g)
  local args=(run --rm --privileged -v /dev:/dev -v "$stage:/workdir" -v "$recipe_dir:/recipe:ro"
    -e "HOST_UID=$uid" -e "HOST_GID=$gid")
  if [[ -n $iso_path ]]; then
    args+=(-v "$iso_path:/iso/photon.iso:ro")
    log "installing Photon OS ${PIN[PHOTON_RELEASE]} from the ISO's package repository"
  else
    log "installing Photon OS ${PIN[PHOTON_RELEASE]} from $repo_url"
  fi
  args+=(--entrypoint /bin/bash "$installer_image" /recipe/installer-run.sh "${PIN[PHOTON_RELEASE]}" "$repo_url")
  docker "${args[@]}" || die "$EXIT_BUILD" "photon-os-installer failed (its log is above)"
  [[ -f $stage/$IMAGE_NAME.raw ]] || die "$EXIT_BUILD" "photon-os-installer finished but $stage/$IMAGE_NAME.raw is missing"
}

inspect_image() {
  local stage=$1 uid gid
  uid=$(id -u)
  gid=$(id -g)
  log "checking the image against the guest contract"
  docker run --rm --privileged -v /dev:/dev -v "$stage:/workdir" -v "$recipe_dir:/recipe:ro" \
    -e "HOST_UID=$uid" -e "HOST_GID=$gid" \
    --entrypoint /bin/bash "$installer_image" /recipe/inspect-image.sh "/workdir/$IMAGE_NAME.raw" /workdir/boot ||
    die "$EXIT_BUILD" "the built image failed inspection (see above)"
}

write_ova() {
  local vmdk=$1 dest=$2 capacity=$3 tmp ovf mf vmdk_name vmdk_size ovf_sum vmdk_sum
  tmp=$(mktemp -d "$work_dir/ova.XXXXXX")
  vmdk_name=$IMAGE_NAME.vmdk
  ovf=$tmp/$IMAGE_NAME.ovf
  mf=$tmp/$IMAGE_NAME.mf
  cp "$vmdk" "$tmp/$vmdk_name"
  vmdk_size=$(stat -c %s "$tmp/$vmdk_name")
  sed -e "s|@@NAME@@|$IMAGE_NAME|g" \
    -e "s|@@VMDK_FILE@@|$vmdk_name|g" \
    -e "s|@@VMDK_SIZE@@|$vmdk_size|g" \
    -e "s|@@DISK_CAPACITY@@|$capacity|g" \
    "$recipe_dir/photon.ovf.template" >"$ovf"
  if grep -q '@@' "$ovf"; then die "$EXIT_BUILD" "photon.ovf.template has a placeholder build.sh does not fill"; fi
  ovf_sum=$(sha256_of "$ovf")
  vmdk_sum=$(sha256_of "$tmp/$vmdk_name")
  printf 'SHA256(%s)= %s\nSHA256(%s)= %s\n' "$IMAGE_NAME.ovf" "$ovf_sum" "$vmdk_name" "$vmdk_sum" >"$mf"
  # An OVA is a ustar archive whose first member is the descriptor.
  tar --format=ustar --owner=0 --group=0 --numeric-owner -cf "$dest" -C "$tmp" \
    "$IMAGE_NAME.ovf" "$IMAGE_NAME.mf" "$vmdk_name"
  rm -rf "$tmp"
}

convert_formats() {
  local raw=$1 dir=$2 capacity
  mkdir -p "$dir"
  capacity=$(stat -c %s "$raw")
  if [[ -n ${WANT[qcow2]:-} ]]; then
    log "converting to qcow2"
    qemu-img convert -f raw -O qcow2 -o compat=1.1 "$raw" "$dir/$IMAGE_NAME.qcow2"
  fi
  if [[ -n ${WANT[vhdx]:-} ]]; then
    log "converting to vhdx"
    qemu-img convert -f raw -O vhdx -o subformat=dynamic "$raw" "$dir/$IMAGE_NAME.vhdx"
  fi
  if [[ -n ${WANT[vmdk]:-} || -n ${WANT[ova]:-} ]]; then
    log "converting to streamOptimized vmdk"
    qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$raw" "$dir/$IMAGE_NAME.vmdk"
  fi
  if [[ -n ${WANT[ova]:-} ]]; then
    log "packing the ova"
    write_ova "$dir/$IMAGE_NAME.vmdk" "$dir/$IMAGE_NAME.ova" "$capacity"
    [[ -n ${WANT[vmdk]:-} ]] || rm -f "$dir/$IMAGE_NAME.vmdk"
  fi
  if [[ -n ${WANT[raw]:-} ]]; then
    cp --sparse=always "$raw" "$dir/$IMAGE_NAME.raw"
    cp "$work_dir/stage/boot/vmlinuz" "$dir/$IMAGE_NAME.vmlinuz"
    cp "$work_dir/stage/boot/initrd" "$dir/$IMAGE_NAME.initrd"
  fi
}

json_entry() {
  local key=$1 file=$2 sum size
  sum=$(sha256_of "$file")
  size=$(stat -c %s "$file")
  printf '"%s": { "file": "%s", "sha256": "%s", "size": %s }' "$key" "${file##*/}" "$sum" "$size"
}

# Builds {"name": "evr", ...} from NAME<TAB>EVR lines. Names and versions are
# checked against RPM's character set, so no JSON escaping is needed.
rpm_json() {
  local file=$1 name evr sep=""
  printf '{'
  while IFS=$'\t' read -r name evr; do
    [[ $name =~ ^[A-Za-z0-9._+-]+$ && $evr =~ ^[A-Za-z0-9._+~^:-]+$ ]] ||
      die "$EXIT_BUILD" "unexpected package line in $file: '$name $evr'"
    printf '%s "%s": "%s"' "$sep" "$name" "$evr"
    sep=,
  done <"$file"
  printf ' }'
}

write_manifest() {
  local dir=$1 dest=$2 cmdline entry entries="" key file rpms built_at
  cmdline=$(<"$work_dir/stage/boot/cmdline")
  [[ $cmdline =~ ^[[:print:]]+$ && $cmdline != *'"'* && $cmdline != *\\* ]] ||
    die "$EXIT_BUILD" "kernel command line has characters that cannot go into manifest.json unescaped: $cmdline"
  for key in "${ALL_FORMATS[@]}" kernel initrd; do
    case $key in
      kernel) [[ -n ${WANT[raw]:-} ]] || continue; file=$dir/$IMAGE_NAME.vmlinuz ;;
      initrd) [[ -n ${WANT[raw]:-} ]] || continue; file=$dir/$IMAGE_NAME.initrd ;;
      *) [[ -n ${WANT[$key]:-} ]] || continue; file=$dir/$IMAGE_NAME.$key ;;
    esac
    entry=$(json_entry "$key" "$file")
    entries+="${entries:+,$'\n'}    $entry"
  done
  rpms=$(rpm_json "$work_dir/stage/boot/rpms.tsv")
  built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  manifest_tmp=$(mktemp "${dest%/*}/.manifest.json.XXXXXX")
  {
    printf '{\n'
    printf '  "name": "%s",\n' "$IMAGE_NAME"
    printf '  "version": "%s",\n' "$image_version"
    printf '  "formats": {\n%s\n  },\n' "$entries"
    printf '  "kernelCmdline": "%s",\n' "$cmdline"
    printf '  "packages": {\n'
    printf '    "rpm": %s\n' "$rpms"
    printf '  },\n'
    printf '  "builtAt": "%s"\n' "$built_at"
    printf '}\n'
  } >"$manifest_tmp"
  chmod 0644 "$manifest_tmp"
  # rename(2) within one directory: readers see the old manifest or the new one.
  mv -f "$manifest_tmp" "$dest"
  manifest_tmp=""
}

publish() {
  local from=$1 key name
  # A manifest must never describe a mix of old and new files.
  rm -f "$out_dir/manifest.json"
  for key in "${ALL_FORMATS[@]}"; do
    [[ -n ${WANT[$key]:-} ]] || continue
    mv -f "$from/$IMAGE_NAME.$key" "$out_dir/"
  done
  if [[ -n ${WANT[raw]:-} ]]; then
    for name in vmlinuz initrd; do mv -f "$from/$IMAGE_NAME.$name" "$out_dir/"; done
  fi
  write_manifest "$out_dir" "$out_dir/manifest.json"
}

main() {
  parse_args "$@"
  check_prerequisites

  [[ -n $versions_file ]] || versions_file=$recipe_dir/versions.env
  load_versions "$versions_file"
  build_installer=0
  check_installer_prerequisites
  check_reachable "$PHOTON_HOST_URL" "the Photon OS download host"
  # The installer's source is the only thing fetched from outside Photon's
  # repositories, and only when its image is not there yet.
  if [[ $build_installer == 1 ]]; then
    check_reachable "${PIN[POI_REPO]}" "the photon-os-installer repository"
  fi

  # Prerequisites are met; from here on the output directory is used.
  [[ -n $image_version ]] || image_version=${PIN[PHOTON_RELEASE]}-$(date -u +%Y%m%d%H%M)
  mkdir -p "$out_dir"
  out_dir=$(cd "$out_dir" && pwd)
  recipe_dir=$(cd "$recipe_dir" && pwd)
  versions_file=$(absolute_path "$versions_file")
  work_dir=$(mktemp -d "$out_dir/.build.XXXXXX")
  trap cleanup EXIT

  iso_path=""
  if [[ -n $photon_iso ]]; then prepare_iso "$work_dir/photon.iso"; fi
  if [[ $build_installer == 1 ]]; then build_installer_image "$work_dir/photon-os-installer"; fi

  stage_inputs "$work_dir/stage"
  run_installer "$work_dir/stage"
  inspect_image "$work_dir/stage"
  convert_formats "$work_dir/stage/$IMAGE_NAME.raw" "$work_dir/out"
  publish "$work_dir/out"
  build_ok=1
  log "done: $out_dir/manifest.json"
}

main "$@"
