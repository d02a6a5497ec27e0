#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vkphi logits end to end: for every ../shared/reference/tiny-phi4-*.gguf, the logits
# of reference/tokens.txt through --ubatch 512 (prefill) and --ubatch 1 (decode)
# against the reference runtime's logits (mean KL(ref || ours) <= 0.005, top-1
# agreement >= 0.9), or for the files that come with exact logits only, against
# those (mean KL <= 1e-4); and bad input refused with one line. Without ../shared,
# only the logits written in windows (on a model written here).
set -u
. "$(dirname "$0")/lib.sh"
if ! command -v python3 >/dev/null; then
    echo "skipped: python3 (for the logits checker) is absent"
    exit 77
fi

# Logits of every position on Phi-4's vocabulary (100352) are written in windows of
# rows that each fit one storage-buffer binding (512 rows are 205 MB; lavapipe binds
# 128 MiB). Here the binding is cut to 8 MiB (20 rows) so that a 50-token ubatch
# takes three windows (20, 20, 10: all through the tiled kernel, as the whole is):
# every row must equal the run without windows, bit for bit.
if "$VKPHI" mkmodel --preset tiny --type Q8_0 -o "$TMP/vocab.gguf" >/dev/null 2>"$TMP/err"; then
    python3 -c 'import random; random.seed(5); print(" ".join(str(random.randrange(100352)) for _ in range(50)))' >"$TMP/t50.txt"
    "$VKPHI" logits -m "$TMP/vocab.gguf" --tokens "$TMP/t50.txt" --out "$TMP/whole.f32" --ubatch 50 -q 2>"$TMP/err" ||
        bad "50 rows in one window: $(cat "$TMP/err")"
    VKPHI_LIMITS="${VKPHI_LIMITS:+$VKPHI_LIMITS,}storage_range=8M" \
        "$VKPHI" logits -m "$TMP/vocab.gguf" --tokens "$TMP/t50.txt" --out "$TMP/windows.f32" --ubatch 50 -q 2>"$TMP/err" ||
        bad "50 rows in 8 MiB windows: $(cat "$TMP/err")"
    expect "windowed logits: every row" "$(stat -c %s "$TMP/windows.f32" 2>/dev/null)" $((50 * 100352 * 4))
    if cmp -s "$TMP/whole.f32" "$TMP/windows.f32"; then ok "windowed logits equal the whole"; else bad "windowed logits differ"; fi
else
    bad "mkmodel tiny: $(cat "$TMP/err")"
fi

need_shared "the logits of the reference files, and bad input"
REF=$SHARED/reference
[ -r "$REF/tokens.txt" ] || { bad "$REF/tokens.txt is missing"; exit 1; }

# compare OURS REF N_VOCAB: prints "KL top1 rows" for the float32 row files.
cat >"$TMP/compare.py" <<'EOF'
import math, sys
from array import array

def rows(path, n):
    a = array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    if len(a) % n:
        sys.exit("%s: %d floats is not a whole number of rows of %d" % (path, len(a), n))
    return [a[i:i + n] for i in range(0, len(a), n)]

ours, ref, n = rows(sys.argv[1], int(sys.argv[3])), rows(sys.argv[2], int(sys.argv[3])), int(sys.argv[3])
if len(ours) != len(ref):
    sys.exit("%d rows, the reference has %d" % (len(ours), len(ref)))
kl_sum, agree = 0.0, 0
for a, b in zip(ref, ours):
    ma, mb = max(a), max(b)
    if not all(math.isfinite(x) for x in b):
        sys.exit("non-finite logits")
    la = math.log(sum(math.exp(x - ma) for x in a))
    lb = math.log(sum(math.exp(x - mb) for x in b))
    kl_sum += sum(math.exp(x - ma - la) * ((x - ma - la) - (y - mb - lb)) for x, y in zip(a, b))
    agree += a.index(ma) == b.index(mb)
print("%.6f %.4f %d" % (kl_sum / len(ref), agree / len(ref), len(ref)))
EOF

