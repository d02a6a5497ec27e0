# SPDX-License-Identifier: MIT
# The client side of tests/cli_serve.sh: talks to a running `vkphi serve` over
# loopback HTTP with nothing but Python's standard library and checks every
# endpoint, every error case, streaming, concurrency, disconnects, prefix reuse
# and memory over a soak. Prints one line per failed check and a tally; exits 1
# when anything failed.
import argparse
import http.client
import json
import math
import re
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--ctx", type=int, required=True)       # tokens per slot
ap.add_argument("--parallel", type=int, required=True)
ap.add_argument("--soak", type=int, default=300)
# --mini TEXT: the server runs a model with Phi-4-mini's tokenizer and template whose
# answers begin with TEXT (VKPHI_TEST_OUTPUT): check reasoning and tool-call output only.
ap.add_argument("--mini")
# --batch-only: only the batch-invariance check (at --parallel concurrent requests) and
# the memory check that goes with it, on a server started with --parallel N.
ap.add_argument("--batch-only", action="store_true")
ap.add_argument("--rounds", type=int, default=2)  # concurrent rounds of --batch-only
args = ap.parse_args()

HOST = "127.0.0.1"
AUTH = {"Authorization": "Bearer " + args.key}
passed = failed = 0
lock = threading.Lock()


def check(cond, what):
    global passed, failed
    with lock:
        if cond:
            passed += 1
        else:
            failed += 1
            print("FAIL:", what, flush=True)
    return cond


def request(method, path, body=None, headers=None, timeout=120, raw=None):
    """One request on a fresh connection; returns (status, headers, body bytes)."""
    c = http.client.HTTPConnection(HOST, args.port, timeout=timeout)
    h = dict(AUTH)
    if headers is not None:
        h = headers
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h = dict(h)
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, r.getheaders(), out


def jrequest(method, path, body=None, **kw):
    status, _, out = request(method, path, body, **kw)
    try:
        return status, json.loads(out)
    except ValueError:
        return status, {"unparsed": out[:200]}


def stream(path, body, timeout=120):
    """A streamed request: returns (status, list of parsed events, saw_done)."""
    c = http.client.HTTPConnection(HOST, args.port, timeout=timeout)
    c.request("POST", path, body=json.dumps(body).encode(), headers=dict(AUTH, **{"Content-Type": "application/json"}))
    r = c.getresponse()
    events, done = [], False
    if r.status != 200:
        r.read()
        c.close()
        return r.status, events, done
    check(r.getheader("Content-Type", "").startswith("text/event-stream"), "stream content type")
    while True:
        line = r.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if not line:
            continue
        if not check(line.startswith("data: "), "SSE line starts with 'data: ': %r" % line[:80]):
            continue
        payload = line[6:]
        if payload == "[DONE]":
            done = True
            continue
        check(not done, "no event after [DONE]")
        events.append(json.loads(payload))
    c.close()
    return r.status, events, done


T_START = [time.time()]


def section(name):
    now = time.time()
    print("  %-28s %5.1f s" % (name, now - T_START[0]), flush=True)
    T_START[0] = now


def health():
    return jrequest("GET", "/health", headers={})[1]


def chat_body(messages, **kw):
    b = {"model": args.model, "messages": messages}
    b.update(kw)
    return b


def user(text):
    return [{"role": "user", "content": text}]


def is_error(obj, code=None):
    e = obj.get("error") if isinstance(obj, dict) else None
    ok = isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"] and \
        isinstance(e.get("type"), str) and "code" in e
    return ok and (code is None or e.get("code") == code)


def check_usage(u, what, max_tokens=None, finish=None):
    ok = isinstance(u, dict) and all(isinstance(u.get(k), int) for k in ("prompt_tokens", "completion_tokens",
                                                                          "total_tokens"))
    if not check(ok, what + ": usage has the three counts: %r" % (u,)):
        return
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], what + ": total = prompt + completion")
    check(u["prompt_tokens"] > 0, what + ": prompt tokens > 0")
    cached = u.get("prompt_tokens_details", {}).get("cached_tokens")
    check(isinstance(cached, int) and 0 <= cached <= u["prompt_tokens"], what + ": 0 <= cached <= prompt: %r" % (u,))
    if max_tokens is not None:
        check(1 <= u["completion_tokens"] <= max_tokens, what + ": 1 <= completion <= max_tokens: %r" % (u,))
        if finish == "length":
            check(u["completion_tokens"] == max_tokens, what + ": length means max_tokens tokens: %r" % (u,))


def wait_idle(limit_s):
    """Seconds until no slot is busy and nothing is queued, or None after limit_s."""
    t0 = time.time()
    while time.time() - t0 < limit_s:
        h = health()
        if h.get("slots_processing") == 0 and h.get("queued") == 0:
            return time.time() - t0
        time.sleep(0.05)
    return None


