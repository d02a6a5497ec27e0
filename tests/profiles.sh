#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command under one of the named limit profiles: VKPHI_LIMITS (runtime/gpu/device.h)
# makes the device report other GPUs' stricter limits, so the suite takes their
# paths on lavapipe.
#   tests/profiles.sh NAME COMMAND [ARGS...]   e.g. tests/profiles.sh minimal ctest --test-dir build
#   tests/profiles.sh --list
set -euo pipefail
declare -A profiles=(
    # Intel-like: 64-byte offsets, 128 MiB bindings, no push descriptors.
    [intel]="offset_align=64,storage_range=128M,no_push_descriptors"
    # AMD discrete: 256-byte offsets, VRAM filled through staging, 4 GiB bindings
    # (no more than the driver has).
    [amd]="offset_align=256,discrete,storage_range=4G"
    # The least Vulkan 1.2 allows where it matters to us: 256-byte offsets, 64 MiB
    # bindings, no subgroup arithmetic, 16 KiB of shared memory, 128 invocations.
    [minimal]="offset_align=256,storage_range=64M,no_subgroup_arith,api=1.2,shared=16K,wg=128,no_coopmat"
)
if [ "${1:-}" = --list ]; then
    for p in intel amd minimal; do echo "$p ${profiles[$p]}"; done
    exit 0
fi
[ $# -ge 2 ] && [ -n "${profiles[$1]:-}" ] || { echo "usage: tests/profiles.sh intel|amd|minimal COMMAND... (or --list)" >&2; exit 2; }
export VKPHI_LIMITS=${profiles[$1]}
shift
exec "$@"
