#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# AMD's shader compiler over every kernel, without an AMD GPU (the CI job): RADV's
# null devices (RADV_FORCE_FAMILY) compile every pipeline `vkphi kernels --all`
# lists, with the validation layer on, on the families of Debian 12's Mesa 22 (GCN5,
# the Vega APU, RDNA1, RDNA2, the Steam Deck, RDNA3, Phoenix) and on navi31 with
# trixie's Mesa 25.0 (tools/mesa.sh 25: RDNA3's cooperative matrices on). Compiles
# only: nothing runs. Fails when a pipeline does not compile, the validation layer
# says anything, or a kernel spills registers or uses scratch memory.
#
#   tests/radv.sh [-o DIR] [FAMILY...]   default: every family below; DIR keeps each
#                                        family's JSON (bench/amd_table.py reads them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vkphi=${VKPHI_BIN:-$root/build/bin}/vkphi
out=
if [ "${1:-}" = -o ]; then out=$2; shift 2; fi
mesa22=(vega10 renoir navi10 navi21 navi23 vangogh gfx1100 gfx1103_r1)
families=("$@")
[ ${#families[@]} -gt 0 ] || families=("${mesa22[@]}" navi31)
[ -x "$vkphi" ] || { echo "radv: $vkphi is not built" >&2; exit 2; }
dir=${out:-$(mktemp -d)}
mkdir -p "$dir"
if printf '%s\n' "${families[@]}" | grep -qx navi31; then bash "$root/tools/mesa.sh" 25 install >/dev/null 2>&1 ||
    bash "$root/tools/mesa.sh" 25 install; fi

# One family: its JSON in $dir/FAMILY.json, its verdict on stdout.
compile() {
    local f=$1 t0=$SECONDS
    local run=(env VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/radeon_icd.x86_64.json)
    [ "$f" = navi31 ] && run=(bash "$root/tools/mesa.sh" 25)
    if ! RADV_FORCE_FAMILY=$f VKPHI_VALIDATE=1 "${run[@]}" "$vkphi" kernels --all --stats --json \
        >"$dir/$f.json" 2>"$dir/$f.err"; then
        echo "FAIL $f: $(grep -v '^ac_compute_device_uuid' "$dir/$f.err" | head -3)"
        return 1
    fi
    python3 - "$dir/$f.json" "$f" "$((SECONDS - t0))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f, secs = sys.argv[2], sys.argv[3]
ks = r["kernels"]
bad = [k for k in ks if not k["ok"]]
spill = [k for k in ks if k["ok"] and (k["stats"].get("Spilled VGPRs", 0) or k["stats"].get("Spilled SGPRs", 0)
                                       or k["stats"].get("Scratch size", 0))]
nostats = [k for k in ks if k["ok"] and "VGPRs" not in k["stats"]]
coop = [k for k in ks if "coop" in k["kernel"]]
problems = []
if not r["compile_only"]: problems.append("not a null device: " + r["device"])
if r["validation_messages"]: problems.append("%d validation messages" % r["validation_messages"])
if bad: problems.append("%d failed: %s" % (len(bad), "; ".join(k["kernel"] + " " + k.get("error", "") for k in bad[:3])))
if spill: problems.append("%d spill or use scratch: %s" % (len(spill), ", ".join(
    "%s %s (%d VGPRs spilled)" % (k["kernel"], k["variant"], k["stats"].get("Spilled VGPRs", 0)) for k in spill[:6])))
if nostats: problems.append("%d without statistics" % len(nostats))
if f == "navi31" and not (r["coopmat"] and coop): problems.append("no cooperative-matrix kernels on navi31")
print("%s %s: %d pipelines (%d on cooperative matrices), %.1f s of compiling, %s s in all%s" % (
    "FAIL" if problems else "ok  ", f, len(ks), len(coop), r["total_ms"] / 1e3, secs,
    "; " + "; ".join(problems) if problems else ", no spills, validation silent"))
sys.exit(1 if problems else 0)
PY
}
export -f compile
export root vkphi dir
# Two families at a time (each compile is one thread).
printf '%s\n' "${families[@]}" | xargs -P 2 -I{} bash -c 'compile {}' && rc=0 || rc=1
[ -n "$out" ] || rm -rf "$dir"
[ $rc -eq 0 ] && echo "radv: every kernel compiled on ${#families[@]} AMD families" || echo "radv: FAILED"
exit $rc