N_TOK=$(wc -w <"$REF/tokens.txt")
n_models=0
for model in "$REF"/tiny-phi4-*.gguf; do
    case $(basename "$model") in tiny-phi4-mini-* | tiny-phi4-llama-*) continue ;; esac # below
    name=$(basename "$model" .gguf)
    ref="$REF/$name.logits.f32" max_kl=0.005
    [ -r "$ref" ] || ref="$REF/$name.exact.f32" max_kl=0.0001
    [ -r "$ref" ] || { bad "$name: neither $name.logits.f32 nor $name.exact.f32 is there"; continue; }
    n_models=$((n_models + 1))
    n_vocab=$(($(stat -c %s "$ref") / 4 / N_TOK))
    for ub in 512 1; do
        out="$TMP/$name.$ub.f32"
        if ! "$VKPHI" logits -m "$model" --tokens "$REF/tokens.txt" --out "$out" --ubatch "$ub" -q 2>"$TMP/err"; then
            bad "$name --ubatch $ub: $(cat "$TMP/err")"
            continue
        fi
        size=$(stat -c %s "$out")
        [ "$size" -eq $((N_TOK * n_vocab * 4)) ] || { bad "$name --ubatch $ub: $size bytes, want $((N_TOK * n_vocab * 4))"; continue; }
        if ! read -r kl top1 nrows < <(python3 "$TMP/compare.py" "$out" "$ref" "$n_vocab" 2>&1); then
            bad "$name --ubatch $ub: the checker failed"
            continue
        fi
        if python3 -c "import sys; sys.exit(0 if float('$kl') <= $max_kl and float('$top1') >= 0.9 else 1)" 2>/dev/null; then
            ok "$name --ubatch $ub: mean KL $kl, top-1 $top1 over $nrows rows against $(basename "$ref")"
        else
            bad "$name --ubatch $ub: mean KL $kl top-1 $top1 against $(basename "$ref") (bounds: KL <= $max_kl, top-1 >= 0.9)"
        fi
    done
done
[ $n_models -gt 0 ] || bad "no tiny-phi4-*.gguf in $REF"

# ---- exact logits: Phi-4-mini's shape and the llama layout ----
# The Phi-4-mini-shaped file (LongRoPE: --ctx 256 picks the short factors, 512 the
# long) and the llama-layout file against their exact logits (mean KL <= 1e-4), and
# info and run on them. (The reference runtime's logits of the mini file are 1.9e-2
# from exact math: its 8-bit activations on a sharp attention.)
# check_logits NAME MODEL TOKENS CTX WANT MAX_KL MIN_TOP1: at --ubatch 512 and 1.
check_logits() {
    local name=$1 model=$2 tokens=$3 ctx=$4 want=$5 max_kl=$6 min_top1=$7 ub kl top1 nrows
    local n_tok n_vocab
    n_tok=$(wc -w <"$tokens")
    n_vocab=$(($(stat -c %s "$want") / 4 / n_tok))
    for ub in 512 1; do
        out="$TMP/$name.$ub.f32"
        if ! "$VKPHI" logits -m "$model" --tokens "$tokens" --out "$out" --ubatch "$ub" --ctx "$ctx" -q 2>"$TMP/err"; then
            bad "$name --ubatch $ub: $(cat "$TMP/err")"
            continue
        fi
        if ! read -r kl top1 nrows < <(python3 "$TMP/compare.py" "$out" "$want" "$n_vocab" 2>&1); then
            bad "$name --ubatch $ub: the checker failed"
            continue
        fi
        if python3 -c "import sys; sys.exit(0 if float('$kl') <= $max_kl and float('$top1') >= $min_top1 else 1)" 2>/dev/null; then
            ok "$name --ubatch $ub --ctx $ctx vs $(basename "$want"): mean KL $kl, top-1 $top1 over $nrows rows"
        else
            bad "$name --ubatch $ub --ctx $ctx vs $(basename "$want"): mean KL $kl top-1 $top1 (bounds: KL <= $max_kl, top-1 >= $min_top1)"
        fi
    done
}
MINI=$REF/tiny-phi4-mini-Q4_K_M.gguf LLAMA=$REF/tiny-phi4-llama-Q4_K_M.gguf
if [ -r "$MINI" ]; then
    check_logits mini-short "$MINI" "$REF/tokens.txt" 256 "$REF/tiny-phi4-mini-Q4_K_M.exact.f32" 1e-4 0
    check_logits mini-long "$MINI" "$REF/tokens300.txt" 512 "$REF/tiny-phi4-mini-Q4_K_M.long.exact.f32" 1e-4 0
    "$VKPHI" info -m "$MINI" >"$TMP/info" 2>&1
    grep -qx "runnable: yes" "$TMP/info" && ok "info: the Phi-4-mini-shaped file is runnable" || bad "info on $MINI: $(tail -1 "$TMP/info")"