def rss_kib():
    with open("/proc/%d/status" % args.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


CHAT = "/v1/chat/completions"
COMP = "/v1/completions"

def expect_error(status_want, code, method, path, body=None, raw=None, headers=None, what=""):
    status, _, out = request(method, path, body, raw=raw, headers=headers)
    try:
        obj = json.loads(out)
    except ValueError:
        obj = None
    check(status == status_want and is_error(obj, code),
          "%s: want %d %s, got %d %s" % (what or path, status_want, code, status, out[:300]))



# ---- /metrics: a strict reader of Prometheus's text format 0.0.4 ----
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % METRIC_NAME)
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} and {name: type}; raises ValueError on anything
    that does not follow the format: a sample without HELP and TYPE before it, a TYPE
    after its samples or twice, a counter not named *_total, a duplicate series, a bad
    label set or value, a missing final newline."""
    if not text.endswith("\n"):
        raise ValueError("no newline at the end")
    helps, types, samples = {}, {}, {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            if not re.fullmatch(METRIC_NAME, name) or name in helps or not doc:
                raise ValueError("bad HELP line %r" % line)
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            if name in types or typ not in ("counter", "gauge", "untyped", "summary", "histogram"):
                raise ValueError("bad TYPE line %r" % line)
            if any(k[0] == name for k in samples):
                raise ValueError("TYPE after the samples of %s" % name)
            if typ == "counter" and not name.endswith("_total"):
                raise ValueError("counter %s is not named *_total" % name)
            types[name] = typ
        elif line.startswith("#") or not line:
            raise ValueError("unexpected line %r" % line)
        else:
            m = SAMPLE_RE.match(line)
            if not m:
                raise ValueError("bad sample line %r" % line)
            name, labels, value = m.group(1), m.group(2), m.group(3)
            if name not in helps or name not in types:
                raise ValueError("sample of %s without HELP and TYPE before it" % name)
            pairs = ()
            if labels is not None:
                found = LABEL_RE.findall(labels)
                if ",".join('%s="%s"' % p for p in found) != labels or len({k for k, _ in found}) != len(found):
                    raise ValueError("bad labels in %r" % line)
                pairs = tuple(sorted(found))
            v = float(value)  # ValueError for anything else (NaN, +Inf are spelled so and parse)
            if types[name] == "counter" and not (v >= 0 and math.isfinite(v)):
                raise ValueError("counter %r" % line)
            key = (name, pairs)
            if key in samples:
                raise ValueError("duplicate series %r" % line)
            samples[key] = v
    for name in helps:
        if name not in types or not any(k[0] == name for k in samples):
            raise ValueError("%s has HELP but no TYPE or no samples" % name)
    return samples, types


SCRAPES = []  # every scrape, to check that counters never go down


def metrics():
    """Scrapes /metrics (no API key needed); returns {(name, labels): value} or {} after a failed check."""
    status, hdrs, out = request("GET", "/metrics", headers={})
    ctype = dict((k.lower(), v) for k, v in hdrs).get("content-type", "")
    check(status == 200 and ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          "/metrics: status %d, content type %r" % (status, ctype))
    try:
        samples, types = parse_metrics(out.decode())
    except (ValueError, UnicodeDecodeError) as ex:
        check(False, "/metrics parses as Prometheus text: %s" % ex)
        return {}
    if SCRAPES:
        prev, prev_types = SCRAPES[-1]
        down = [k for k, v in prev.items() if prev_types[k[0]] == "counter" and samples.get(k, -1) < v]
        check(not down, "/metrics: counters never go down: %r" % down[:3])
    SCRAPES.append((samples, types))
    return samples


def mval(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def reqs(samples, endpoint, code):
    return mval(samples, "vkphi_requests_total", endpoint=endpoint, code=code)


# ---- Phi-4-mini: reasoning_content and tool calls (--mini) ----
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def stream_parts(events):
    """Joins a chat stream's deltas: (role, content, reasoning, tool_calls, finish)."""
    role = content = reasoning = None
    calls, finish = [], None
    for e in events:
        ch = e.get("choices") or []
        if not ch:
            continue
        d = ch[0].get("delta", {})
        role = d.get("role", role)
        if d.get("content") is not None:
            content = (content or "") + d["content"]
        if d.get("reasoning_content") is not None:
            reasoning = (reasoning or "") + d["reasoning_content"]
        calls += d.get("tool_calls") or []
        finish = ch[0].get("finish_reason") or finish
    return role, content or "", reasoning, calls, finish


def check_call(calls, what):
    ok = isinstance(calls, list) and len(calls) == 1
    c = calls[0] if ok else {}
    fn = c.get("function", {})
    check(ok and c.get("type") == "function" and isinstance(c.get("id"), str) and c["id"] and
          fn.get("name") == "get_weather" and isinstance(fn.get("arguments"), str) and
          json.loads(fn["arguments"]) == {"city": "Paris"}, what + ": one get_weather(city=Paris) call: %r" % (calls,))


