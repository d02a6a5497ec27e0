#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi tokenize end to end: ids, pieces, special tokens, files (exact bytes), errors.
set -u
. "$(dirname "$0")/lib.sh"
DATA=${VKPHI_TEST_DATA:?set VKPHI_TEST_DATA to tests/data}
M=${VKPHI_TOKENIZER_GGUF:?set VKPHI_TOKENIZER_GGUF to runtime/convert/phi4-tokenizer.gguf}


expect "ids" "$("$VKPHI" tokenize -m "$M" "Hello world")" "[9906,1917]"
expect "empty text" "$("$VKPHI" tokenize -m "$M" "")" "[]"
expect "pieces" "$("$VKPHI" tokenize -m "$M" --pieces "Hello world")" \
    '[{"id":9906,"piece":"Hello"},{"id":1917,"piece":" world"}]'
expect "pieces are JSON-escaped" "$("$VKPHI" tokenize -m "$M" --pieces 'a"b\')" \
    '[{"id":64,"piece":"a"},{"id":1,"piece":"\""},{"id":65,"piece":"b"},{"id":59,"piece":"\\"}]'
expect "special on" "$("$VKPHI" tokenize -m "$M" --special '<|im_start|>user<|im_sep|>hi<|im_end|>')" \
    "[100264,882,100266,6151,100265]"
expect "special off" "$("$VKPHI" tokenize -m "$M" '<|im_end|>')" "[27,91,318,6345,91,29]"
expect "text after --" "$("$VKPHI" tokenize -m "$M" -- -m)" "[1474]"

printf 'Hello world' >"$TMP/a.txt"
expect "file" "$("$VKPHI" tokenize -m "$M" -f "$TMP/a.txt")" "[9906,1917]"
printf 'Hello world\n' >"$TMP/b.txt"
expect "file keeps its newline" "$("$VKPHI" tokenize -m "$M" -f "$TMP/b.txt")" "[9906,1917,198]"
expect "stdin" "$(printf 'Hello world' | "$VKPHI" tokenize -m "$M" -f -)" "[9906,1917]"

# Invalid UTF-8 in a file: byte tokens, U+FFFD in the piece text, the exact bytes in hex.
printf 'caf\xc3\xa9 \xff' >"$TMP/c.txt"
expect "invalid bytes" "$("$VKPHI" tokenize -m "$M" -f "$TMP/c.txt")" "[936,59958,220,187]"
pieces=$("$VKPHI" tokenize -m "$M" --pieces -f "$TMP/c.txt")
expect "invalid bytes, pieces" "$pieces" \
    "$(printf '[{"id":936,"piece":"ca"},{"id":59958,"piece":"f\xc3\xa9"},{"id":220,"piece":" "},{"id":187,"piece":"\xef\xbf\xbd","bytes":"ff"}]')"
if command -v iconv >/dev/null; then
    if [ -n "$pieces" ] && printf '%s' "$pieces" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then echo "ok   pieces are valid UTF-8"
    else echo "FAIL pieces are not valid UTF-8"; failed=1; fi
fi

help=$("$VKPHI" tokenize --help); rc=$?
if [ $rc -eq 0 ] && [[ "$help" == *"usage: vkphi tokenize"* ]]; then echo "ok   --help"; else echo "FAIL --help (exit $rc)"; failed=1; fi

expect_error "missing file" "no-such-file.txt" "$VKPHI" tokenize -m "$M" -f "$TMP/no-such-file.txt"
expect_error "missing model" "no-such-model.gguf" "$VKPHI" tokenize -m "$TMP/no-such-model.gguf" "hi"
expect_error "not a GGUF" "phi4-tokenizer-cases.jsonl" "$VKPHI" tokenize -m "$DATA/phi4-tokenizer-cases.jsonl" "hi"
expect_error "no -m" "-m MODEL" "$VKPHI" tokenize "hi"
expect_error "no text" "TEXT" "$VKPHI" tokenize -m "$M"
expect_error "text and file" "not both" "$VKPHI" tokenize -m "$M" -f "$TMP/a.txt" "hi"
expect_error "unknown option" "--bogus" "$VKPHI" tokenize -m "$M" --bogus "hi"
expect_error "-f without a name" "'-f'" "$VKPHI" tokenize -m "$M" -f

exit $failed
