#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Phi-4-mini's text side end to end, on a small model written here (mkmodel's tiny
# shape with plain Phi-4 RoPE, and Phi-4-mini's tokenizer and chat template from
# ../shared): the chat format, --reasoning in run and chat, --chat-template for a
# template vkphi does not know, a tokenizer.ggml.pre it does not implement, and the
# server's reasoning_content and tool calls over HTTP (serve_client.py --mini). The
# model's weights are random, so the answers are forced with VKPHI_TEST_OUTPUT.
set -u
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "skipped: python3 is needed"; exit 77; }
need_shared "Phi-4-mini's tokenizer (phi4-mini-tokenizer.gguf)"
tok=$SHARED/phi4-mini-tokenizer.gguf
[ -r "$tok" ] || { bad "$tok is missing"; exit 1; }

# A copy of the tokenizer file with one string value changed in place (same length).
edit_value() { # src dst key old new
    python3 - "$@" <<'PY'
import struct, sys
src, dst, key, old, new = sys.argv[1:]
d = bytearray(open(src, "rb").read())
k = d.find(key.encode() + b"\x08\x00\x00\x00")  # the key, then type 8 (string)
assert k > 0, key
at = k + len(key) + 4
n, = struct.unpack("<Q", d[at:at + 8])
v = bytes(d[at + 8:at + 8 + n])
assert old.encode() in v and len(old) == len(new)
d[at + 8:at + 8 + n] = v.replace(old.encode(), new.encode())
open(dst, "wb").write(d)
PY
}
mk() { # out tokenizer
    "$VKPHI" mkmodel --preset tiny --type Q8_0 --tokenizer "$2" -o "$1" >/dev/null 2>"$TMP/err" ||
        { bad "mkmodel --tokenizer $2: $(cat "$TMP/err")"; exit 1; }
}
M=$TMP/mini.gguf
mk "$M" "$tok"
"$VKPHI" info -m "$M" 2>&1 | grep -q "pre gpt-4o" && ok "info: the model has the o200k tokenizer" ||
    bad "info: $("$VKPHI" info -m "$M" 2>&1 | grep tokenizer)"

# The format: <|user|>hi<|end|><|assistant|> is 4 tokens.
"$VKPHI" run -m "$M" -c 256 --chat -p hi -n 1 --temp 0 >/dev/null 2>"$TMP/err"
grep -q "^prompt: 4 tokens" "$TMP/err" && ok "run --chat: Phi-4-mini's format, 4 tokens" ||
    bad "run --chat prompt: $(grep prompt: "$TMP/err")"

# --reasoning on a forced answer whose tags come split across tokens ("<th" "ink" ">").
ANSWER='<think>Let me see.</think>The answer is 4.<|end|>'
RUN=(env VKPHI_TEST_OUTPUT="$ANSWER" "$VKPHI" run -m "$M" -c 256 --chat -p hi -n 40 --temp 0 -q)
expect "--reasoning hide" "$("${RUN[@]}" --reasoning hide)" "The answer is 4."
expect "--reasoning show" "$("${RUN[@]}" --reasoning show)" "Let me see.
The answer is 4."
expect "show is the default" "$("${RUN[@]}")" "Let me see.
The answer is 4."
expect "--reasoning raw" "$("${RUN[@]}" --reasoning raw)" "<think>Let me see.</think>The answer is 4."
expect_error "--reasoning bogus" "hide, show or raw" "$VKPHI" run -m "$M" --reasoning bogus
# <|end|> ends the answer: nothing after it is generated.
out=$(env VKPHI_TEST_OUTPUT='Done.<|end|>More' "$VKPHI" run -m "$M" -c 256 --chat -p hi -n 40 --temp 0 2>&1 >/dev/null)
echo "$out" | grep -q "generation: 3 tokens" && ok "<|end|> ends generation (Done . <|end|>)" || bad "<|end|>: $out"

# chat: two turns with a system prompt, reasoning hidden; the turns end with <|end|>.
printf 'hi\nagain\n' | env VKPHI_TEST_OUTPUT="$ANSWER" "$VKPHI" chat -m "$M" -c 256 --system "Be brief." \
    -n 40 --temp 0 -q --reasoning hide >"$TMP/chat" 2>&1
expect "chat --reasoning hide" "$(cat "$TMP/chat")" "The answer is 4.
The answer is 4."

