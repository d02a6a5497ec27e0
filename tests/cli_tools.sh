#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The small commands end to end: --version, --help, devices, info, quantize, and
# their bad input (one line on stderr, exit 1).
set -u
. "$(dirname "$0")/lib.sh"

# ---- the program ----
v=$("$VKPHI" --version); [[ "$v" =~ ^vkphi\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok "version: $v" || bad "version: '$v'"
help=$("$VKPHI" --help)
for c in run chat serve devices kernels info quantize tokenize mkmodel bench logits; do
    [[ "$help" == *"  $c "* ]] || bad "--help does not list $c"
    "$VKPHI" "$c" --help >"$TMP/out" 2>&1 && grep -q "usage: vkphi $c" "$TMP/out" || bad "$c --help"
done
ok "--help lists every command, and each has --help"
expect_error "unknown command" "unknown command" "$VKPHI" frobnicate

# ---- devices ----
"$VKPHI" devices >"$TMP/dev" 2>"$TMP/err" || bad "devices: $(cat "$TMP/err")"
for field in "device 0:" "vendor:" "driver:" "type:" "vulkan:" "memory heap 0:" "maxStorageBufferRange:" \
    "maxMemoryAllocationSize:" "subgroup size:" "fp16 arithmetic:" "int8 arithmetic:" "integer dot product:" \
    "cooperative matrix:"; do
    grep -qF "$field" "$TMP/dev" || bad "devices shows no '$field'"
done
grep -qE "maxStorageBufferRange: +[0-9]+ bytes" "$TMP/dev" && ok "devices: $(head -1 "$TMP/dev")" || bad "devices: range not in bytes"
expect_error "devices: unknown option" "unknown option" "$VKPHI" devices --frob

# ---- info and quantize on a model written here ----
F16="$TMP/tiny-F16.gguf"
"$VKPHI" mkmodel --preset tiny --type F16 -o "$F16" >/dev/null 2>"$TMP/err" || bad "mkmodel: $(cat "$TMP/err")"
"$VKPHI" info -m "$F16" >"$TMP/info" 2>"$TMP/err" || bad "info: $(cat "$TMP/err")"
for want in "architecture: phi3" "phi3.block_count" "tokenizer: model gpt2" "blk.0.attn_qkv.weight" "bits per weight" \
    "runnable: yes"; do
    grep -qF "$want" "$TMP/info" || bad "info shows no '$want'"
done
ok "info describes the model"
"$VKPHI" quantize "$F16" "$TMP/q.gguf" Q4_K_M 2>"$TMP/err" && [ -s "$TMP/q.gguf" ] && ok "quantize Q4_K_M" ||
    bad "quantize: $(cat "$TMP/err")"
"$VKPHI" info -m "$TMP/q.gguf" >"$TMP/info" 2>&1
grep -qE "^  output.weight +Q6_K" "$TMP/info" && grep -qE "^  blk.0.ffn_up.weight +Q4_K" "$TMP/info" &&
    grep -qF "runnable: yes" "$TMP/info" && ok "the Q4_K_M file has the mix and runs" || bad "Q4_K_M file: $(tail -3 "$TMP/info")"
out=$("$VKPHI" run -m "$TMP/q.gguf" -p "Hello" -n 3 --temp 0 -q 2>"$TMP/err") && ok "run on the quantized file" ||
    bad "run on the quantized file: $(cat "$TMP/err")"

# A readable file that vkphi cannot run: described, with the reason.
"$VKPHI" info -m "${VKPHI_TOKENIZER_GGUF:?set VKPHI_TOKENIZER_GGUF to runtime/convert/phi4-tokenizer.gguf}" >"$TMP/info" 2>&1
grep -q "^runnable: no: .*block_count" "$TMP/info" && ok "info: $(grep runnable "$TMP/info")" || bad "info on a tokenizer-only file"

# A model with a tensor type vkphi does not run (blk.1.ffn_up.weight re-labelled
# TQ1_0, which fits the same shape): info names the tensor and its type.
if command -v python3 >/dev/null; then
    python3 - "$F16" "$TMP/tq.gguf" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
name = b"blk.1.ffn_up.weight"
at = b.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
n_dims = struct.unpack_from("<I", b, at)[0]
struct.pack_into("<I", b, at + 4 + 8 * n_dims, 34)  # the type: TQ1_0
open(sys.argv[2], "wb").write(b)
EOF
    "$VKPHI" info -m "$TMP/tq.gguf" >"$TMP/info" 2>&1
    grep -qE "^  blk.1.ffn_up.weight +TQ1_0 .*\(type not run by vkphi\)" "$TMP/info" &&
        grep -qF "types vkphi does not run: 1 tensor, the first blk.1.ffn_up.weight (TQ1_0)" "$TMP/info" &&
        grep -qE "^  TQ1_0 +1 tensors .* bytes .*\(not supported by vkphi\)" "$TMP/info" &&
        grep -qF "runnable: no: unsupported type TQ1_0 in tensor 'blk.1.ffn_up.weight'" "$TMP/info" &&
        ok "info names the tensor vkphi cannot run: $(grep '^runnable' "$TMP/info")" ||
        bad "info on a TQ1_0 tensor: $(tail -4 "$TMP/info")"
else
    echo "skipped: python3 (to write a file with a type vkphi does not run) is absent"
fi

# The reference files of the remaining types: tensors and bytes per type.
if have_shared "info on the reference files of the remaining types"; then
    REF=$SHARED/reference
    "$VKPHI" info -m "$REF/tiny-phi4-Q4_0-mix.gguf" >"$TMP/info" 2>&1
    grep -qE "^  Q4_0 +10 tensors +8830976 weights +4967424 bytes +4.50 bits/weight$" "$TMP/info" &&
        grep -qE "^  Q4_1 +3 tensors +2359296 weights +1474560 bytes +5.00 bits/weight$" "$TMP/info" &&
        grep -qE "^  Q6_K +1 tensors .* 6.56 bits/weight$" "$TMP/info" && grep -qF "runnable: yes" "$TMP/info" &&
        ok "info: the Q4_0-mix file's types" || bad "info on the Q4_0-mix file: $(grep -A5 '^by type' "$TMP/info")"
    for m in Q2_K Q5_0-mix IQ4_XS-mix; do
        "$VKPHI" info -m "$REF/tiny-phi4-$m.gguf" >"$TMP/info" 2>&1
        grep -qF "runnable: yes" "$TMP/info" && ! grep -q "not run" "$TMP/info" &&
            ok "info: $m: $(grep -cE '^  [A-Z0-9_]+ +[0-9]+ tensors' "$TMP/info") types, runnable" ||
            bad "info on $m: $(tail -3 "$TMP/info")"
    done
fi

head -c 5000 "$F16" >"$TMP/trunc.gguf"
expect_error "info: truncated file" "truncated" "$VKPHI" info -m "$TMP/trunc.gguf"
expect_error "info: missing file" "cannot open" "$VKPHI" info -m "$TMP/none.gguf"
expect_error "quantize: unknown type" "Q9_Z" "$VKPHI" quantize "$F16" "$TMP/x.gguf" Q9_Z
expect_error "quantize: quantized input" "already" "$VKPHI" quantize "$TMP/q.gguf" "$TMP/x.gguf" Q8_0
expect_error "quantize: same file" "differ" "$VKPHI" quantize "$F16" "$F16" Q8_0
expect_error "quantize: missing argument" "IN.gguf OUT.gguf TYPE" "$VKPHI" quantize "$F16"
expect_error "quantize: IQ2_XXS is not made" "does not implement" "$VKPHI" quantize "$F16" "$TMP/x.gguf" IQ2_XXS
expect_error "quantize: missing importance matrix" "$TMP/none.dat" "$VKPHI" quantize "$F16" "$TMP/x.gguf" Q4_K_M --imatrix "$TMP/none.dat"
"$VKPHI" quantize "$F16" "$TMP/q2.gguf" Q2_K 2>"$TMP/err" && "$VKPHI" info -m "$TMP/q2.gguf" >"$TMP/info" 2>&1 &&
    grep -qE "^  blk.0.attn_qkv.weight +Q4_K" "$TMP/info" && grep -qE "^  blk.0.ffn_down.weight +Q3_K" "$TMP/info" &&
    grep -qE "^  blk.0.ffn_up.weight +Q2_K" "$TMP/info" && grep -qF "runnable: yes" "$TMP/info" &&
    ok "quantize Q2_K: the reference's mix, runnable" || bad "quantize Q2_K: $(cat "$TMP/err") $(tail -3 "$TMP/info")"
[ ! -e "$TMP/x.gguf" ] && ok "a failed quantize leaves no file" || bad "a failed quantize left $TMP/x.gguf"

[ $failed -eq 0 ] && echo "cli_tools: all passed" || echo "cli_tools: failures above"
exit $failed
