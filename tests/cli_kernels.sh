#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi kernels end to end: every pipeline of a model compiles on this driver, the
# JSON says the same as the table, and on RADV's null devices (AMD's compiler
# without an AMD GPU, where nothing can run) the compile-only path works with the
# compiler's figures; a model run there is refused with one sentence.
set -u
. "$(dirname "$0")/lib.sh"

M="$TMP/tiny-Q4_K_M.gguf"
"$VKPHI" mkmodel --preset tiny --type Q4_K_M -o "$M" >/dev/null 2>"$TMP/err" || bad "mkmodel: $(cat "$TMP/err")"
export MESA_SHADER_CACHE_DISABLE=${MESA_SHADER_CACHE_DISABLE:-false} # the suite may reuse Mesa's cache

# The pipelines a model uses: the elementwise and attention kernels, and for each of
# its weight types (Q4_K, Q6_K) the matrix-vector kernel at 1 to 16 tokens and the
# many-token kernel.
if "$VKPHI" kernels -m "$M" >"$TMP/text" 2>"$TMP/err"; then
    n=$(sed -n 's/^\([0-9]*\) pipelines in .*/\1/p' "$TMP/text")
    # (Without subgroup arithmetic the matrix-vector kernels are their _nosg builds.)
    for k in rmsnorm rope swiglu attn_decode matvec_q4_k matvec_q6_k; do
        grep -qE "^$k(_nosg)? " "$TMP/text" || bad "kernels -m: no $k in the table"
    done
    [ "$(grep -cE '^matvec_q4_k(_nosg)? .* tokens? ' "$TMP/text")" -eq 16 ] &&
        ok "kernels -m: $n pipelines, matvec at 1..16 tokens" ||
        bad "kernels -m: matvec_q4_k variants: $(grep -cE '^matvec_q4_k(_nosg)? ' "$TMP/text")"
else
    bad "kernels -m: $(cat "$TMP/err")"
fi
"$VKPHI" kernels -m "$M" --json >"$TMP/json" 2>"$TMP/err" || bad "kernels --json: $(cat "$TMP/err")"
python3 - "$TMP/json" "${n:-0}" <<'PY' && ok "kernels --json: the same pipelines, all compiled" || bad "kernels --json"
import json, sys
r = json.load(open(sys.argv[1]))
ks = r["kernels"]
assert len(ks) == int(sys.argv[2]), (len(ks), sys.argv[2])
assert all(k["ok"] and k["workgroup"] > 0 and k["compile_ms"] >= 0 for k in ks)
assert r["validation_messages"] == 0
PY
expect_error "kernels: -m and --all" "exclude each other" "$VKPHI" kernels -m "$M" --all
expect_error "kernels: a missing model" "nosuch.gguf" "$VKPHI" kernels -m "$TMP/nosuch.gguf"
expect_error "kernels: unknown option" "unknown option" "$VKPHI" kernels --frob

# RADV's null devices, where the system's Mesa has RADV and this run is on the
# system's drivers (not through another Mesa's launcher): navi21 (RDNA2, discrete)
# and vangogh (the Steam Deck's APU, whose budget query crashed the probe).
radv=/usr/share/vulkan/icd.d/radeon_icd.x86_64.json
if [ -f "$radv" ] && [ -z "${VKPHI_LAUNCHER:-}" ]; then
    for family in navi21 vangogh; do
        if VK_ICD_FILENAMES=$radv RADV_FORCE_FAMILY=$family "$VKPHI" kernels -m "$M" --stats --json \
            >"$TMP/radv.json" 2>"$TMP/err"; then
            python3 - "$TMP/radv.json" <<'PY' && ok "kernels on RADV's null $family: compiled, with ACO's figures" ||
import json, sys
r = json.load(open(sys.argv[1]))
assert r["compile_only"] and r["validation_messages"] == 0 and len(r["kernels"]) > 20
for k in r["kernels"]:
    s = k["stats"]
    assert k["ok"] and s["VGPRs"] > 0 and s["Subgroups per SIMD"] > 0, k
    assert s["Spilled VGPRs"] == 0 and s["Spilled SGPRs"] == 0 and s["Scratch size"] == 0, k
PY
                bad "kernels on $family: $(head -c 300 "$TMP/radv.json")"
        else
            bad "kernels on RADV's null $family: $(cat "$TMP/err")"
        fi
    done
    VK_ICD_FILENAMES=$radv RADV_FORCE_FAMILY=navi21 "$VKPHI" devices >"$TMP/dev" 2>&1
    grep -q "compiles only: *yes" "$TMP/dev" && ok "devices marks the null device" || bad "devices on navi21: $(cat "$TMP/dev")"
    VK_ICD_FILENAMES=$radv RADV_FORCE_FAMILY=navi21 expect_error "run on a null device" "cannot run them" \
        "$VKPHI" run -m "$M" -p hi -n 1 -q
else
    echo "skipped: RADV's null devices (no RADV, or another Mesa's launcher)"
fi
finish