def mini_checks():
    forced = args.mini
    check("<think>" in forced and "<|tool_call|>" in forced, "the forced answer has reasoning and a tool call")
    # The format: <|user|>hi<|end|><|assistant|> is 4 tokens; tools add the system turn.
    status, r = jrequest("POST", CHAT, chat_body(user("hi"), max_tokens=1))
    check(status == 200 and r["usage"]["prompt_tokens"] == 4, "mini template: 4 prompt tokens: %r" % (r,))
    n_plain = r["usage"]["prompt_tokens"] if status == 200 else 0
    status, r = jrequest("POST", CHAT, chat_body(user("hi"), max_tokens=1, tools=TOOLS))
    check(status == 200 and r["usage"]["prompt_tokens"] > n_plain + 10, "tools go into the prompt: %r" % (r,))
    status, r = jrequest("POST", CHAT, chat_body(user("hi"), max_tokens=1, tools=TOOLS, tool_choice="none"))
    check(status == 200 and r["usage"]["prompt_tokens"] == n_plain, "tool_choice none leaves them out: %r" % (r,))
    expect_error(400, "unsupported_value", "POST", CHAT, body=chat_body(user("hi"), tools=TOOLS, tool_choice="required"),
                 what="tool_choice required")
    expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(user("hi"), tools=[{"type": "function"}]),
                 what="a tool without a function")
    expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(user("hi"), reasoning_format="fancy"),
                 what="unknown reasoning_format")
    # A marker in the user's text stays text: same as the text with the marker spelled differently.
    status, r = jrequest("POST", CHAT, chat_body(user("<|end|><|assistant|>"), max_tokens=1))
    check(status == 200 and r["usage"]["prompt_tokens"] > 6, "markers in user text are text: %r" % (r,))
    section("mini: template and tools")

    # Reasoning and a tool call, not streamed.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), tools=TOOLS, temperature=0))
    msg = r.get("choices", [{}])[0].get("message", {}) if status == 200 else {}
    check(status == 200 and msg.get("reasoning_content") == "Plan the call." and msg.get("content") == "Calling." and
          r["choices"][0]["finish_reason"] == "tool_calls", "reasoning, content and a tool call: %r" % (r,))
    check_call(msg.get("tool_calls"), "not streamed")
    # Without tools the tool-call section stays text; reasoning still separated.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), temperature=0))
    msg = r.get("choices", [{}])[0].get("message", {}) if status == 200 else {}
    check(status == 200 and msg.get("reasoning_content") == "Plan the call." and
          msg.get("content", "").startswith("Calling.<|tool_call|>[{") and msg["content"].endswith("<|/tool_call|>") and
          "tool_calls" not in msg and r["choices"][0]["finish_reason"] == "stop", "no tools: the call is text: %r" % (r,))
    # reasoning_format none: everything in content.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), temperature=0, reasoning_format="none"))
    msg = r.get("choices", [{}])[0].get("message", {}) if status == 200 else {}
    check(status == 200 and msg.get("content", "").startswith("<think>Plan the call.</think>Calling.") and
          "reasoning_content" not in msg, "reasoning_format none keeps the tags in content: %r" % (r,))
    # Cut off inside the tool call (max_tokens): text, finish length.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), tools=TOOLS, temperature=0, max_tokens=14))
    msg = r.get("choices", [{}])[0].get("message", {}) if status == 200 else {}
    check(status == 200 and r["choices"][0]["finish_reason"] == "length" and "tool_calls" not in msg and
          msg.get("content", "").startswith("Calling.<|tool_call|>"),
          "a cut-off tool call is text (set max_tokens to cut inside it): %r" % (r,))
    # Cut off inside the reasoning: it is reasoning so far.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), temperature=0, max_tokens=4))
    msg = r.get("choices", [{}])[0].get("message", {}) if status == 200 else {}
    check(status == 200 and msg.get("content") == "" and "Plan the call.".startswith(msg.get("reasoning_content", "x"))
          and msg.get("reasoning_content"), "cut inside the reasoning: %r" % (r,))
    # The tool loop: the call goes back as the assistant's turn, the result as a tool turn.
    status, r = jrequest("POST", CHAT, chat_body(user("weather?"), tools=TOOLS, temperature=0, max_tokens=1))
    n_first = r["usage"]["prompt_tokens"] if status == 200 else 0
    hist = user("weather?") + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'}]
    status, r = jrequest("POST", CHAT, chat_body(hist, tools=TOOLS, temperature=0, max_tokens=1))
    check(status == 200 and r["usage"]["prompt_tokens"] > n_first + 20 and
          r["usage"]["prompt_tokens_details"]["cached_tokens"] >= n_first - 1,
          "a tool loop: the call and the result extend the prompt: %r" % (r,))
    expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(
        [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": 3}}]}]), what="a bad tool call")
    section("mini: whole answers")

    # Streamed: the tags come split across tokens; deltas carry reasoning_content,
    # content, then the tool calls and finish_reason tool_calls.
    status, ev, done = stream(CHAT, chat_body(user("weather?"), tools=TOOLS, temperature=0, stream=True))
    role, content, reasoning, calls, finish = stream_parts(ev)
    check(status == 200 and done and role == "assistant" and reasoning == "Plan the call." and content == "Calling."
          and finish == "tool_calls", "streamed: %r %r %r %r" % (content, reasoning, calls, finish))
    check_call(calls, "streamed")
    check(all(c.get("index") == i for i, c in enumerate(calls)), "streamed tool calls carry their index")
    n_reasoning = sum(1 for e in ev if e.get("choices") and "reasoning_content" in e["choices"][0].get("delta", {}))
    check(n_reasoning >= 2, "reasoning streamed as it came (%d deltas)" % n_reasoning)
    check(not any("<" in (e["choices"][0].get("delta", {}).get("reasoning_content") or "") +
                  (e["choices"][0].get("delta", {}).get("content") or "") for e in ev if e.get("choices")),
          "no piece of a tag leaks into a delta")
    status, ev, done = stream(CHAT, chat_body(user("weather?"), temperature=0, stream=True, reasoning_format="none"))
    role, content, reasoning, calls, finish = stream_parts(ev)
    check(status == 200 and done and reasoning is None and content.startswith("<think>Plan the call.</think>Calling.")
          and finish == "stop" and not calls, "streamed, reasoning_format none: %r" % (content,))
    status, ev, done = stream(CHAT, chat_body(user("weather?"), temperature=0, stream=True))
    role, content, reasoning, calls, finish = stream_parts(ev)
    check(status == 200 and done and reasoning == "Plan the call." and content.startswith("Calling.<|tool_call|>") and
          finish == "stop" and not calls, "streamed without tools: %r %r" % (content, reasoning))
    # /v1/completions is untouched: the raw text.
    status, r = jrequest("POST", COMP, {"model": args.model, "prompt": "<|user|>hi<|end|><|assistant|>", "temperature": 0})
    check(status == 200 and r["choices"][0]["text"].startswith("<think>Plan the call.</think>"),
          "completions keep the raw text: %r" % (r,))
    section("mini: streamed")
    print("serve_client: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


# ---- batching changes nothing: N concurrent greedy requests = each alone ----
def completion_ids(ids, max_tokens):
    """A greedy completion of the token ids; returns (status, text, usage, finish)."""
    status, r = jrequest("POST", COMP, {"model": args.model, "prompt": ids, "max_tokens": max_tokens,
                                        "temperature": 0})
    if status != 200:
        return status, r, {}, None
    return status, r["choices"][0]["text"], r.get("usage", {}), r["choices"][0]["finish_reason"]


def flush_slots(tag):
    """One request per slot, each with a prompt whose first token no other prompt has:
    every slot's cache then shares nothing with a later request's prompt, which therefore
    evaluates all of itself, as the same request does alone. (They go one at a time: with
    no prefix to reuse anywhere, each takes the least recently used slot.)"""
    out = [completion_ids([2000 + 16 * tag + j, 401, 402, 403], 1)[0] for j in range(args.parallel)]
    check(all(x == 200 for x in out), "flush requests: %r" % out)


def batch_invariance(n, rounds=2):
    """n greedy completions with prompts of different lengths (5 to 150 tokens, more than
    one step's budget of 256 together) and different first tokens: their texts alone, one at a time,
    must equal their texts when all n run at once, in every round. Each concurrent round
    must evaluate in shared steps (fewer steps than tokens), and the server's VmRSS must
    not grow from the first round to the last."""
    # Prompt evaluation on lavapipe runs at about decode speed: keep them short, but
    # long enough that the first step's budget does not hold all of them.
    lengths = [5, 150, 17, 100, 40, 9, 66, 30][:n] if n <= 8 else [5 + 11 * i for i in range(n)]
    lengths = [min(L, args.ctx - 40) for L in lengths]
    prompts = [[1000 + 50 * i] + [(7919 * (i + 1) * (k + 3)) % 3000 + 100 for k in range(L - 1)]
               for i, L in enumerate(lengths)]
    maxt = 12
    alone = []
    for i in range(n):
        flush_slots(2 * i)
        status, text, usage, finish = completion_ids(prompts[i], maxt)
        check(status == 200 and usage.get("prompt_tokens_details", {}).get("cached_tokens") == 0,
              "batch %d: request %d alone: %r %r" % (n, i, status, usage))
        alone.append((text, usage.get("completion_tokens"), finish))
    # Warm-up: what is made on first use, memory that does not grow with the requests
    # served, is made before the rounds that measure that. A step's decode tokens run
    # matrix-vector kernels made for their count (kernels_get_vec), and how many requests
    # decode together in a step depends on when each arrives: so every count is made
    # here, by prompts of that many tokens alone (a prompt chunk of up to 16 tokens runs
    # the same kernels). Each new count grew the server by about 6 MiB of lavapipe's
    # compiled code; a round that met one had grown 7.7 MiB in CI. Then decode steps of
    # every size from n down to 1 (requests ending one step apart): each size is a
    # recorded step.
    for L in range(1, 17):
        status = completion_ids([2600 + L] + [300 + k for k in range(L - 1)], 1)[0]
        check(status == 200, "batch %d: warm-up prompt of %d tokens: %r" % (n, L, status))

    def warm(i):
        completion_ids([900 + i, 101, 102, 103, 104], i + 1)

    ws = [threading.Thread(target=warm, args=(i,)) for i in range(n)]
    for t in ws:
        t.start()
    for t in ws:
        t.join(300)
    rss = []
    for rnd in range(rounds):
        flush_slots(2 * n + rnd)
        m0 = metrics()
        got = [None] * n

        def one(i):
            got[i] = completion_ids(prompts[i], maxt)

        ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
        m1 = metrics()
        rss.append(rss_kib())
        same = 0
        for i in range(n):
            status, text, usage, finish = got[i] or (0, None, {}, None)
            ok = check(status == 200 and usage.get("prompt_tokens_details", {}).get("cached_tokens") == 0,
                       "batch %d round %d: request %d: %r %r" % (n, rnd, i, status, usage))
            ok = ok and check((text, usage.get("completion_tokens"), finish) == alone[i],
                              "batch %d round %d: request %d (%d prompt tokens) among %d: %r, alone: %r" %
                              (n, rnd, i, lengths[i], n, (text, usage.get("completion_tokens"), finish), alone[i]))
            same += ok
        steps = (mval(m1, "vkphi_batch_steps_total") or 0) - (mval(m0, "vkphi_batch_steps_total") or 0)
        gen = (mval(m1, "vkphi_generated_tokens_total") or 0) - (mval(m0, "vkphi_generated_tokens_total") or 0)
        toks = (mval(m1, "vkphi_batch_tokens_total") or 0) - (mval(m0, "vkphi_batch_tokens_total") or 0)
        check(0 < steps < 0.6 * gen, "batch %d round %d: %d generated tokens took %d steps: not batched" %
              (n, rnd, gen, steps))
        print("  batch %d round %d: %d of %d texts equal to alone; %d steps, %d tokens evaluated, %d generated" %
              (n, rnd, same, n, steps, toks, gen), flush=True)
    grow = rss[-1] - rss[0]
    print("  batch %d: VmRSS after each round %s KiB" % (n, rss))
    check(grow < 4 * 1024, "batch %d: VmRSS grew %d KiB from round 1 to round %d" % (n, grow, rounds))


if args.batch_only:
    batch_invariance(args.parallel, args.rounds)
    section("batch invariance")
    print("serve_client: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)

if args.mini:
    mini_checks()

# ---- endpoints ----
h = health()
check(h.get("status") == "ok" and h.get("slots_idle") == args.parallel, "health: %r" % h)
status, m = jrequest("GET", "/v1/models")
check(status == 200 and m.get("object") == "list" and m["data"][0]["id"] == args.model and
      m["data"][0]["object"] == "model", "models: %r" % m)
status, m = jrequest("GET", "/v1/models/" + args.model)
check(status == 200 and m.get("id") == args.model, "models/{id}: %r" % m)
status, m = jrequest("GET", "/models")
check(status == 200 and m["data"][0]["id"] == args.model, "the paths work without /v1 too")

section("endpoints")
# ---- /metrics against a known sequence of requests ----
m0 = metrics()
check(mval(m0, "vkphi_ready") == 1 and mval(m0, "vkphi_slots") == args.parallel and
      mval(m0, "vkphi_kv_cache_capacity_tokens") == args.parallel * args.ctx and
      mval(m0, "vkphi_slots_busy") == 0 and mval(m0, "vkphi_queue_depth") == 0,
      "/metrics gauges at rest: %r" % {k[0]: v for k, v in m0.items() if not k[1]})
seq_usage = []
# The repeat comes right after the first: a prompt goes to the slot whose cache shares
# the longest prefix with it, so the third, which shares the template's first tokens,
# takes that slot too (its cached tokens: that common prefix).
for i, (prompt, maxt) in enumerate([("Metrics one.", 5), ("Metrics one.", 4), ("Metrics two, a bit longer.", 3)]):
    status, r = jrequest("POST", CHAT, chat_body(user(prompt), temperature=0, max_tokens=maxt))
    check(status == 200, "metrics sequence request %d: %r" % (i, r))
    seq_usage.append(r.get("usage", {}))
status, events, done = stream(COMP, {"model": args.model, "prompt": "Metrics streamed", "max_tokens": 6,
                                     "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
check(status == 200 and done and events and events[-1].get("usage"), "metrics sequence stream")
seq_usage.append(events[-1].get("usage", {}) if events else {})
expect_error(400, "integer_below_min_value", "POST", CHAT, body=chat_body(user("x"), max_tokens=0), what="max_tokens 0")
m1 = metrics()


def delta(name, **labels):
    a, b = mval(m0, name, **labels), mval(m1, name, **labels)
    return None if a is None or b is None else b - a


want_prompt = sum(u.get("prompt_tokens", 0) for u in seq_usage)
want_gen = sum(u.get("completion_tokens", 0) for u in seq_usage)
want_cached = sum(u.get("prompt_tokens_details", {}).get("cached_tokens", 0) for u in seq_usage)
cached = [u.get("prompt_tokens_details", {}).get("cached_tokens", 0) for u in seq_usage]
check(cached[1] >= seq_usage[0].get("prompt_tokens", 0) - 1 and 0 < cached[2] < seq_usage[2].get("prompt_tokens", 0),
      "the repeated prompt reused its slot, the third its common prefix: %r" % seq_usage)
check(delta("vkphi_requests_total", endpoint="/v1/chat/completions", code="2xx") == 3 and
      delta("vkphi_requests_total", endpoint="/v1/completions", code="2xx") == 1 and
      delta("vkphi_requests_total", endpoint="/v1/chat/completions", code="4xx") == 1 and
      delta("vkphi_requests_total", endpoint="/metrics", code="2xx") == 1,
      "/metrics counts 3 chats, 1 streamed completion, 1 refused chat and 1 scrape: %r" %
      {(k[1][0][1], k[1][1][1]): v - m0.get(k, 0) for k, v in m1.items() if k[0] == "vkphi_requests_total"
       and v != m0.get(k, 0)})
others = [k for k, v in m1.items() if k[0] == "vkphi_requests_total" and v != m0.get(k) and
          dict(k[1])["endpoint"] not in ("/v1/chat/completions", "/v1/completions", "/metrics")]
check(not others, "no other request counter moved: %r" % others)
check(delta("vkphi_generations_total") == 4, "4 generations: %r" % delta("vkphi_generations_total"))
check(delta("vkphi_prompt_tokens_total") == want_prompt,
      "prompt tokens: +%r, usage says %d" % (delta("vkphi_prompt_tokens_total"), want_prompt))
check(delta("vkphi_generated_tokens_total") == want_gen,
      "generated tokens: +%r, usage says %d" % (delta("vkphi_generated_tokens_total"), want_gen))
check(delta("vkphi_prompt_tokens_cached_total") == want_cached,
      "cached tokens: +%r, usage says %d" % (delta("vkphi_prompt_tokens_cached_total"), want_cached))
check((delta("vkphi_slot_seconds_total") or 0) > 0, "slot seconds grew")
last = seq_usage[-1]
held = mval(m1, "vkphi_kv_cache_tokens") or 0
check(last.get("prompt_tokens", 0) + last.get("completion_tokens", 0) - 1 <= held <= args.parallel * args.ctx,
      "KV-cache tokens %r hold at least the last answer's prompt and tokens %r" % (held, last))
time.sleep(1.1)  # the tokens/s gauge counts whole seconds
m2 = metrics()
rate = mval(m2, "vkphi_generated_tokens_per_second") or 0
check(0 < rate <= want_gen / mval(m2, "vkphi_rate_window_seconds") + 1e-9,
      "tokens/s over the window: %r (%d tokens generated)" % (rate, want_gen))

section("metrics")
# ---- errors ----
ok_msgs = user("hi")
expect_error(401, "invalid_api_key", "POST", CHAT, chat_body(ok_msgs), headers={}, what="no API key")
expect_error(401, "invalid_api_key", "POST", CHAT, chat_body(ok_msgs), headers={"Authorization": "Bearer nope"},
             what="wrong API key")
expect_error(401, "invalid_api_key", "GET", "/v1/models", headers={"Authorization": "Basic " + args.key},
             what="not a Bearer key")
expect_error(404, "unknown_url", "GET", "/v1/nothing/here", what="unknown route")
expect_error(404, "unknown_url", "POST", "/v1/embeddings", body={"model": args.model, "input": "x"},
             what="unknown POST route")
expect_error(405, "method_not_allowed", "GET", CHAT, what="GET on chat")
expect_error(405, "method_not_allowed", "DELETE", "/v1/models", what="DELETE on models")
expect_error(405, "method_not_allowed", "PUT", COMP, body={}, what="PUT on completions")
expect_error(400, None, "POST", CHAT, raw=b'{"model": "x", "messages": [', what="malformed JSON")
expect_error(400, None, "POST", CHAT, raw=b'', what="empty body")
expect_error(400, None, "POST", CHAT, raw=b'{"model":"' + args.model.encode() + b'"} trailing', what="trailing text")
expect_error(400, None, "POST", CHAT, raw=b'[' * 100000 + b']' * 100000, what="deeply nested JSON")
expect_error(400, "invalid_type", "POST", CHAT, body=[1, 2], what="body not an object")
expect_error(400, "missing_required_parameter", "POST", CHAT, body={"messages": ok_msgs}, what="no model")
expect_error(400, "invalid_type", "POST", CHAT, body={"model": 5, "messages": ok_msgs}, what="model not a string")
expect_error(404, "model_not_found", "POST", CHAT, body=chat_body(ok_msgs, model="gpt-4o"), what="unknown model")
expect_error(404, "model_not_found", "POST", COMP, body={"model": "gpt-4o", "prompt": "x"}, what="unknown model (completions)")
expect_error(404, "model_not_found", "GET", "/v1/models/gpt-4o", what="unknown model id")
# Error messages quote the request. Cut inside a character ('%.200s') or holding bytes
# that are not UTF-8, the quote must still go out as UTF-8 (json.loads refuses
# anything else).
expect_error(404, "model_not_found", "POST", COMP, body={"model": "a" * 199 + "\u00e9", "prompt": "x"},
             what="model name cut inside a character")
expect_error(404, "model_not_found", "POST", COMP, raw=b'{"model": "bad\xff\xfe", "prompt": "x"}',
             what="model name not UTF-8")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body([{"role": "r" * 39 + "\u00e9", "content": "x"}]),
             what="role cut inside a character")
expect_error(400, "missing_required_parameter", "POST", CHAT, body={"model": args.model}, what="no messages")
expect_error(400, "missing_required_parameter", "POST", COMP, body={"model": args.model}, what="no prompt")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body("hello"), what="messages not an array")
expect_error(400, "empty_array", "POST", CHAT, body=chat_body([]), what="messages empty")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(["hi"]), what="message not an object")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body([{"role": "wizard", "content": "x"}]), what="bad role")
expect_error(400, "missing_required_parameter", "POST", CHAT, body=chat_body([{"content": "x"}]), what="no role")
expect_error(400, "missing_required_parameter", "POST", CHAT, body=chat_body([{"role": "user"}]), what="no content")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body([{"role": "user", "content": 7}]), what="content type")
expect_error(400, "unsupported_value", "POST", CHAT,
             body=chat_body([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
             what="image part")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, temperature="hot"), what="temperature type")
expect_error(400, "decimal_above_max_value", "POST", CHAT, body=chat_body(ok_msgs, temperature=2.5),
             what="temperature range")
expect_error(400, "decimal_above_max_value", "POST", CHAT, body=chat_body(ok_msgs, top_p=1.5), what="top_p range")
expect_error(400, "decimal_below_min_value", "POST", CHAT, body=chat_body(ok_msgs, presence_penalty=-3),
             what="presence_penalty range")
expect_error(400, "integer_below_min_value", "POST", CHAT, body=chat_body(ok_msgs, max_tokens=0), what="max_tokens 0")
expect_error(400, "integer_below_min_value", "POST", CHAT, body=chat_body(ok_msgs, max_tokens=-5),
             what="max_tokens < 0")
expect_error(400, "integer_below_min_value", "POST", CHAT, body=chat_body(ok_msgs, max_completion_tokens=0),
             what="max_completion_tokens 0")
expect_error(400, "integer_below_min_value", "POST", COMP, body={"model": args.model, "prompt": "x", "max_tokens": 0},
             what="max_tokens 0 (completions)")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, max_tokens="10"), what="max_tokens type")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, max_tokens=2.5), what="max_tokens fraction")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, stream="yes"), what="stream type")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, stop=5), what="stop type")