# A template vkphi does not know: refused with the reason, unless --chat-template names one.
edit_value "$tok" "$TMP/tok-other.gguf" tokenizer.chat_template "<|assistant|>" "<|ASSISTANT|>"
M2=$TMP/other-template.gguf
mk "$M2" "$TMP/tok-other.gguf"
expect_error "unknown template" "tokenizer.chat_template" "$VKPHI" run -m "$M2" -c 256 --chat -p hi -n 1 -q
expect_error "unknown template in chat" "--chat-template" "$VKPHI" chat -m "$M2" -c 256 -q </dev/null
out=$("$VKPHI" run -m "$M2" -c 256 --chat --chat-template phi4-mini -p hi -n 1 --temp 0 2>&1 >/dev/null)
echo "$out" | grep -q "^prompt: 4 tokens" && ok "--chat-template phi4-mini is the fallback" || bad "fallback: $out"
expect_error "a fallback the vocabulary lacks" "<|im_start|>" "$VKPHI" run -m "$M2" -c 256 --chat --chat-template phi4 -p hi -q
expect_error "unknown --chat-template" "phi4, phi4-mini" "$VKPHI" run -m "$M2" --chat-template vicuna -p hi
# Without --chat the template does not matter.
"$VKPHI" run -m "$M2" -c 256 -p hi -n 1 -q >/dev/null 2>&1 && ok "run without --chat ignores the template" ||
    bad "run without --chat on an unknown template"

# A pre-tokenizer vkphi does not implement: text is refused naming tokenizer.ggml.pre;
# token ids still run (vkphi logits loads no tokenizer).
edit_value "$tok" "$TMP/tok-pre.gguf" tokenizer.ggml.pre "gpt-4o" "gpt-4x"
M3=$TMP/other-pre.gguf
mk "$M3" "$TMP/tok-pre.gguf"
expect_error "unknown pre" "tokenizer.ggml.pre = 'gpt-4x'" "$VKPHI" run -m "$M3" -c 256 -p hi -n 1 -q
echo "13225 2375 0" >"$TMP/ids.txt"
if "$VKPHI" logits -m "$M3" --tokens "$TMP/ids.txt" --out "$TMP/logits.f32" -q 2>"$TMP/err" &&
    [ "$(wc -c <"$TMP/logits.f32")" -eq $((3 * 200064 * 4)) ]; then
    ok "logits runs on a file whose pre-tokenizer is unknown"
else
    bad "logits with an unknown pre: $(cat "$TMP/err")"
fi

# The server, started on a free port; $pid and $port, or a failed check.
pid=""
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; rm -rf "$TMP"' EXIT
serve() { # model [options...]
    local model=$1; shift
    : >"$TMP/log" # now, not in the child: the last server's lines must not be read as this one's
    "$VKPHI" serve -m "$model" --port 0 -c 512 --parallel 2 --api-key k "$@" >"$TMP/log" 2>&1 &
    pid=$!
    port=""
    for _ in $(seq 1 600); do
        # The server listens first and then loads the model: wait for it to say so.
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/log")
        [ -n "$port" ] && grep -q "vkphi serve: ready" "$TMP/log" && return 0
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    bad "the server did not start: $(cat "$TMP/log")"
    return 1
}
stop() { kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; pid=""; }
post() { # path body
    curl -s -H "Authorization: Bearer k" -H "Content-Type: application/json" "http://127.0.0.1:$port$1" -d "$2"
}

# A template vkphi does not know: chat requests get the reason, completions still work;
# --chat-template names the format to use.
if command -v curl >/dev/null && serve "$M2"; then
    out=$(post /v1/chat/completions '{"model":"other-template","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}')
    echo "$out" | grep -q '"code":"unsupported_chat_template"' && echo "$out" | grep -q "tokenizer.chat_template" &&
        ok "serve: chat with an unknown template is refused with the reason" || bad "serve, unknown template: $out"
    grep -q "warning: .*tokenizer.chat_template" "$TMP/log" && ok "serve warns at start" || bad "no warning: $(cat "$TMP/log")"
    out=$(post /v1/completions '{"model":"other-template","max_tokens":1,"prompt":"hi"}')
    echo "$out" | grep -q '"object":"text_completion"' && ok "serve: completions still work" || bad "completions: $out"
    stop
    if serve "$M2" --chat-template phi4-mini; then
        out=$(post /v1/chat/completions '{"model":"other-template","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}')
        echo "$out" | grep -q '"prompt_tokens":4,' && ok "serve --chat-template phi4-mini" || bad "serve --chat-template: $out"
        stop
    fi
fi

# Reasoning_content, tool calls and the template over HTTP.
FORCED='<think>Plan the call.</think>Calling.<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]<|/tool_call|><|end|>'
if VKPHI_TEST_OUTPUT="$FORCED" serve "$M"; then
    timeout 600 python3 "$here/serve_client.py" --port "$port" --key k --model mini --pid $pid --ctx 512 \
        --parallel 2 --mini "$FORCED" && ok "serve_client.py --mini" || bad "serve_client.py --mini"
    stop
fi

[ $failed -eq 0 ] && echo "cli_mini: all passed" || echo "cli_mini: failed"
exit $failed
