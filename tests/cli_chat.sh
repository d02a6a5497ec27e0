#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi chat with piped input: two turns and /exit, /reset, end of input, a system
# prompt, dropping the oldest turns when the context fills, and bad flags.
set -u
. "$(dirname "$0")/lib.sh"
pick_model
CHAT=("$VKPHI" chat -m "$M" -n 6 --temp 0 -q)

# The first answer of a chat is what `run --chat` writes for the same message.
# (Files, not $(...), so that trailing newlines in an answer count.)
"$VKPHI" run -m "$M" --chat -p "Hello" -n 6 --temp 0 -q >"$TMP/first" 2>&1
[ -s "$TMP/first" ] || bad "run --chat wrote nothing: $(cat "$TMP/first")"
first=$(cat "$TMP/first")
{ cat "$TMP/first"; echo; } >"$TMP/first1"          # one answer as chat writes it
{ cat "$TMP/first1" "$TMP/first1"; } >"$TMP/first2" # the same answer twice

# Two turns and /exit: two answers, the first one as run --chat gave it; what
# follows /exit is never read.
printf 'Hello\nHow are you?\n/exit\nNot this one\n' | "${CHAT[@]}" >"$TMP/two" 2>"$TMP/two.err"
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$TMP/two.err" ]; then ok "two turns: exit 0, quiet"; else bad "two turns: exit $rc, $(cat "$TMP/two.err")"; fi
n1=$(wc -c <"$TMP/first1")
if cmp -s -n "$n1" "$TMP/two" "$TMP/first1" && [ "$(wc -c <"$TMP/two")" -gt "$n1" ]; then
    ok "first answer is run --chat's; a second answer follows: '$(cat "$TMP/two")'"
else
    bad "two turns gave '$(cat "$TMP/two")'; the first answer should be '$first'"
fi
# The same again: the conversation (and its KV-cache reuse) is deterministic.
printf 'Hello\nHow are you?\n/exit\n' | "${CHAT[@]}" >"$TMP/two2" 2>&1
cmp -s "$TMP/two" "$TMP/two2" && ok "the chat repeats" || bad "second chat: '$(cat "$TMP/two2")'"
# End of input ends it just as /exit does.
printf 'Hello\nHow are you?\n' | "${CHAT[@]}" >"$TMP/eof" 2>&1
[ $? -eq 0 ] && cmp -s "$TMP/two" "$TMP/eof" && ok "end of input ends the chat" || bad "EOF: '$(cat "$TMP/eof")'"

# /reset forgets: the same message afterwards gets the first answer again.
printf 'Hello\n/reset\nHello\n' | "${CHAT[@]}" >"$TMP/reset" 2>&1
cmp -s "$TMP/reset" "$TMP/first2" && ok "/reset" || bad "/reset: '$(cat "$TMP/reset")'"

# Empty lines are not turns.
printf '\n\nHello\n\n' | "${CHAT[@]}" >"$TMP/empty" 2>&1
cmp -s "$TMP/empty" "$TMP/first1" && ok "empty lines are skipped" || bad "empty lines: '$(cat "$TMP/empty")'"

# A system prompt changes the answer (it is part of what the model reads).
printf 'Hello\n' | "$VKPHI" chat -m "$M" -n 6 --temp 0 -q --system "You are a pirate." >"$TMP/sys" 2>&1
[ $? -eq 0 ] && [ "$(cat "$TMP/sys")" != "$first" ] && ok "--system" || bad "--system: '$(cat "$TMP/sys")'"

# A small context: after a few turns the oldest are dropped, the chat goes on and says so.
printf 'Hello\nHello again\nAnd again\nOnce more\nLast one\n' |
    "$VKPHI" chat -m "$M" -n 6 --temp 0 -q -c 64 >"$TMP/full" 2>"$TMP/full.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "dropped the" "$TMP/full.err"; then
    ok "full context: $(head -n 1 "$TMP/full.err")"
else
    bad "full context: exit $rc, stdout '$(cat "$TMP/full")', stderr '$(cat "$TMP/full.err")'"
fi
# A message that cannot fit at all is refused, and the chat goes on.
long=$(printf 'word %.0s' $(seq 1 80))
printf '%s\nHello\n' "$long" | "$VKPHI" chat -m "$M" -n 6 --temp 0 -q -c 64 >"$TMP/long" 2>"$TMP/long.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "does not fit" "$TMP/long.err" && cmp -s "$TMP/long" "$TMP/first1"; then
    ok "a message too long for the context is refused"
else
    bad "too long: exit $rc, stdout '$(cat "$TMP/long")', stderr '$(cat "$TMP/long.err")'"
fi

# Bad flags: exit 1 and one line.
"$VKPHI" chat -m "$M" --bogus </dev/null >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && ok "bad flag: $(cat "$TMP/err")" || bad "bad flag: exit $rc, '$(cat "$TMP/err")'"
"$VKPHI" chat --help >"$TMP/out" 2>&1 && grep -q "oldest turns" "$TMP/out" && ok "help names the policy" || bad "help"

exit $failed