expect_error(400, "array_above_max_length", "POST", CHAT, body=chat_body(ok_msgs, stop=list("abcde")),
             what="five stop strings")
expect_error(400, "invalid_type", "POST", CHAT, body=chat_body(ok_msgs, seed="x"), what="seed type")
expect_error(400, "unsupported_value", "POST", CHAT, body=chat_body(ok_msgs, n=3), what="n = 3")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(ok_msgs, tools=TOOLS),
             what="tools with Phi-4's format, which has no place for them")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body([{"role": "tool", "content": "20"}]),
             what="a tool result with Phi-4's format")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(ok_msgs, logit_bias={"abc": 1}), what="logit_bias key")
expect_error(400, "invalid_value", "POST", COMP, body={"model": args.model, "prompt": [1, -2]}, what="bad token id")
expect_error(400, "context_length_exceeded", "POST", CHAT, body=chat_body(user("word " * (args.ctx + 50))),
             what="prompt longer than the context")
expect_error(400, "context_length_exceeded", "POST", COMP,
             body={"model": args.model, "prompt": "word " * (args.ctx + 50)}, what="prompt longer than the context")


def raw_exchange(head, body_chunks):
    """Sends head, then body_chunks while the server reads them; returns the reply."""
    s = socket.create_connection((HOST, args.port), timeout=60)
    s.sendall(head)
    try:
        for c in body_chunks:
            s.sendall(c)
    except OSError:
        pass  # the server answered early and closed: the reply is waiting
    got = b""
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            got += piece
    except OSError:
        pass
    s.close()
    return got


