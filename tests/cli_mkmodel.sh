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

# Without ../shared, tests run on a model written by write_tiny (lib.sh) in place of
# ../shared/reference/tiny-phi4-Q8_0.gguf: it has the reference files' vocabulary and,
# where ../shared is there to compare, that file's tensors (names, types, shapes,
# bytes), tokenizer and token ids.
if command -v python3 >/dev/null; then
    if write_tiny "$TMP/t.gguf"; then
        "$VKPHI" info -m "$TMP/t.gguf" >"$TMP/t.info" 2>&1
        grep -qF "tokenizer: model gpt2, pre dbrx, vocabulary 4192, 3840 merges, bos 4097, eos 4105" "$TMP/t.info" &&
            grep -qx "runnable: yes" "$TMP/t.info" && ok "write_tiny: the reference files' vocabulary, runnable" ||
            bad "write_tiny: $(grep -E '^(tokenizer|runnable):' "$TMP/t.info")"
        if have_shared "write_tiny's model compared with the reference file"; then
            ref=$SHARED/reference/tiny-phi4-Q8_0.gguf
            "$VKPHI" info -m "$ref" >"$TMP/r.info" 2>&1
            # Past the file: and name: lines; the tensors may come in another order.
            if diff <(tail -n +3 "$TMP/t.info" | sort) <(tail -n +3 "$TMP/r.info" | sort) >"$TMP/diff"; then
                ok "write_tiny: the reference file's tensors and tokenizer"
            else
                bad "write_tiny's model differs from $ref: $(cat "$TMP/diff")"
            fi
            text="<|im_start|>user<|im_sep|>Hello, world! Wie geht's? 12345 <|im_end|><|endoftext|>"
            expect "write_tiny: the reference file's token ids" "$("$VKPHI" tokenize -m "$TMP/t.gguf" --special "$text" 2>&1)" \
                "$("$VKPHI" tokenize -m "$ref" --special "$text" 2>&1)"
        fi
    else
        bad "write_tiny: $(cat "$TMP/err")"
    fi
else
    echo "skipped: python3 (for write_tiny) is absent"
fi

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
