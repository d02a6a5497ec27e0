#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi bench end to end on a small generated model: the JSON fields of issue 7 with
# consistent arithmetic (gb_per_s = tokens_per_s x bytes_per_token, roofline =
# gb_per_s / peak, bytes per token = the weights on the device plus the KV cache
# read), the table and Markdown forms, the bandwidth test alone, --parallel (N
# sequences decoding together), one-line errors, and bench/compare turning two
# results into a table and an SVG chart.
set -u
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)


if ! command -v python3 >/dev/null; then echo "skipped: python3 is needed to read the JSON"; exit 77; fi
if ! "$VKPHI" devices 2>/dev/null | grep -q '^device 0'; then echo "skipped: no Vulkan device"; exit 77; fi


M="$TMP/tiny-Q8_0.gguf"
M2="$TMP/tiny-Q4_0.gguf"
"$VKPHI" mkmodel --preset tiny --type Q8_0 -o "$M" 2>/dev/null || bad "mkmodel Q8_0"
"$VKPHI" mkmodel --preset tiny --type Q4_0 -o "$M2" 2>/dev/null || bad "mkmodel Q4_0"

if "$VKPHI" bench -m "$M" -p 16 -n 8 -r 2 -q --json >"$TMP/a.json" 2>"$TMP/err"; then ok "bench --json"
else bad "bench --json: $(cat "$TMP/err")"; fi
if "$VKPHI" bench -m "$M2" -p 16 -n 8 -r 2 -d 8 -q --json >"$TMP/b.json" 2>"$TMP/err"; then ok "bench --json -d 8"
else bad "bench --json -d 8: $(cat "$TMP/err")"; fi

# Check the fields and the arithmetic. The weights a decode step reads are every
# tensor the device holds: all but the token embeddings, looked up on the host.
check_json() { # json model depth n
    python3 - "$@" <<'EOF'
import json, struct, sys
path, model, depth, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = json.load(open(path))
errors = []
def need(cond, what):
    if not cond: errors.append(what)
for k in ("name", "vendor_id", "driver", "api_version"): need(k in r.get("device", {}), "device." + k)
for k in ("name", "file_bytes", "quant_mix"): need(k in r.get("model", {}), "model." + k)
for k in ("peak_gb_per_s", "results", "kernels", "load_s", "ttft_ms"): need(k in r, k)
if errors: sys.exit("missing: " + ", ".join(errors))
peak = r["peak_gb_per_s"]
need(peak > 0, "peak > 0")
need(r["load_s"] > 0 and r["ttft_ms"] > 0, "load_s and ttft_ms > 0")
suffix = "@d%d" % depth if depth else ""
tests = {t["test"]: t for t in r["results"]}
need(set(tests) == {"pp16" + suffix, "tg8" + suffix}, "tests %s" % sorted(tests))
for t in tests.values():
    need(t["tokens_per_s"] > 0 and t["stdev"] >= 0, "%s tokens_per_s %s stdev %s" % (t["test"], t["tokens_per_s"], t["stdev"]))
tg = tests.get("tg8" + suffix, {})
for k in ("bytes_per_token", "gb_per_s", "roofline_fraction"): need(k in tg, "tg." + k)
if errors: sys.exit("; ".join(errors))
gb = tg["tokens_per_s"] * tg["bytes_per_token"] / 1e9
need(abs(gb - tg["gb_per_s"]) <= 1e-4 + 1e-3 * gb, "gb_per_s %s != %s" % (tg["gb_per_s"], gb))
need(abs(tg["gb_per_s"] / peak - tg["roofline_fraction"]) <= 1e-4 + 1e-3 * tg["roofline_fraction"], "roofline")
# Tensor bytes from the GGUF header.
f = open(model, "rb")
def rd(fmt): return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))
def skip_val(t):
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    if t == 8: f.seek(rd("Q")[0], 1)
    elif t == 9:
        et, cnt = rd("IQ")
        if et in sizes: f.seek(sizes[et] * cnt, 1)
        else:
            for _ in range(cnt): skip_val(et)
    else: f.seek(sizes[t], 1)
magic, ver, nt, nkv = rd("4sIQQ")
n_layer = kv_dim = None
for _ in range(nkv):
    key = f.read(rd("Q")[0]).decode(); t = rd("I")[0]
    if key in ("phi3.block_count", "phi3.attention.head_count_kv", "phi3.attention.head_count", "phi3.embedding_length") and t == 4:
        v = rd("I")[0]
        if key == "phi3.block_count": n_layer = v
        elif key == "phi3.attention.head_count_kv": kv_heads = v
        elif key == "phi3.attention.head_count": heads = v
        else: embd = v
    else: skip_val(t)