def reply_of(got):
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
    body = got.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


# A declared length over the limit is refused from the headers alone (the body is not read).
over = 4 * 1024 * 1024 + 1
head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n" % (CHAT, args.key, over)).encode()
status, obj = reply_of(raw_exchange(head, []))
check(status == 413 and is_error(obj, "request_too_large"), "Content-Length over the limit: %d %r" % (status, obj))
# A chunked body that grows past the limit.
head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % (CHAT, args.key)).encode()
chunk = b"%x\r\n" % 65536 + b" " * 65536 + b"\r\n"
status, obj = reply_of(raw_exchange(head, [chunk] * (over // 65536 + 1) + [b"0\r\n\r\n"]))
check(status == 413 and is_error(obj, "request_too_large"), "chunked body over the limit: %d %r" % (status, obj))

# Broken HTTP: the server answers or closes, and goes on serving.
for junk in (b"GARBAGE\r\n\r\n", b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
             b"\x00\xff" * 100 + b"\r\n\r\n"):
    s = socket.create_connection((HOST, args.port), timeout=1)
    s.sendall(junk)
    try:
        s.recv(4096)
    except OSError:
        pass
    s.close()
check(health().get("status") == "ok", "still serving after malformed HTTP")

# Invalid UTF-8 and control bytes in a message: tokenized as bytes, answered.
status, r = jrequest("POST", CHAT, raw=b'{"model":"' + args.model.encode() +
                     b'","messages":[{"role":"user","content":"\xff\xfe bad \\u0001"}],"max_tokens":2}')
check(status == 200 and r["choices"][0]["finish_reason"] in ("stop", "length"), "invalid UTF-8 input: %r" % r)

section("errors")
# ---- greedy: streamed == not streamed ----
MAXT = 24
conv = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}]
status, full = jrequest("POST", CHAT, chat_body(conv, temperature=0, max_tokens=MAXT))
check(status == 200, "chat: status %d %r" % (status, full))
choice = full["choices"][0]
text = choice["message"]["content"]
check(full["object"] == "chat.completion" and full["id"].startswith("chatcmpl-") and full["model"] == args.model and
      isinstance(full["created"], int), "chat: object fields %r" % full)
check(choice["message"]["role"] == "assistant" and isinstance(text, str), "chat: message %r" % choice)
check(choice["finish_reason"] in ("stop", "length"), "chat: finish_reason %r" % choice)
check_usage(full["usage"], "chat", MAXT, choice["finish_reason"])

# max_completion_tokens is the same thing.
status, again = jrequest("POST", CHAT, chat_body(conv, temperature=0, max_completion_tokens=MAXT))
check(status == 200 and again["choices"][0]["message"]["content"] == text, "max_completion_tokens: same greedy text")

status, events, done = stream(CHAT, chat_body(conv, temperature=0, max_tokens=MAXT, stream=True,
                                              stream_options={"include_usage": True}))
check(status == 200 and done, "chat stream: status %d, [DONE] %r" % (status, done))
if check(len(events) >= 3, "chat stream: at least role, finish and usage chunks (%d)" % len(events)):
    check(all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events),
          "chat stream: every chunk is a chat.completion.chunk with one id")
    check(events[0]["choices"][0]["delta"].get("role") == "assistant", "chat stream: first delta has the role")
    usage_ev = events[-1]
    check(usage_ev["choices"] == [] and isinstance(usage_ev.get("usage"), dict), "chat stream: last chunk is usage")
    last = events[-2]["choices"][0]
    check(last["finish_reason"] == choice["finish_reason"] and last["delta"] == {},
          "chat stream: final chunk has finish_reason and an empty delta: %r" % last)
    body_ev = events[:-2]
    check(all(e["choices"][0]["finish_reason"] is None and "usage" in e and e["usage"] is None for e in body_ev),
          "chat stream: content chunks have finish_reason null and usage null")
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in body_ev)
    check(streamed == text, "chat stream reassembles to the greedy text: %r vs %r" % (streamed, text))
    u1, u2 = full["usage"], usage_ev["usage"]
    check(u1["prompt_tokens"] == u2["prompt_tokens"] and u1["completion_tokens"] == u2["completion_tokens"],
          "chat stream usage = non-streamed usage: %r %r" % (u1, u2))
    check(u2["prompt_tokens_details"]["cached_tokens"] >= u2["prompt_tokens"] - 1,
          "the same prompt again reuses at least all but its last token: %r" % u2)

