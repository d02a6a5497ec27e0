#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A second Vulkan driver for the tests: Mesa 26's lavapipe from Debian
# trixie-backports (cooperative matrices, integer dot product, a heap of all the
# machine's memory), unpacked into a folder without touching the system.
#
#   tools/mesa26.sh install            download and unpack once (~70 MB of packages)
#   tools/mesa26.sh COMMAND [ARGS...]  run COMMAND on that driver, installing first if needed
#
# Mesa 26 needs trixie's C library, so a program of ours runs through trixie's
# dynamic loader with trixie's libraries first on its path (the system stays as it
# is). The script writes that launcher once; COMMAND then runs with VKPHI_LAUNCHER
# naming it, and the ctest suite starts every test program through it, so
#   tools/mesa26.sh ctest --test-dir build
# runs the whole suite on Mesa 26. A COMMAND that is a program inside this
# repository (build/bin/vkphi devices) is itself started through the launcher.
#
# The package list is resolved from the packages' own dependencies, so a newer
# backport (another LLVM) still installs. The folder: $VKPHI_MESA26_DIR, default
# ~/.cache/vkphi/mesa26.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${VKPHI_MESA26_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vkphi/mesa26}
mirror=${VKPHI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
launcher=$dir/launch
# The driver, the loader and the validation layer (the Debian 12 layer does not
# know cooperative matrices); their dependencies are resolved below.
wanted=(mesa-vulkan-drivers libvulkan1 vulkan-validationlayers)

install() {
    echo "mesa26: installing Mesa 26 lavapipe into $dir" >&2
    rm -rf "$dir.new"
    mkdir -p "$dir.new/apt/lists/partial" "$dir.new/apt/cache/archives/partial" "$dir.new/debs" "$dir.new/root"
    printf 'deb %s trixie main\ndeb %s trixie-backports main\n' "$mirror" "$mirror" >"$dir.new/apt/sources.list"
    # Apt with its own lists and no installed-package state: nothing of the
    # system's apt set-up is read or changed. Backports win where they exist.
    local o=(-o "Dir::Etc::SourceList=$dir.new/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$dir.new/apt/lists" -o "Dir::Cache=$dir.new/apt/cache"
             -o Dir::State::status=/dev/null -o APT::Default-Release=trixie-backports
             -o APT::Sandbox::User=root)
    apt-get "${o[@]}" -qq update
    local pkgs
    pkgs=$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${wanted[@]}" | grep -v '^[ <]' | sort -u)
    (cd "$dir.new/debs" && apt-get "${o[@]}" -qq download $pkgs)
    local n=0
    for f in "$dir.new"/debs/*.deb; do dpkg-deb -x "$f" "$dir.new/root"; n=$((n + 1)); done
    rm -rf "$dir.new/debs" "$dir.new/apt/cache"

    local lib=$dir/root/usr/lib/x86_64-linux-gnu
    local icd=$dir.new/root/usr/share/vulkan/icd.d/lvp_icd.json
    [ -f "$icd" ] && [ -f "$dir.new/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] ||
        { echo "mesa26: the packages did not bring lavapipe and a loader" >&2; exit 1; }
    # Absolute library paths, so that only this driver and this layer are found.
    sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$lib/libvulkan_lvp.so\"|" "$icd" >"$dir.new/lvp_icd.json"
    mkdir -p "$dir.new/layers"
    sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$lib/libVkLayer_khronos_validation.so\"|" \
        "$dir.new/root/usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" \
        >"$dir.new/layers/VkLayer_khronos_validation.json"
    cat >"$dir.new/launch" <<EOF
#!/bin/sh
# Runs a program on Mesa 26's lavapipe (written by tools/mesa26.sh install).
export VK_DRIVER_FILES=$dir/lvp_icd.json VK_LAYER_PATH=$dir/layers
unset VK_ICD_FILENAMES VK_ADD_DRIVER_FILES
exec $lib/ld-linux-x86-64.so.2 --library-path $lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu "\$@"
EOF
    chmod +x "$dir.new/launch"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
    echo "mesa26: $n packages unpacked; launcher $launcher" >&2
}

if [ "${1:-}" = install ]; then install; exit 0; fi
[ $# -gt 0 ] || { sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ -x "$launcher" ] || install
export VKPHI_LAUNCHER=$launcher
cmd=$(command -v "$1" || true)
[ -n "$cmd" ] || { echo "mesa26: $1: command not found" >&2; exit 127; }
case "$(realpath "$cmd")" in
"$root"/*) [ "$(head -c4 "$cmd" | tail -c3)" = ELF ] && exec "$launcher" "$@" ;;
esac
exec "$@"
