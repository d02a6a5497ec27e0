#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi run end to end: greedy output repeats, seeded sampling repeats, stop strings,
# the chat template, prompt files, timings on stderr, the built-in default model,
# and bad flags refused with one line.
set -u
. "$(dirname "$0")/lib.sh"
pick_model

# ---- options ----
"$VKPHI" run --help >"$TMP/out" 2>&1 && grep -q -- "--repeat-penalty" "$TMP/out" && ok "help" || bad "help"
expect_error "bad temperature" "--temp" "$VKPHI" run -m "$M" --temp abc
expect_error "negative temperature" "--temp" "$VKPHI" run -m "$M" --temp -1
expect_error "top-p out of range" "--top-p" "$VKPHI" run -m "$M" --top-p 1.5
expect_error "unknown option" "--bogus" "$VKPHI" run -m "$M" --bogus
expect_error "missing value" "-n" "$VKPHI" run -m "$M" -n
expect_error "bad -n" "-n" "$VKPHI" run -m "$M" -n 12x
expect_error "bad --kv" "--kv" "$VKPHI" run -m "$M" --kv q4
expect_error "stray argument" "Hello" "$VKPHI" run -m "$M" Hello
expect_error "-p and -f" "not both" "$VKPHI" run -m "$M" -p a -f b
expect_error "--system without --chat" "--chat" "$VKPHI" run -m "$M" --system hi
expect_error "missing model file" "$TMP/none.gguf" "$VKPHI" run -m "$TMP/none.gguf" -p hi
expect_error "missing prompt file" "$TMP/none.txt" "$VKPHI" run -m "$M" -f "$TMP/none.txt"
expect_error "prompt longer than the context" "context" "$VKPHI" run -m "$M" -c 8 -q \
    -p "one two three four five six seven eight nine ten eleven twelve"

# ---- greedy output repeats, and the timing line ----
"$VKPHI" run -m "$M" -p "Hello" -n 8 --temp 0 >"$TMP/g1" 2>"$TMP/g1.err"
rc1=$?
"$VKPHI" run -m "$M" -p "Hello" -n 8 --temp 0 --seed 5 -q >"$TMP/g2" 2>"$TMP/g2.err"
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ -s "$TMP/g1" ] && cmp -s "$TMP/g1" "$TMP/g2"; then
    ok "greedy output repeats (and ignores the seed): '$(cat "$TMP/g1")'"
else
    bad "greedy runs: exit $rc1/$rc2, '$(cat "$TMP/g1")' vs '$(cat "$TMP/g2")', stderr $(cat "$TMP/g1.err" "$TMP/g2.err")"
fi
if grep -q "prompt: .*tokens/s" "$TMP/g1.err" && grep -q "generation: 8 tokens" "$TMP/g1.err" &&
    grep -q "time to first token" "$TMP/g1.err"; then
    ok "timings on stderr: $(tail -n 1 "$TMP/g1.err")"
else
    bad "timings on stderr: '$(cat "$TMP/g1.err")'"
fi
expect "-q prints nothing on stderr" "$(cat "$TMP/g2.err")" ""

# ---- the same prompt from a file ----
printf 'Hello' >"$TMP/prompt.txt"
"$VKPHI" run -m "$M" -f "$TMP/prompt.txt" -n 8 --temp 0 -q >"$TMP/f1" 2>&1
cmp -s "$TMP/f1" "$TMP/g1" && ok "-f FILE gives what -p gives" || bad "-f FILE: '$(cat "$TMP/f1")'"

# ---- seeded sampling repeats; another seed differs ----
s1=$("$VKPHI" run -m "$M" -p "Hello" -n 16 --temp 1.2 --top-k 0 --top-p 1 --min-p 0 --seed 42 -q)
s2=$("$VKPHI" run -m "$M" -p "Hello" -n 16 --temp 1.2 --top-k 0 --top-p 1 --min-p 0 --seed 42 -q)
s3=$("$VKPHI" run -m "$M" -p "Hello" -n 16 --temp 1.2 --top-k 0 --top-p 1 --min-p 0 --seed 43 -q)
[ -n "$s1" ] && [ "$s1" == "$s2" ] && ok "seeded sampling repeats" || bad "seed 42 twice: '$s1' vs '$s2'"
[ "$s1" != "$s3" ] && ok "another seed, other text" || bad "seeds 42 and 43 gave the same text '$s1'"

# ---- a stop string: the text before its first occurrence, without it ----
long=$("$VKPHI" run -m "$M" -p "Hello" -n 24 --temp 0 -q)
stop=""
for start in 6 9 12 15 3; do
    cand=${long:$start:3}
    case "$cand" in *\\* | *[![:print:]]* | "" ) continue ;; esac
    [ ${#cand} -eq 3 ] && stop=$cand && break
done
if [ -n "$stop" ]; then
    want=${long%%"$stop"*}
    got=$("$VKPHI" run -m "$M" -p "Hello" -n 24 --temp 0 -q --stop "never here" --stop "$stop")
    expect "--stop '$stop'" "$got" "$want"
else
    bad "no printable 3 bytes in the greedy text '$long' to use as a stop string"
fi

# ---- the chat template ----
"$VKPHI" run -m "$M" --chat --system "Be brief." -p "Hi" -n 6 --temp 0 -q >"$TMP/c1" 2>"$TMP/c1.err"
[ $? -eq 0 ] && ok "--chat --system: '$(cat "$TMP/c1")'" || bad "--chat: $(cat "$TMP/c1.err")"
"$VKPHI" run -m "$M" --chat -p "Hello" -n 8 --temp 0 -q >"$TMP/c2" 2>"$TMP/c2.err"
[ $? -eq 0 ] && ! cmp -s "$TMP/c2" "$TMP/g1" && ok "--chat changes the prompt" || bad "--chat: $(cat "$TMP/c2.err")"

# ---- without -m: the built-in default model, and a note that it is random ----
"$VKPHI" run -n 8 >"$TMP/d" 2>"$TMP/d.err"
rc=$?
if [ $rc -eq 0 ] && [ -s "$TMP/d" ] && grep -q "random" "$TMP/d.err" && grep -q -- "-m phi-4" "$TMP/d.err"; then
    ok "run without -m: '$(cat "$TMP/d")'"
else
    bad "run without -m: exit $rc, stdout '$(cat "$TMP/d")', stderr '$(cat "$TMP/d.err")'"
fi

exit $failed