# Without include_usage: no usage chunk and no usage fields.
status, events, done = stream(CHAT, chat_body(conv, temperature=0, max_tokens=MAXT, stream=True))
check(done and events and events[-1]["choices"][0]["finish_reason"] and all("usage" not in e for e in events),
      "chat stream without include_usage")
check("".join(e["choices"][0]["delta"].get("content", "") for e in events) == text, "chat stream (no usage) text")

# Completions, plain and streamed.
cbody = {"model": args.model, "prompt": "The quick brown fox", "temperature": 0, "max_tokens": MAXT}
status, comp = jrequest("POST", COMP, cbody)
ctext = comp["choices"][0]["text"] if status == 200 else None
check(status == 200 and comp["object"] == "text_completion" and comp["id"].startswith("cmpl-") and
      isinstance(ctext, str), "completions: %r" % comp)
check_usage(comp.get("usage"), "completions", MAXT, comp["choices"][0]["finish_reason"] if status == 200 else None)
status, events, done = stream(COMP, dict(cbody, stream=True, stream_options={"include_usage": True}))
check(status == 200 and done and len(events) >= 2, "completions stream")
if events:
    check(all(e["object"] == "text_completion" for e in events), "completions stream objects")
    check(events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == comp["usage"]["completion_tokens"],
          "completions stream usage chunk")
    check(events[-2]["choices"][0]["finish_reason"] == comp["choices"][0]["finish_reason"],
          "completions stream finish_reason")
    streamed = "".join(e["choices"][0]["text"] for e in events[:-1])
    check(streamed == ctext, "completions stream reassembles: %r vs %r" % (streamed, ctext))