else
    bad "$MINI is missing"
fi
if [ -r "$LLAMA" ]; then
    check_logits llama "$LLAMA" "$REF/tokens.txt" 512 "$REF/tiny-phi4-llama-Q4_K_M.exact.f32" 1e-4 0
    if [ -r "$REF/tiny-phi4-llama-Q4_K_M.logits.f32" ]; then
        check_logits llama-ref "$LLAMA" "$REF/tokens.txt" 512 "$REF/tiny-phi4-llama-Q4_K_M.logits.f32" 0.005 0.9
    else
        echo "note: no tiny-phi4-llama-Q4_K_M.logits.f32: the llama layout is checked against exact logits only"
    fi
    "$VKPHI" info -m "$LLAMA" >"$TMP/info" 2>&1
    grep -q "^architecture: llama" "$TMP/info" && grep -qx "runnable: yes" "$TMP/info" &&
        ok "info: the llama-layout file is runnable" || bad "info on $LLAMA: $(tail -1 "$TMP/info")"
    # run: the tokenizer, the chat template and generation on the llama layout.
    "$VKPHI" run -m "$LLAMA" -p "Hello" -n 12 --temp 0 --chat >"$TMP/run.llama" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 0 ] && [ -s "$TMP/run.llama" ] && grep -q "generation: 12 tokens" "$TMP/err"; then
        ok "run on the llama layout: '$(head -c 60 "$TMP/run.llama" | tr -d '\n')'"
    else
        bad "run on the llama layout: exit $rc, '$(cat "$TMP/run.llama")', stderr $(cat "$TMP/err")"
    fi
else
    bad "$LLAMA is missing"
fi