# Bytes each weight takes on the device (runtime/core/repack.h): a row's blocks of QK
# values in tiles of G, each an H-byte header and S bytes per block, the last tile
# only as long as its blocks need; the float types as in the file.
TILE = {0: (1, 1, 0, 4), 1: (1, 1, 0, 2), 30: (1, 1, 0, 2), 2: (32, 4, 16, 16), 8: (32, 4, 16, 32),
        14: (256, 4, 16, 208), 12: (256, 1, 0, 144), 13: (256, 1, 0, 176), 11: (256, 1, 0, 112)}
weights = 0
for _ in range(nt):
    name = f.read(rd("Q")[0]).decode(); nd = rd("I")[0]; ne = rd("Q" * nd); t, off = rd("IQ")
    cnt = 1
    for e in ne: cnt *= e
    qk, g, h, sz = TILE[t]
    nb = ne[0] // qk
    size = cnt // ne[0] * (nb // g * (h + g * sz) + (h + nb % g * sz if nb % g else 0))
    if name != "token_embd.weight": weights += size
kv_per_token = 2 * n_layer * (embd // heads) * kv_heads * 2   # keys and values, f16
kv = kv_per_token * (depth + (n + 1) / 2)
need(abs(tg["bytes_per_token"] - (weights + kv)) <= 0.01 * kv + 16,
     "bytes_per_token %s, want %d weights + %.0f KV" % (tg["bytes_per_token"], weights, kv))
k = r["kernels"]
# A decode step is matrix-vector products (RMSNorm and SwiGLU folded in) and attention
# (RoPE and the KV store folded in).
need(len(k) >= 2 and all("name" in x and x["ms"] >= 0 and 0 <= x["percent"] <= 100 for x in k), "kernels %s" % k)
need(any(x["name"] == "attention" for x in k), "attention in the decode breakdown")
need(abs(sum(x["percent"] for x in k) - 100) < 0.5, "kernel shares sum to %s" % sum(x["percent"] for x in k))
need(any(x["name"].startswith("matvec") for x in k), "a matvec kernel in the decode breakdown")
# Decode replays a recorded step: no recording, one submission, six dispatches a layer
# (QKV, attention and its merge, output, gate/up, down) and the head.
need(tg["recordings_per_token"] < 0.05, "%.2f command buffers recorded per decode token" % tg["recordings_per_token"])
need(tg["submits_per_token"] <= 2, "%.2f submits per decode token" % tg["submits_per_token"])
need(tg["dispatches_per_token"] <= 6 * n_layer + 1, "%.1f dispatches per decode token over %d layers" %
     (tg["dispatches_per_token"], n_layer))
if errors: sys.exit("; ".join(errors))
print("tg %.1f tok/s x %d B = %.3f GB/s = %.1f%% of %.2f GB/s" % (tg["tokens_per_s"], tg["bytes_per_token"], tg["gb_per_s"], 100 * tg["roofline_fraction"], peak))
EOF
}
if out=$(check_json "$TMP/a.json" "$M" 0 8 2>&1); then ok "JSON fields and arithmetic: $out"; else bad "JSON: $out"; cat "$TMP/a.json"; fi
if out=$(check_json "$TMP/b.json" "$M2" 8 8 2>&1); then ok "JSON at depth 8: $out"; else bad "JSON at depth 8: $out"; cat "$TMP/b.json"; fi

# The readable table and Markdown.
table=$("$VKPHI" bench -m "$M" -p 8 -n 4 -r 1 -q 2>&1)
if [[ "$table" == *"tokens/s"* ]] && [[ "$table" == *"pp8 "* ]] && [[ "$table" == *"tg4 "* ]] &&
    [[ "$table" == *"peak:"* ]]; then ok "table"; else bad "table: $table"; fi
md=$("$VKPHI" bench -m "$M" -p 8 -n 4 -r 1 -q --markdown 2>&1)
if [[ "$md" == *"| test | tokens/s |"* ]] && [[ "$md" == *"| tg4 |"* ]] && [[ "$md" == *"|---|"* ]]; then ok "markdown"
else bad "markdown: $md"; fi

# The bandwidth test alone.
bw=$("$VKPHI" bench --bandwidth --json 2>&1)
if python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["peak_gb_per_s"] > 0 and "results" not in r' "$bw" 2>/dev/null
then ok "bandwidth: $(echo "$bw" | grep peak_gb)"; else bad "bandwidth: $bw"; fi

