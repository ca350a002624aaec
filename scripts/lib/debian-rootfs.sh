# Minimal Debian trixie root filesystems as tars, made with mmdebstrap from the Debian mirror: what
# scripts/build-base-image (debian:trixie-slim) and test/conformance/build-images (the e2e images)
# start from. Sourced, not run: the caller defines log and die, and may set SLUICE_DEBIAN_MIRROR.

# ensure_mmdebstrap: installs Debian's mmdebstrap when missing (needs root).
ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return
  [[ $(id -u) -eq 0 ]] || die "mmdebstrap is missing and installing it needs root"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
    die "apt-get install mmdebstrap failed"
}

# debian_rootfs <tar> <packages, comma-separated; may be empty> <extra mmdebstrap args>...: a minbase
# trixie without documentation, manuals or translations (as Debian's -slim images), apt's lists and
# caches emptied, at nice 19.
debian_rootfs() {
  local tar=$1 include=$2
  shift 2
  ensure_mmdebstrap
  nice -n 19 mmdebstrap --quiet --variant=minbase --format=tar ${include:+--include="$include"} \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    "$@" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    trixie "$tar" "${SLUICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
}
