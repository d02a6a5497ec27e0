#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi serve end to end on loopback: checks the 503s while the model loads, starts
# the server on a free port with a small model, runs tests/serve_client.py (every
# endpoint and error case, /metrics against known requests, streaming, 8 concurrent
# clients, batch invariance at 4 slots, disconnects, prefix reuse, a soak with stable
# memory), checks a curl client that gives up mid-stream, a clean shutdown on SIGTERM,
# and batch invariance at 8 slots.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
command -v python3 >/dev/null || { echo "skipped: python3 is needed for the HTTP client checks"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl is needed"; exit 77; }

tmp=$TMP # removed by cleanup, which takes over lib.sh's trap
pid=""
client=""
cleanup() {
    [ -n "$client" ] && kill "$client" 2>/dev/null
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE # so that cleanup runs then too
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The shared tiny reference model, or one of its shape (a 4192-token vocabulary: it
# decodes about 5x faster on lavapipe than Phi-4's 100352).
pick_model
model=$M
soak=300
id=$(basename "$model" .gguf)
key="test-key-$$"
parallel=4
ctx=512

# Start on port 0 (the kernel picks a free one), read the port from the log and wait
# until the model has loaded (the server listens before it loads).
start_server() {
    : >"$tmp/log"
    "$VKPHI" serve -m "$model" --port 0 --parallel $parallel -c $ctx --api-key "$key" "$@" >"$tmp/log" 2>&1 &
    pid=$!
    # Should this script itself be killed (SIGKILL skips the trap), the server still
    # goes within 15 minutes; the watchdog ends on its own once the server has gone.
    (for _ in $(seq 1 900); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done; kill -KILL "$pid") \
        >/dev/null 2>&1 &
    port=""
    for _ in $(seq 1 600); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
        [ -n "$port" ] && grep -q "vkphi serve: ready" "$tmp/log" && break
        port=""
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        cat "$tmp/log"
        echo "FAIL: the server did not start"
        exit 1
    fi
}

# Option errors come back as one line and exit code 1, before anything loads.
for bad in "--port 70000" "--parallel 0" "--parallel x" "--bogus" "--host"; do
    # shellcheck disable=SC2086
    out=$("$VKPHI" serve -m "$model" $bad 2>&1); rc=$?
    [ $rc -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "serve $bad: rc $rc, '$out'"
done
"$VKPHI" serve --help | grep -- "--parallel" >/dev/null || fail "serve --help"
"$VKPHI" serve -m "$tmp/missing.gguf" --port 0 >/dev/null 2>&1 && fail "a missing model must fail"

# While the model loads (held back by the test-only VKPHI_TEST_LOAD_DELAY_MS): /health
# is 503 {"status":"loading"}, the API 503 with an OpenAI error, /metrics says
# vkphi_ready 0; once loaded, 200. SIGTERM while loading ends the server.
: >"$tmp/log"
VKPHI_TEST_LOAD_DELAY_MS=4000 "$VKPHI" serve -m "$model" --port 0 --parallel 1 -c 64 --api-key "$key" \
    >"$tmp/log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
    [ -n "$port" ] && break
    sleep 0.05
done
if [ -n "$port" ]; then
    lb="http://127.0.0.1:$port"
    out=$(curl -s -w ' %{http_code}' "$lb/health")
    [ "$out" = '{"status":"loading"} 503' ] || fail "/health while loading: '$out'"
    out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "$lb/v1/chat/completions" \
        -d "{\"model\":\"$id\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
    case "$out" in
    *'"type":"server_error"'*'"code":"model_loading"}} 503') ;;
    *) fail "chat while loading: '$out'" ;;
    esac
    out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $key" "$lb/v1/models")
    case "$out" in *'"code":"model_loading"}} 503') ;; *) fail "models while loading: '$out'" ;; esac
    out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer nope" "$lb/v1/models")
    case "$out" in *'"code":"invalid_api_key"}} 401') ;; *) fail "a wrong key while loading is still 401: '$out'" ;; esac
    out=$(curl -s "$lb/metrics")
    echo "$out" | grep -x 'vkphi_ready 0' >/dev/null || fail "/metrics while loading says vkphi_ready 0: $(echo "$out" | head -3)"
    echo "$out" | grep -x 'vkphi_requests_total{endpoint="/health",code="5xx"} 1' >/dev/null ||
        fail "/metrics counts the 503 of /health: $(echo "$out" | grep health)"
    grep -q "vkphi serve: ready" "$tmp/log" && fail "ready before VKPHI_TEST_LOAD_DELAY_MS had passed"
    ready=""
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$lb/health")" = 200 ] && { ready=1; break; }
        sleep 0.1
    done
    [ -n "$ready" ] || fail "/health did not turn 200 after loading: $(cat "$tmp/log")"
    grep -q "vkphi serve: ready" "$tmp/log" || fail "the ready line is logged"
    curl -s "$lb/metrics" | grep -x 'vkphi_ready 1' >/dev/null || fail "/metrics says vkphi_ready 1 once loaded"
    kill -TERM "$pid"
    wait "$pid"; rc=$?
    [ $rc -eq 0 ] || fail "exit code after SIGTERM (loaded): $rc"
