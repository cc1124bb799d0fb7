#!/usr/bin/env bash
# Debian/Ubuntu packages the C++ core needs to build: a C++17 compiler, pkg-config and Clipper
# (libpolyclipping-dev); dicom3tools (dciodvfy, the DICOM validator the SEG and SR tests run).
# Installs only what is missing; uses sudo when not run as root.
# cmake and libgtest-dev: the native tests of the core and its sanitizer build (scripts/sanitize.sh).
# libopenjp2-7: OpenJPEG for glymur, which decodes JPEG 2000 DICOMs at the networks' resolution.
set -euo pipefail
packages=(g++ pkg-config libpolyclipping-dev dicom3tools cmake libgtest-dev libopenjp2-7)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
