#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Everything a session with a real GPU should measure, in one run, so that its
# minutes go to measuring:
#   1. build (unless BUILD names a finished build directory),
#   2. the device as vkphi sees it, every kernel compiled with the driver's
#      figures (vkphi kernels --stats), and the test suite on the real driver,
#   3. Phi-4-shaped models with random weights (Q4_K_M and Q8_0, full size),
#   4. vkphi bench on each (pp512, tg128, roofline, kernel breakdown) as JSON,
#      and the bandwidth kernel.
# Every output goes to OUT (default bench/results/gpu-<date>), one file per step,
# with the command that made it at the top of log.txt; bench/RESULTS.md gets the
# figures by hand, with device, driver, date and command.
#
#   bench/gpu.sh                       the full run (models: ~9 + ~16 GB of disk)
#   PRESET=tiny TYPES=Q8_0 bench/gpu.sh  a rehearsal on any machine (lavapipe too)
#   REF_BENCH="path/to/llama-bench"    also time the reference runtime's Vulkan
#                                      backend on the same files (built by hand
#                                      beside the project; never committed)
# Environment: BUILD (build dir, default build), OUT, PRESET (phi-4), TYPES
# ("Q4_K_M Q8_0"), TESTS=0 skips the suite, MODELS (where the models go: $OUT).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-build}
out=${OUT:-bench/results/gpu-$(date -u +%Y%m%d-%H%M)}
preset=${PRESET:-phi-4}
types=${TYPES:-Q4_K_M Q8_0}
models=${MODELS:-$out}
mkdir -p "$out" "$models"
log=$out/log.txt
say() { echo "== $*" | tee -a "$log"; }
run() { # file command...: output to $out/file, command line to the log
    local f=$1; shift
    say "$* > $f"
    local t0=$SECONDS
    "$@" >"$out/$f" 2>&1
    local rc=$?
    say "exit $rc after $((SECONDS - t0)) s"
    return $rc
}
: >"$log"
say "vkphi GPU run, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

if [ ! -x "$build/bin/vkphi" ]; then
    command -v glslangValidator >/dev/null || bash tools/setup.sh
    run build.txt sh -c "cmake -S . -B '$build' -DCMAKE_BUILD_TYPE=Release && cmake --build '$build' -j$(nproc)" ||
        { say "build failed"; exit 1; }
fi
vkphi=$build/bin/vkphi
run devices.txt "$vkphi" devices || { say "no Vulkan device"; exit 1; }
# Every kernel compiled by the real driver, with its compiler's figures where it
# reports them (registers, spills, shared memory, waves): the device's own bench/AMD.md.
run kernels.txt "$vkphi" kernels --stats
run kernels.json "$vkphi" kernels --all --stats --json
if [ "${TESTS:-1}" != 0 ]; then run ctest.txt ctest --test-dir "$build" --output-on-failure -j4; fi
run bandwidth.json "$vkphi" bench --bandwidth --json

for t in $types; do
    m=$models/$preset-$t.gguf
    [ -f "$m" ] || run "mkmodel-$t.txt" "$vkphi" mkmodel --preset "$preset" --type "$t" -o "$m" || continue
    run "bench-$preset-$t.json" "$vkphi" bench -m "$m" --json -q
    run "bench-$preset-$t-d4096.json" "$vkphi" bench -m "$m" -p 0 -n 64 -d 4096 --json -q
    # The other prefill paths, f32 and f16 tiles (issue 10), and decode with 1, 4 and 16 sequences at once (issue 12).
    run "bench-$preset-$t-nocoopmat.json" env VKPHI_COOPMAT=0 VKPHI_F16MATH=0 "$vkphi" bench -m "$m" -n 0 --json -q
    run "bench-$preset-$t-f16tiles.json" env VKPHI_COOPMAT=0 VKPHI_F16MATH=1 "$vkphi" bench -m "$m" -n 0 --json -q
    run "bench-$preset-$t-parallel.json" "$vkphi" bench -m "$m" --parallel 1,4,16 -p 32 -n 64 --json -q
    # Where the subgroup size can be chosen (AMD RDNA: 32 or 64), decode at each, so the
    # device policy's wave size is settled by a measurement (kernels/policy.c).
    if grep -q "min 32, max 64, controllable" "$out/devices.txt"; then
        for sg in 32 64; do
            run "bench-$preset-$t-parallel-sg$sg.json" env VKPHI_SUBGROUP=$sg "$vkphi" bench -m "$m" --parallel 1,4,16 -p 32 -n 64 --json -q
        done
    fi
    if [ -n "${REF_BENCH:-}" ]; then
        run "ref-$preset-$t.txt" $REF_BENCH -m "$m" -p 512 -n 128 -ngl 99
    fi
done
say "done: $out"
