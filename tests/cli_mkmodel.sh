#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi mkmodel end to end: a file that opens with the real tokenizer, the same
# bytes for the same seed at any thread count, other bytes for another seed, no
# temporary file left behind, and one-line errors for bad input.
set -u
. "$(dirname "$0")/lib.sh"


help=$("$VKPHI" mkmodel --help); rc=$?
if [ $rc -eq 0 ] && [[ "$help" == *"usage: vkphi mkmodel"* ]] && [[ "$help" == *"phi-4"* ]] &&
    [[ "$help" == *"Q4_K_M"* ]]; then ok "--help"; else bad "--help (exit $rc)"; fi

# A small model, twice with the same seed (1 and 2 threads), once with another.
if "$VKPHI" mkmodel --preset tiny --type Q8_0 --seed 5 --threads 1 -o "$TMP/a.gguf" 2>"$TMP/log"; then
    ok "tiny Q8_0: $(cat "$TMP/log")"
else
    bad "tiny Q8_0: $(cat "$TMP/log")"
fi
"$VKPHI" mkmodel --preset tiny --type Q8_0 --seed 5 --threads 2 -o "$TMP/b.gguf" 2>/dev/null
"$VKPHI" mkmodel --preset tiny --type Q8_0 --seed 6 -o "$TMP/c.gguf" 2>/dev/null
if [ -s "$TMP/a.gguf" ] && cmp -s "$TMP/a.gguf" "$TMP/b.gguf"; then ok "same seed, same bytes"; else bad "same seed, same bytes"; fi
if [ -s "$TMP/c.gguf" ] && ! cmp -s "$TMP/a.gguf" "$TMP/c.gguf"; then ok "another seed, other bytes"; else bad "another seed"; fi
if [ "$(head -c 4 "$TMP/a.gguf")" == "GGUF" ]; then ok "GGUF magic"; else bad "GGUF magic"; fi
# Tiny Q8_0: 3 layers of 512 (qkv 768 rows, output 512, up 3072, down 512 rows of 1536) and two
# 100352-row tables, 34 bytes per 32 values, plus norms and the tokenizer: about 117 MiB.
size=$(stat -c %s "$TMP/a.gguf" 2>/dev/null || echo 0)
if [ "$size" -gt 115000000 ] && [ "$size" -lt 125000000 ]; then ok "size $size"; else bad "size $size"; fi

# The file carries Phi-4's tokenizer: tokenize reads it back.
ids=$("$VKPHI" tokenize -m "$TMP/a.gguf" "Hello world" 2>&1)
if [ "$ids" == "[9906,1917]" ]; then ok "tokenizer in the file"; else bad "tokenizer in the file: $ids"; fi

# No temporary files left beside the outputs.
if ls "$TMP" | grep -q partial; then bad "temporary files left: $(ls "$TMP")"; else ok "no temporary files"; fi

expect_error "unknown preset" "phi-5" "$VKPHI" mkmodel --preset phi-5 --type Q8_0 -o "$TMP/x.gguf"
expect_error "unknown type" "Q9_X" "$VKPHI" mkmodel --preset tiny --type Q9_X -o "$TMP/x.gguf"
expect_error "no output" "-o" "$VKPHI" mkmodel --preset tiny --type Q8_0
expect_error "bad seed" "--seed" "$VKPHI" mkmodel --preset tiny --type Q8_0 --seed x -o "$TMP/x.gguf"
expect_error "unknown option" "--bogus" "$VKPHI" mkmodel --bogus
expect_error "unwritable path" "no-such-dir" "$VKPHI" mkmodel --preset tiny --type Q8_0 -o "$TMP/no-such-dir/x.gguf"
if [ -e "$TMP/x.gguf" ]; then bad "a failed run left a file"; else ok "failed runs leave no file"; fi

exit $failed
