#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The small commands end to end: --version, --help, devices, info, quantize, and
# their bad input (one line on stderr, exit 1).
set -u
. "$(dirname "$0")/lib.sh"

# ---- the program ----
v=$("$VKPHI" --version); [[ "$v" =~ ^vkphi\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok "version: $v" || bad "version: '$v'"
help=$("$VKPHI" --help)
for c in run chat serve devices info quantize tokenize mkmodel bench logits; do
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
"$VKPHI" info -m "$VKPHI_TEST_DATA/phi4-tokenizer.gguf" >"$TMP/info" 2>&1
grep -q "^runnable: no: .*block_count" "$TMP/info" && ok "info: $(grep runnable "$TMP/info")" || bad "info on a tokenizer-only file"

head -c 5000 "$F16" >"$TMP/trunc.gguf"
expect_error "info: truncated file" "truncated" "$VKPHI" info -m "$TMP/trunc.gguf"
expect_error "info: missing file" "cannot open" "$VKPHI" info -m "$TMP/none.gguf"
expect_error "quantize: unknown type" "Q9_Z" "$VKPHI" quantize "$F16" "$TMP/x.gguf" Q9_Z
expect_error "quantize: quantized input" "already" "$VKPHI" quantize "$TMP/q.gguf" "$TMP/x.gguf" Q8_0
expect_error "quantize: same file" "differ" "$VKPHI" quantize "$F16" "$F16" Q8_0
expect_error "quantize: missing argument" "IN.gguf OUT.gguf TYPE" "$VKPHI" quantize "$F16"
[ ! -e "$TMP/x.gguf" ] && ok "a failed quantize leaves no file" || bad "a failed quantize left $TMP/x.gguf"

[ $failed -eq 0 ] && echo "cli_tools: all passed" || echo "cli_tools: failures above"
exit $failed