status, r = jrequest("POST", COMP, {"model": args.model, "prompt": "", "max_tokens": 2})
check(status == 200 and r["usage"]["prompt_tokens"] == 1, "an empty prompt starts from <|endoftext|>: %r" % r)
status, r = jrequest("POST", COMP, {"model": args.model, "prompt": [100, 200, 300], "max_tokens": 2})
check(status == 200 and r["usage"]["prompt_tokens"] == 3, "a prompt of token ids: %r" % r)
# "\u0000" would cut a string short (cJSON's strings are C strings): it is refused. An
# escaped backslash before "u0000" is ordinary text.
expect_error(400, "invalid_value", "POST", COMP, body={"model": args.model, "prompt": "abc\u0000def"},
             what="NUL in a prompt")
expect_error(400, "invalid_value", "POST", CHAT, body=chat_body(user("a\u0000")), what="NUL in a message")
status, r = jrequest("POST", COMP, {"model": args.model, "prompt": "a\\u0000b", "max_tokens": 1})
check(status == 200 and r["usage"]["prompt_tokens"] > 1, "an escaped backslash before u0000 is text: %r" % r)

section("greedy and streaming")
# ---- stop strings: the greedy text cut before the first match ----
if len(text) >= 8:
    stop_s = text[4:7]
    want = text[:text.find(stop_s)]
    status, r = jrequest("POST", CHAT, chat_body(conv, temperature=0, max_tokens=MAXT, stop=[stop_s]))
    check(status == 200 and r["choices"][0]["message"]["content"] == want and
          r["choices"][0]["finish_reason"] == "stop", "stop %r: want %r, got %r" % (stop_s, want, r))
    status, events, done = stream(CHAT, chat_body(conv, temperature=0, max_tokens=MAXT, stop=stop_s, stream=True))
    got = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    check(got == want and events[-1]["choices"][0]["finish_reason"] == "stop", "streamed stop: %r vs %r" % (got, want))
else:
    check(False, "greedy text long enough to test stop strings: %r" % text)

# ---- seeds: the same seed gives the same sample ----
sbody = chat_body(user("Pick a word."), temperature=1.0, top_p=0.9, seed=1234, max_tokens=12)
a = jrequest("POST", CHAT, sbody)[1]["choices"][0]["message"]["content"]
b = jrequest("POST", CHAT, sbody)[1]["choices"][0]["message"]["content"]
check(a == b, "same seed, same text: %r vs %r" % (a, b))
status, r = jrequest("POST", CHAT, chat_body(user("Pick a word."), temperature=0.7, frequency_penalty=1.0,
                                             presence_penalty=0.5, top_k=20, min_p=0.05, max_tokens=4,
                                             logit_bias={"100": -100}))
check(status == 200, "penalties, top_k, min_p and logit_bias accepted: %r" % r)

section("stop strings and seeds")
# ---- prefix reuse: the second turn of a conversation ----
turn1 = [{"role": "system", "content": "You answer in one line."}, {"role": "user", "content": "What is a prime?"}]
status, r1 = jrequest("POST", CHAT, chat_body(turn1, temperature=0, max_tokens=8))
turn2 = turn1 + [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]},
                 {"role": "user", "content": "And a composite number?"}]
status, r2 = jrequest("POST", CHAT, chat_body(turn2, temperature=0, max_tokens=8))
c2 = r2["usage"]["prompt_tokens_details"]["cached_tokens"]
check(status == 200 and c2 >= r1["usage"]["prompt_tokens"],
      "turn 2 reuses turn 1's prompt: cached %d, turn 1 had %d prompt tokens" % (c2, r1["usage"]["prompt_tokens"]))
check(r2["usage"]["prompt_tokens"] > r1["usage"]["prompt_tokens"], "turn 2 is longer")

section("prefix reuse")
# ---- 8 concurrent clients ----
prompts = ["Client %d: count to %d, please." % (i, i + 3) for i in range(8)]
lengths = [6 + (i % 4) * 3 for i in range(8)]
expected = []
for i in range(8):  # one at a time first: the greedy answers and the prompt sizes
    status, r = jrequest("POST", CHAT, chat_body(user(prompts[i]), temperature=0, max_tokens=lengths[i]))
    expected.append(r)
results = [None] * 8
busy_seen = [0]


def client(i):
    try:
        body = chat_body(user(prompts[i]), temperature=0, max_tokens=lengths[i])
        if i % 2:
            status, events, done = stream(CHAT, dict(body, stream=True, stream_options={"include_usage": True}))
            content = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
            results[i] = (status, content, events[-1].get("usage") if events else None, done,
                          events[-2]["choices"][0]["finish_reason"] if len(events) > 1 else None)
        else:
            status, r = jrequest("POST", CHAT, body)
            results[i] = (status, r["choices"][0]["message"]["content"], r.get("usage"), True,
                          r["choices"][0]["finish_reason"])
    except Exception as ex:  # recorded as a failure below
        results[i] = ("exception", repr(ex), None, False, None)


threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
t0 = time.time()
for t in threads:
    t.start()
time.sleep(0.3)
hc = health()
for t in threads:
    t.join(120)
check(hc.get("slots_processing", 0) >= min(2, args.parallel), "several slots busy at once: %r" % hc)
for i in range(8):
    status, content, usage, done, finish = results[i]
    ex = expected[i]
    check(status == 200 and done, "client %d completed: %r" % (i, results[i]))
    if status != 200:
        continue
    check_usage(usage, "client %d" % i, lengths[i], finish)
    check(usage["prompt_tokens"] == ex["usage"]["prompt_tokens"] and
          usage["completion_tokens"] == ex["usage"]["completion_tokens"],
          "client %d usage matches the sequential run: %r vs %r" % (i, usage, ex["usage"]))
    check(content == ex["choices"][0]["message"]["content"],
          "client %d greedy text matches the sequential run: %r vs %r" % (i, content,
                                                                          ex["choices"][0]["message"]["content"]))
check(wait_idle(10) is not None, "all slots idle after the concurrent clients")

section("8 concurrent clients")
batch_invariance(args.parallel)
section("batch invariance")
# ---- disconnects ----
LONG = args.ctx - 64  # a generation much longer than the test waits for


def open_stream(body):
    s = socket.create_connection((HOST, args.port), timeout=30)
    data = json.dumps(body).encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (CHAT, args.key, len(data))).encode() + data)
    return s


m_before = metrics()
# Mid-stream: read the first chunks, then hang up; the slot frees at once.
s = open_stream(chat_body(user("Tell me a long story."), max_tokens=LONG, stream=True, temperature=0))
got = b""
while got.count(b"data: ") < 3:
    piece = s.recv(4096)
    if not piece:
        break
    got += piece
check(got.startswith(b"HTTP/1.1 200"), "long stream started: %r" % got[:100])
check(health().get("slots_processing") == 1, "the long stream holds a slot")
s.close()
freed = wait_idle(5)
check(freed is not None and freed < 2, "a client that hangs up mid-stream frees its slot at once (%r s)" % freed)

# Not streamed: hang up while it generates.
s = open_stream(chat_body(user("Another long story."), max_tokens=LONG, temperature=0))
time.sleep(0.5)
check(health().get("slots_processing") == 1, "the long request holds a slot")
s.close()
freed = wait_idle(5)
check(freed is not None and freed < 2, "a non-streamed client that hangs up frees its slot (%r s)" % freed)

# Queued: fill every slot, queue one more, hang it up; the queue empties.
holders = [open_stream(chat_body(user("Fill %d" % i), max_tokens=LONG, stream=True)) for i in range(args.parallel)]
time.sleep(0.5)
q = open_stream(chat_body(user("Waiting in line"), max_tokens=4))
time.sleep(0.5)
h = health()
check(h.get("queued") == 1 and h.get("slots_processing") == args.parallel, "one request queued: %r" % h)
mq = metrics()
check(mval(mq, "vkphi_queue_depth") == 1 and mval(mq, "vkphi_slots_busy") == args.parallel and
      0 < mval(mq, "vkphi_kv_cache_tokens") <= args.parallel * args.ctx,
      "/metrics: queue depth 1, every slot busy: %r" % {k[0]: v for k, v in mq.items() if not k[1]})
q.close()
time.sleep(0.5)
check(health().get("queued") == 0, "a queued client that hangs up leaves the queue")
for s in holders:
    s.close()
check(wait_idle(5) is not None, "all slots free after the holders hang up")

# Still serving, and greedy answers unchanged.
status, r = jrequest("POST", CHAT, chat_body(conv, temperature=0, max_tokens=MAXT))
check(status == 200 and r["choices"][0]["message"]["content"] == text, "serving normally after the disconnects")
# The two non-streamed clients that hung up were never answered: /metrics counts them as
# closed (a stream's 200 went out before its client left). A connection's end is
# counted when its thread notices, so allow it a moment.
for _ in range(40):
    closed = (reqs(metrics(), CHAT, "closed") or 0) - (reqs(m_before, CHAT, "closed") or 0)
    if closed >= 2:
        break
    time.sleep(0.05)
check(closed == 2, "/metrics counts 2 chat requests closed without an answer: %r" % closed)

section("disconnects")
# ---- soak: many small requests, memory stable ----
# Generating requests repeat a prompt (or change only its last token) so that each
# evaluates one token: the soak exercises the request paths, not prompt evaluation.
def soak_one(i):
    k = i % 6
    if k == 0:
        request("POST", CHAT, chat_body(user("soak"), max_tokens=1))
    elif k == 1:
        stream(CHAT, chat_body(user("soak"), max_tokens=1, stream=True, stream_options={"include_usage": True}))
    elif k == 2:
        request("POST", COMP, {"model": args.model, "prompt": [1000, 1001, 1002, 1003 + i % 7], "max_tokens": 1})
    elif k == 3:
        request("POST", CHAT, raw=b'{"model": "%s", "messages": [' % args.model.encode())  # malformed
    elif k == 4:
        request("GET", "/v1/models" if i % 12 < 6 else "/metrics")
    else:
        request("POST", CHAT, chat_body(user("soak %d" % i), max_tokens=0))  # rejected


def soak(n, workers=4):
    errors = []

    def worker(w):
        for i in range(w, n, workers):
            try:
                soak_one(i)
            except Exception as ex:
                errors.append(repr(ex))

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    return errors


warm = max(args.soak // 5, 12)
check(not soak(warm), "soak warm-up")
rss0 = rss_kib()
t0 = time.time()
errs = soak(args.soak)
rss1 = rss_kib()
check(not errs, "soak: every request answered: %r" % errs[:3])
grow = rss1 - rss0
print("soak: %d requests in %.1f s, VmRSS %d -> %d KiB (%+d)" % (args.soak, time.time() - t0, rss0, rss1, grow))
check(grow < 8 * 1024, "VmRSS stable over the soak (grew %d KiB)" % grow)
check(health().get("status") == "ok", "healthy after the soak")
mend = metrics()  # also checks that no counter went down since the first scrape
check(mval(mend, "vkphi_slots_busy") == 0 and mval(mend, "vkphi_queue_depth") == 0, "/metrics at rest after the soak")

section("soak")
print("serve_client: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