# --parallel: N sequences decode together through model_eval_batch; the JSON has the
# aggregate and per-sequence tokens/s of each N (aggregate = N x per sequence) and no
# pp/tg results; the table has one row per N.
if "$VKPHI" bench -m "$M" -p 8 -n 4 -r 1 -q --parallel 1,2,4 --json >"$TMP/par.json" 2>"$TMP/err"; then
    if out=$(python3 - "$TMP/par.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
par = r.get("parallel")
assert isinstance(par, list) and [p["sequences"] for p in par] == [1, 2, 4], par
for p in par:
    assert p["prompt_tokens"] == 8 and p["tokens"] == 4, p
    assert p["aggregate_tokens_per_s"] > 0 and p["stdev"] >= 0, p
    assert abs(p["per_sequence_tokens_per_s"] * p["sequences"] - p["aggregate_tokens_per_s"]) <= 1e-3 + 1e-3 * p["aggregate_tokens_per_s"], p
assert r["results"] == [], r["results"]
print(", ".join("N=%d %.1f tok/s" % (p["sequences"], p["aggregate_tokens_per_s"]) for p in par))
EOF
    ); then ok "bench --parallel --json: $out"; else bad "bench --parallel JSON: $out"; cat "$TMP/par.json"; fi
else
    bad "bench --parallel --json: $(cat "$TMP/err")"
fi
table=$("$VKPHI" bench -m "$M" -p 4 -n 2 -r 1 -q --parallel 2,1 2>&1)
if [[ "$table" == *"aggregate tokens/s"* ]] && echo "$table" | grep -Eq '^2 +[0-9.]+ ± [0-9.]+ +[0-9.]+ +[0-9.]+x$' &&
    echo "$table" | grep -Eq '^1 +[0-9.]+ ± [0-9.]+ +[0-9.]+ +1\.00x$' && [[ "$table" != *"tg2"* ]]; then
    ok "bench --parallel table"
else
    bad "bench --parallel table: $table"
fi
expect_error "--parallel 0" "--parallel" "$VKPHI" bench -m "$M" --parallel 0
expect_error "--parallel x" "--parallel" "$VKPHI" bench -m "$M" --parallel 2,x
expect_error "--parallel 65" "--parallel" "$VKPHI" bench -m "$M" --parallel 65
expect_error "--parallel with -d" "-d" "$VKPHI" bench -m "$M" --parallel 2 -d 8
expect_error "--parallel with -n 0" "-n" "$VKPHI" bench -m "$M" --parallel 2 -n 0 -p 4
expect_error "--parallel, small context" "too small" "$VKPHI" bench -m "$M" --parallel 2 -p 32 -n 4 -c 16 -r 1 -q

expect_error "bad -p" "-p" "$VKPHI" bench -m "$M" -p x
expect_error "-r 0" "-r" "$VKPHI" bench -m "$M" -r 0
expect_error "json and markdown" "exclude" "$VKPHI" bench -m "$M" --json --markdown
expect_error "nothing to measure" "nothing to measure" "$VKPHI" bench -m "$M" -p 0 -n 0
expect_error "missing model" "no-such.gguf" "$VKPHI" bench -m "$TMP/no-such.gguf" -p 4 -n 2 -r 1 -q
expect_error "small context" "too small" "$VKPHI" bench -m "$M" -p 64 -n 4 -r 1 -c 32 -q
expect_error "unknown option" "--bogus" "$VKPHI" bench --bogus

# bench/compare: a Markdown table on stdout, an SVG chart in the current directory.
if (cd "$TMP" && python3 "$SRC/bench/compare" a.json b.json >table.md 2>compare.err); then ok "compare runs"
else bad "compare: $(cat "$TMP/compare.err")"; fi
rows=$(grep -c '^| ' "$TMP/table.md" 2>/dev/null) # the header and one line per result and test
if grep -q '^| device | driver | model | test | tokens/s | GB/s | roofline | peak GB/s |' "$TMP/table.md" &&
    grep -q '| tg8 |' "$TMP/table.md" && grep -q '| tg8@d8 |' "$TMP/table.md" && [ "$rows" -eq 5 ]; then
    ok "compare table ($rows lines)"
else
    bad "compare table: $(cat "$TMP/table.md")"
fi
if python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); assert r.tag.endswith("svg"); assert len(list(r.iter("{http://www.w3.org/2000/svg}rect"))) >= 6' \
    "$TMP/bench-compare.svg" 2>/dev/null; then ok "compare chart"; else bad "compare chart"; fi
echo '{"device": {}}' >"$TMP/bad.json"
if (cd "$TMP" && python3 "$SRC/bench/compare" bad.json >/dev/null 2>compare.err); then bad "compare accepted a bad file"
elif grep -q "bad.json" "$TMP/compare.err"; then ok "compare refuses a bad file: $(cat "$TMP/compare.err")"
else bad "compare error: $(cat "$TMP/compare.err")"; fi

exit $failed