# ---- the rounder prompt paths: packed f16 tiles, cooperative matrices ----
# path_logits LABEL NAME MODEL WANT CTX: under the environment the caller sets, at
# --ubatch 512 (wide tiles) and 37 (narrow ones), mean KL <= 1e-4 from exact math on
# the file with the least margin (Phi-4-mini's shape, sharp attention) and a
# Phi-4-shaped one.
path_logits() {
    local label=$1 name=$2 model=$3 want=$4 ctx=$5 ub kl top1 nrows
    for ub in 512 37; do
        out="$TMP/path.$name.$ub.f32"
        kl=
        if "$VKPHI" logits -m "$model" --tokens "$REF/tokens.txt" --out "$out" --ubatch $ub --ctx "$ctx" -q 2>"$TMP/err" &&
            read -r kl top1 nrows < <(python3 "$TMP/compare.py" "$out" "$want" $(($(stat -c %s "$want") / 4 / N_TOK)) 2>&1) &&
            python3 -c "import sys; sys.exit(0 if float('$kl') <= 1e-4 else 1)" 2>/dev/null; then
            ok "$label: $name --ubatch $ub: mean KL $kl from exact math"
        else
            bad "$label: $name --ubatch $ub: KL '$kl' (bound 1e-4): $(cat "$TMP/err")"
        fi
    done
}
Q4KM=$REF/tiny-phi4-Q4_K_M.gguf
# path_profile LABEL KERNEL: bench's prompt profile names the kernel, so the path ran.
path_profile() {
    "$VKPHI" bench -m "$Q4KM" -p 64 -n 0 -r 1 --json >"$TMP/prof" 2>"$TMP/err"
    grep -q "\"name\": \"$2\"" "$TMP/prof" && ok "$1: bench's prompt profile names $2" ||
        bad "$1: no '$2' in bench's prompt profile: $(head -c 300 "$TMP/prof") $(cat "$TMP/err")"
}
# VKPHI_F16MATH=1 takes prompts to the f16 tiles (GPUs whose f16 is fast take them by
# default; with cooperative matrices off, as on such GPUs).
export VKPHI_COOPMAT=0 VKPHI_F16MATH=1
[ -r "$MINI" ] && path_logits "f16 tiles" mini "$MINI" "$REF/tiny-phi4-mini-Q4_K_M.exact.f32" 256
path_logits "f16 tiles" tiny-phi4-Q4_K_M "$Q4KM" "$REF/tiny-phi4-Q4_K_M.exact.f32" 512
path_profile "f16 tiles" "matmul Q4_K f16"
# VKPHI_COOPMAT=1 takes prompts to cooperative matrices wherever the device has them,
# CPU drivers too, which the device policy keeps off them (Mesa 26's lavapipe
# emulates them: kernels/policy.c).
export VKPHI_COOPMAT=1 VKPHI_F16MATH=0
if "$VKPHI" devices | grep -q "cooperative matrix: *yes"; then
    [ -r "$MINI" ] && path_logits "cooperative matrices" mini "$MINI" "$REF/tiny-phi4-mini-Q4_K_M.exact.f32" 256
    path_logits "cooperative matrices" tiny-phi4-Q4_K_M "$Q4KM" "$REF/tiny-phi4-Q4_K_M.exact.f32" 512
    path_profile "cooperative matrices" "matmul Q4_K coopmat"
else
    echo "skipped: cooperative matrices (the device has none)"
fi
unset VKPHI_COOPMAT VKPHI_F16MATH

# ---- bad input: exit 1, one line ----
expect_error() { # name words command...
    local name=$1 words=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^vkphi: error: ' "$TMP/err" &&
        grep -qF -- "$words" "$TMP/err" && [ ! -e "$TMP/bad.f32" ]; then
        ok "$name: $(cat "$TMP/err")"
    else
        bad "$name: exit $rc, stderr '$(cat "$TMP/err")'$([ -e "$TMP/bad.f32" ] && echo ', and it left an output file')"
    fi
    rm -f "$TMP/bad.f32"
}
M="$REF/tiny-phi4-F16.gguf"
echo "1 2 99999 4" >"$TMP/big.txt"
echo "1 2 -3 4" >"$TMP/neg.txt"
echo "1 2 three 4" >"$TMP/word.txt"
echo "" >"$TMP/empty.txt"
L=(logits -m "$M" --out "$TMP/bad.f32")
expect_error "id >= n_vocab" "99999" "$VKPHI" "${L[@]}" --tokens "$TMP/big.txt"
expect_error "negative id" "-3" "$VKPHI" "${L[@]}" --tokens "$TMP/neg.txt"
expect_error "not a number" "three" "$VKPHI" "${L[@]}" --tokens "$TMP/word.txt"
expect_error "no ids" "no token ids" "$VKPHI" "${L[@]}" --tokens "$TMP/empty.txt"
expect_error "missing file" "$TMP/none.txt" "$VKPHI" "${L[@]}" --tokens "$TMP/none.txt"
expect_error "more tokens than the context" "context" "$VKPHI" "${L[@]}" --tokens "$REF/tokens.txt" --ctx 16
expect_error "no --out" "--out" "$VKPHI" logits -m "$M" --tokens "$REF/tokens.txt"
expect_error "missing model" "$TMP/none.gguf" "$VKPHI" logits -m "$TMP/none.gguf" --tokens "$REF/tokens.txt" --out "$TMP/bad.f32"
expect_error "bad --ubatch" "--ubatch" "$VKPHI" "${L[@]}" --tokens "$REF/tokens.txt" --ubatch 0

exit $failed