else
    fail "the delayed server did not listen: $(cat "$tmp/log")"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
fi
pid=""
# SIGTERM while loading: the default action, the process ends at once.
: >"$tmp/log"
VKPHI_TEST_LOAD_DELAY_MS=20000 "$VKPHI" serve -m "$model" --port 0 -c 64 >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$tmp/log" && break; sleep 0.05; done
grep -q "listening on" "$tmp/log" || fail "the delayed server did not listen: $(cat "$tmp/log")"
kill -TERM "$pid"
gone=""
for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { gone=1; break; }; sleep 0.05; done
[ -n "$gone" ] || fail "SIGTERM while loading did not end the server within 2 s"
wait "$pid" 2>/dev/null; rc=$?
[ $rc -eq 143 ] || fail "SIGTERM while loading: exit status $rc, want 143 (ended by the signal)"
pid=""

start_server
grep -q "listening on http://127.0.0.1:" "$tmp/log" || fail "binds 127.0.0.1 by default"
base="http://127.0.0.1:$port"

# The client checks (in the background: a signal to this script then acts at once).
timeout 300 python3 "$here/serve_client.py" --port "$port" --key "$key" --model "$id" --pid "$pid" \
    --ctx $ctx --parallel $parallel --soak $soak &
client=$!
wait $client || fail "serve_client.py"
client=""

# curl gives up on a long stream after 1 s (exit 28): the slot frees, the server serves on.
# The end tokens are banned so that the random model cannot finish early.
eog=$("$VKPHI" tokenize -m "$model" --special "<|im_end|><|endoftext|>" | tr -d '[]')
ban=$(echo "$eog" | tr ',' '\n' | sed 's/.*/"&":-100/' | paste -sd, -)
curl -sN --max-time 1 -H "Authorization: Bearer $key" "$base/v1/chat/completions" \
    -d "{\"model\":\"$id\",\"stream\":true,\"max_tokens\":400,\"logit_bias\":{$ban},\"messages\":[{\"role\":\"user\",\"content\":\"go on\"}]}" \
    >"$tmp/partial" 2>/dev/null
rc=$?
[ $rc -eq 28 ] || fail "curl --max-time on a long stream: exit $rc, want 28"
grep -q '"role":"assistant"' "$tmp/partial" || fail "the stream started before curl gave up"
idle=""
for _ in $(seq 1 40); do
    if curl -s "$base/health" | grep '"slots_processing":0,"queued":0' >/dev/null; then idle=1; break; fi
    sleep 0.05
done
[ -n "$idle" ] || fail "the slot of the abandoned stream was not freed within 2 s: $(curl -s "$base/health")"
out=$(curl -s -H "Authorization: Bearer $key" "$base/v1/completions" \
    -d "{\"model\":\"$id\",\"prompt\":\"still there?\",\"max_tokens\":3}")
echo "$out" | grep '"object":"text_completion"' >/dev/null || fail "serving after curl gave up: $out"

# SIGTERM while a stream is running: the client gets an error event, the server exits 0.
curl -sN -H "Authorization: Bearer $key" "$base/v1/chat/completions" \
    -d "{\"model\":\"$id\",\"stream\":true,\"max_tokens\":400,\"messages\":[{\"role\":\"user\",\"content\":\"last\"}]}" \
    >"$tmp/last" 2>/dev/null &
cpid=$!
sleep 1
kill -TERM "$pid"
exited=""
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { exited=1; break; }
    sleep 0.1
done
if [ -n "$exited" ]; then
    wait "$pid"; rc=$?
    [ $rc -eq 0 ] || fail "exit code after SIGTERM: $rc"
else
    fail "the server did not exit within 10 s of SIGTERM"
fi
pid=""
wait $cpid 2>/dev/null
grep -q "shutting down" "$tmp/last" ||
    fail "the running stream was told of the shutdown: $(tail -c 300 "$tmp/last"); server log: $(tail -5 "$tmp/log")"
grep -q "shutting down" "$tmp/log" || fail "shutdown logged"

# Batching changes nothing at 8 slots too: 8 concurrent greedy requests with prompts of
# different lengths get what each gets alone (serve_client.py runs the same at 4 above).
parallel=8
start_server
timeout 300 python3 "$here/serve_client.py" --port "$port" --key "$key" --model "$id" --pid "$pid" \
    --ctx $ctx --parallel $parallel --batch-only &
client=$!
wait $client || fail "serve_client.py --batch-only at --parallel 8"
client=""
kill -TERM "$pid"
wait "$pid"; rc=$?
[ $rc -eq 0 ] || fail "exit code after SIGTERM (--parallel 8): $rc"
pid=""

if [ $fails -ne 0 ]; then
    echo "--- server log (tail)"
    tail -20 "$tmp/log"
    echo "cli_serve: $fails failed"
    exit 1
fi
echo "cli_serve: all passed"
