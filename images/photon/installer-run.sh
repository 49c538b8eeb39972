#!/bin/bash
# Runs inside the photon-os-installer container (started by build.sh with
# --privileged -v /dev:/dev): builds the raw disk described by kickstart.json
# in /workdir, from either the online Photon repositories or the RPMS
# repository of a Photon ISO mounted at /iso/photon.iso.
#
# Usage: installer-run.sh RELEASE REPO_URL
# Env:   HOST_UID, HOST_GID - owner to give the results back to.
set -euo pipefail

release=${1:?release}
repo_paths=${2:?repository URL}
iso=/iso/photon.iso
iso_mnt=/mnt/photon-iso

cleanup() {
  local rc=$?
  if mountpoint -q "$iso_mnt"; then
    umount "$iso_mnt" || true
  fi
  # Everything the installer wrote is root's; hand it back to the caller.
  if [[ -n ${HOST_UID:-} && -n ${HOST_GID:-} ]]; then
    chown -R "$HOST_UID:$HOST_GID" /workdir || true
  fi
  exit "$rc"
}
trap cleanup EXIT

cd /workdir

if [[ -f $iso ]]; then
  mkdir -p "$iso_mnt"
  mount -o loop,ro "$iso" "$iso_mnt"
  if [[ ! -d $iso_mnt/RPMS/repodata ]]; then
    echo "installer-run.sh: the ISO has no RPMS/repodata: use a Photon OS $release full ISO" >&2
    exit 1
  fi
  repo_paths=$iso_mnt/RPMS
fi

# create-image always hands photon-installer a --repo-paths, which replaces any
# "repos" in the kickstart, so the package source is chosen here.
create-image -c kickstart.json -v "$release" --repo-paths="$repo_paths"
