#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Aggregate decode throughput through `vkphi serve`: 1 request alone, then C at once.

usage: bench/serve_throughput.py [--vkphi PATH] [-m MODEL] [-c 1,4] [-n 64] [-p 8] [-r 3] [--json]

Starts `vkphi serve --parallel max(C)` on a free loopback port (the built-in default
model unless -m is given), and for each concurrency C sends C streamed greedy
completions at once, each with its own -p-token prompt (distinct first tokens: no
prefix reuse) and max_tokens -n, with the end tokens banned so that every request
generates exactly -n tokens. Per round it measures, from the client's side:

  decode tokens/s  the tokens after each request's first one, summed over the requests,
                   over the time from the first request's first token to the last one's end
  end to end       all tokens over the time from sending to the last answer's end
  per request      each request's (tokens - 1) / (its end - its first token), averaged

and reports the mean over -r rounds (after one warm-up round), with the gain of each
figure over C = 1 when 1 is among the concurrencies. The server is stopped at the end.
Only Python's standard library is used.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--vkphi", default=os.path.join(HERE, "..", "build", "bin", "vkphi"), help="the vkphi program")
ap.add_argument("-m", "--model", help="GGUF file (default: vkphi's built-in default model)")
ap.add_argument("-c", "--concurrency", default="1,4", help="comma-separated request counts (default 1,4)")
ap.add_argument("-n", "--tokens", type=int, default=64, help="tokens generated per request (default 64)")
ap.add_argument("-p", "--prompt", type=int, default=8, help="prompt tokens per request (default 8)")
ap.add_argument("-r", "--rounds", type=int, default=3, help="measured rounds per concurrency (default 3)")
ap.add_argument("--device", help="the Vulkan device (vkphi serve --device)")
ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
args = ap.parse_args()
conc = [int(x) for x in args.concurrency.split(",")]
if not conc or min(conc) < 1 or max(conc) > 64 or args.tokens < 2 or args.prompt < 1 or args.rounds < 1:
    sys.exit("serve_throughput: want concurrencies 1..64, -n >= 2, -p >= 1, -r >= 1")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the server ----
ctx = (args.prompt + args.tokens + 16 + 255) // 256 * 256
cmd = [args.vkphi, "serve", "--port", "0", "--parallel", str(max(conc)), "-c", str(ctx), "-q"]
if args.model:
    cmd += ["-m", args.model]
if args.device:
    cmd += ["--device", args.device]
srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
port = model_id = device = None
lines = []
deadline = time.time() + 600
while time.time() < deadline:
    line = srv.stderr.readline()
    if not line:
        break
    lines.append(line)
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
    m = re.search(r"ready: model '([^']*)' on (.*), \d+ slots?", line)
    if m:
        model_id, device = m.group(1), m.group(2)
        break
if port is None or model_id is None:
    srv.kill()
    sys.exit("serve_throughput: the server did not start:\n" + "".join(lines))
# Keep reading stderr so that the server never blocks on a full pipe.
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()


def stop_server():
    if srv.poll() is None:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()


# ---- the end tokens, banned so that every request runs to -n tokens ----
model_path = args.model
if not model_path:  # where vkphi keeps its built-in model (runtime/convert/mkmodel.c)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "/"), ".cache")
    model_path = os.path.join(cache, "vkphi", "default-mini-Q4_K_M-v1.gguf")
ban = {}
try:
    out = subprocess.run([args.vkphi, "tokenize", "-m", model_path, "--special", "<|im_end|><|endoftext|><|end|>"],
                         capture_output=True, text=True, timeout=120)
    ban = {str(t): -100 for t in json.loads(out.stdout)}
except (OSError, ValueError, subprocess.TimeoutExpired):
    log("serve_throughput: could not tokenize the end tokens of %s: requests may end early" % model_path)


def one(first, result, i):
    """A streamed greedy completion; fills result[i] = (t_send, t_first_token, t_end, tokens)."""
    ids = [first] + [(first * 31 + 7 * k) % 3000 + 100 for k in range(args.prompt - 1)]
    body = {"model": model_id, "prompt": ids, "max_tokens": args.tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}, "logit_bias": ban}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    t_send = time.time()
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    t_first = None
    tokens = 0
    for line in r:
        line = line.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ev.get("choices") and ev["choices"][0].get("text") and t_first is None:
            t_first = time.time()
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
    t_end = time.time()
    c.close()
    result[i] = (t_send, t_first or t_end, t_end, tokens)


first_token = [3100]


def round_of(n):
    res = [None] * n
    ts = []
    for i in range(n):
        first_token[0] += 1
        ts.append(threading.Thread(target=one, args=(first_token[0] % 900 + 3100, res, i)))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    send = min(r[0] for r in res)
    first = min(r[1] for r in res)
    end = max(r[2] for r in res)
    total = sum(r[3] for r in res)
    decode = sum(max(r[3] - 1, 0) for r in res) / max(end - first, 1e-9)
    per_req = sum(max(r[3] - 1, 0) / max(r[2] - r[1], 1e-9) for r in res) / n
    return decode, total / max(end - send, 1e-9), per_req, min(r[3] for r in res)


rows = []
try:
    log("serve_throughput: model %s on %s, port %d" % (model_id, device, port))
    round_of(1)  # warm-up: the first prompt and decode steps after loading
    for n in conc:
        got = []
        for k in range(args.rounds + 1):
            r = round_of(n)
            if k > 0 or n == 1:  # one warm-up round at each new concurrency (C = 1 had one above)
                got.append(r)
            log("  %d concurrent, round %d: decode %.2f tok/s, end to end %.2f tok/s, per request %.2f tok/s, "
                "fewest tokens %d" % (n, k, r[0], r[1], r[2], r[3]))
        got = got[-args.rounds:]
        rows.append({"concurrent": n,
                     "decode_tokens_per_s": sum(g[0] for g in got) / len(got),
                     "end_to_end_tokens_per_s": sum(g[1] for g in got) / len(got),
                     "per_request_tokens_per_s": sum(g[2] for g in got) / len(got),
                     "all_ran_full_length": all(g[3] == args.tokens for g in got)})
finally:
    stop_server()

base = next((r for r in rows if r["concurrent"] == 1), None)
for r in rows:
    r["decode_vs_1"] = r["decode_tokens_per_s"] / base["decode_tokens_per_s"] if base else None
if args.json:
    print(json.dumps({"model": model_id, "device": device, "tokens": args.tokens, "prompt_tokens": args.prompt,
                      "rounds": args.rounds, "results": rows}, indent=2))
else:
    print("vkphi serve on %s, model %s: %d-token prompts, %d tokens per request, mean of %d rounds" %
          (device, model_id, args.prompt, args.tokens, args.rounds))
    print("%-11s %16s %16s %16s %9s" % ("concurrent", "decode tok/s", "end-to-end tok/s", "per request", "vs 1"))
    for r in rows:
        print("%-11d %16.2f %16.2f %16.2f %9s%s" % (
            r["concurrent"], r["decode_tokens_per_s"], r["end_to_end_tokens_per_s"], r["per_request_tokens_per_s"],
            "%.2fx" % r["decode_vs_1"] if r["decode_vs_1"] else "",
            "" if r["all_ran_full_length"] else "  (some requests ended early)"))
