#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A second Vulkan driver for the tests, unpacked from Debian into a folder without
# touching the system:
#   26  Mesa 26's lavapipe from trixie-backports (cooperative matrices 8x8x8, integer
#       dot product, a heap of all the machine's memory);
#   25  Mesa 25.0's RADV from trixie: with RADV_FORCE_FAMILY=navi31 set it creates a
#       "Null hardware" AMD device, compile-only and without a GPU (RDNA3's cooperative
#       matrices 16x16x16, subgroups of 32 or 64); unset, it finds no device.
#
#   tools/mesa.sh 26|25 install            download and unpack once (~70 MB of packages)
#   tools/mesa.sh 26|25 COMMAND [ARGS...]  run COMMAND on that driver, installing first if needed
#
# Mesa 25 and 26 need trixie's C library, so a program of ours runs through trixie's
# dynamic loader with trixie's libraries first on its path (the system stays as it
# is). The script writes that launcher once; COMMAND then runs with VKPHI_LAUNCHER
# naming it, and the ctest suite starts every test program through it, so
#   tools/mesa.sh 26 ctest --test-dir build
# runs the whole suite on Mesa 26. A COMMAND that is a program inside this
# repository (build/bin/vkphi devices) is itself started through the launcher.
#
# The package list is resolved from the packages' own dependencies, so a newer
# backport (another LLVM) still installs. The folder: $VKPHI_MESA26_DIR or
# $VKPHI_MESA25_DIR, default ~/.cache/vkphi/mesa26 or mesa25.
set -euo pipefail

usage() { sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
ver=${1:-}
# Per version: the suites, the release apt prefers, the driver (its ICD file is
# <drv>_icd.json, its library libvulkan_<drv>.so), its name, and the Mesa versions
# accepted (26: whatever backports holds).
case $ver in
26) suites='trixie trixie-backports' release=trixie-backports drv=lvp name=lavapipe accept='*' ;;
25) suites=trixie release=trixie drv=radeon name=RADV accept='25.0.*' ;;
*) usage ;;
esac
shift
root=$(cd "$(dirname "$0")/.." && pwd)
dirvar=VKPHI_MESA${ver}_DIR
dir=${!dirvar:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vkphi/mesa$ver}
mirror=${VKPHI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
launcher=$dir/launch
# The driver, the loader and the validation layer (the Debian 12 layer does not
# know cooperative matrices); their dependencies are resolved below.
wanted=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers)

install() {
    echo "mesa$ver: installing Mesa $ver $name into $dir" >&2
    rm -rf "$dir.new"
    mkdir -p "$dir.new/apt/lists/partial" "$dir.new/apt/cache/archives/partial" "$dir.new/debs" "$dir.new/root"
    local s
    for s in $suites; do echo "deb $mirror $s main"; done >"$dir.new/apt/sources.list"
    # Apt with its own lists and no installed-package state: nothing of the
    # system's apt set-up is read or changed. Backports (26) win where they exist.
    local o=(-o "Dir::Etc::SourceList=$dir.new/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$dir.new/apt/lists" -o "Dir::Cache=$dir.new/apt/cache"
             -o Dir::State::status=/dev/null -o "APT::Default-Release=$release"
             -o APT::Sandbox::User=root)
    apt-get "${o[@]}" -qq update
    local pkgs
    pkgs=$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${wanted[@]}" | grep -v '^[ <]' | sort -u)
    (cd "$dir.new/debs" && apt-get "${o[@]}" -qq download $pkgs)
    local n=0 f
    for f in "$dir.new"/debs/*.deb; do dpkg-deb -x "$f" "$dir.new/root"; n=$((n + 1)); done
    local mesa
    mesa=$(dpkg-deb -f "$dir.new"/debs/mesa-vulkan-drivers_*.deb Version)
    # shellcheck disable=SC2053 # $accept is a pattern
    [[ $mesa == $accept ]] ||
        { echo "mesa$ver: Debian $release holds Mesa $mesa, not $accept; this script needs updating" >&2; exit 1; }
    rm -rf "$dir.new/debs" "$dir.new/apt/cache"

    local libdir=$dir/root/usr/lib/x86_64-linux-gnu
    local json=$dir.new/root/usr/share/vulkan/icd.d/${drv}_icd.json
    [ -f "$json" ] && [ -f "$dir.new/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] ||
        { echo "mesa$ver: the packages did not bring $name and a loader" >&2; exit 1; }
    # Absolute library paths, so that only this driver and this layer are found.
    sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$libdir/libvulkan_$drv.so\"|" "$json" \
        >"$dir.new/${drv}_icd.json"
    mkdir -p "$dir.new/layers"
    sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$libdir/libVkLayer_khronos_validation.so\"|" \
        "$dir.new/root/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" \
        >"$dir.new/layers/VkLayer_khronos_validation.json"
    cat >"$dir.new/launch" <<EOF
#!/bin/sh
# Runs a program on Mesa $mesa's $name (written by tools/mesa.sh $ver install).
export VK_DRIVER_FILES=$dir/${drv}_icd.json VK_LAYER_PATH=$dir/layers
unset VK_ICD_FILENAMES VK_ADD_DRIVER_FILES
exec $libdir/ld-linux-x86-64.so.2 --library-path $libdir:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu "\$@"
EOF
    chmod +x "$dir.new/launch"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
    echo "mesa$ver: Mesa $mesa, $n packages unpacked; launcher $launcher" >&2
}

if [ "${1:-}" = install ]; then install; exit 0; fi
[ $# -gt 0 ] || usage
[ -x "$launcher" ] || install
export VKPHI_LAUNCHER=$launcher
cmd=$(command -v "$1" || true)
[ -n "$cmd" ] || { echo "mesa$ver: $1: command not found" >&2; exit 127; }
case "$(realpath "$cmd")" in
"$root"/*) [ "$(head -c4 "$cmd" | tail -c3)" = ELF ] && exec "$launcher" "$@" ;;
esac
exec "$@"
