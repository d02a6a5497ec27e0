#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes every input surface with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer:
#   gguf       the GGUF reader, model_check and the dequantizers (tests/fuzz_gguf.c)
#   tokenizer  tokenizer_encode / tokenizer_decode on any bytes (tests/fuzz_tokenizer.c)
#   detok      the streaming detokenizer on any token ids (tests/fuzz_detok.c)
#   chat       the chat template on any roles and contents (tests/fuzz_chat.c)
#   server     srv_parse_request and the JSON answers on any body (tests/fuzz_server.c)
#
#   tests/fuzz.sh [SECONDS] [TARGET...]     (default: 60 seconds, every target)
#
# SECONDS is the budget for the whole run, shared equally by the targets named, but
# never less than 30 seconds a target: `tests/fuzz.sh 60` (what CI runs) fuzzes each
# of the five for 30 s, 2.5 minutes plus the builds; `tests/fuzz.sh 600 chat` fuzzes
# the chat template for 10 minutes. Each target starts from its seed corpus
# (tests/fuzz/corpus for gguf, tests/fuzz/<target>/ for the others; copied, so the
# repository is not written to) and a dictionary tests/fuzz/<target>.dict where there
# is one. Every target runs even after another finds something; the script exits
# non-zero when any did, and keeps the crashing inputs in fuzz-findings/<target>/.
# The tokenizer targets read runtime/convert/phi4-tokenizer.gguf. Extra libFuzzer flags
# can be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS=-jobs=2).
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
all=(gguf tokenizer detok chat server)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    case " ${all[*]} " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (known: ${all[*]})" >&2; exit 2 ;; esac
done
per=$((seconds / ${#targets[@]}))
[ "$per" -ge 30 ] || per=$((seconds < 30 ? seconds : 30))

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rt=$root/runtime/core # the targets are of the layer without Vulkan, but generate.c
model=$root/runtime/model
cc=${CC:-}
if [ -z "$cc" ]; then
    for c in clang-14 clang; do command -v "$c" >/dev/null && { cc=$c; break; }; done
fi
[ -n "$cc" ] || { echo "fuzz.sh: clang not found (set CC)" >&2; exit 2; }

# FUZZ_WORK=DIR keeps the binaries and the grown corpora there (to replay an input:
# DIR/fuzz_<target> FILE); by default they go to a temporary folder.
if [ -n "${FUZZ_WORK:-}" ]; then
    work=$FUZZ_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

# The sources each target links. The server target takes generate.c for
# generate_default_params only: its sessions call the model (Vulkan), so generate.c
# is built on its own, without the fuzzer's coverage tables (they would keep every
# function), and the link drops what is unused (--gc-sections) instead of pulling in
# the whole runtime.
tok_src=("$rt/tokenizer.c" "$rt/tokenizer_encode.c" "$rt/tokenizer_decode.c" "$rt/gguf.c" "$rt/quant.c"
    "$rt/quant_iq.c" "$rt/quant_types.c" "$rt/common.c" "$rt/env.c")
sources() {
    case $1 in
    gguf) echo "$rt/gguf.c $rt/common.c $rt/env.c $rt/quant.c $rt/quant_iq.c $rt/quant_types.c $rt/model_config.c" ;;
    tokenizer | detok) echo "${tok_src[*]}" ;;
    chat) echo "${tok_src[*]} $rt/chat.c" ;;
    server) echo "${tok_src[*]} $rt/chat.c $rt/sampler.c $root/tools/server/api.c $work/generate.o" ;;
    esac
}
libs() {
    case $1 in
    gguf) echo "-lm" ;;
    tokenizer | detok | chat) echo "-lpcre2-8 -lm" ;;
    server) echo "-lcjson -lpcre2-8 -lm" ;;
    esac
}

cflags=(-g -O1 -std=c11 -D_GNU_SOURCE -DVK_NO_PROTOTYPES -fno-sanitize-recover=all -ffunction-sections -fdata-sections)
# Every layer's headers: the server target's api.h reaches the public header, vkphi.h.
includes=(-I"$root/runtime" -I"$rt" -I"$root/runtime/gpu" -I"$root/runtime/kernels" -I"$model"
          -I"$root/runtime/convert" -I"$root/shaders/common")
build() {
    local t=$1
    if [ "$t" = server ]; then
        "$cc" "${cflags[@]}" -fsanitize=address,undefined "${includes[@]}" -c "$model/generate.c" -o "$work/generate.o"
    fi
    # shellcheck disable=SC2046
    "$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined -Wl,--gc-sections \
        -DVKPHI_FUZZ_TOKENIZER_PATH="\"$root/runtime/convert/phi4-tokenizer.gguf\"" \
        "${includes[@]}" -I"$root/tools" "$here/fuzz_$t.c" $(sources "$t") $(libs "$t") -o "$work/fuzz_$t"
}

failed=()
for t in "${targets[@]}"; do
    echo "fuzz.sh: building $t"
    build "$t"
    corpus=$here/fuzz/$t
    [ "$t" = gguf ] && corpus=$here/fuzz/corpus
    rm -rf "${work:?}/$t"
    mkdir -p "$work/$t/corpus" "$work/$t/findings"
    cp -r "$corpus"/. "$work/$t/corpus/"
    dict=()
    [ -f "$here/fuzz/$t.dict" ] && dict=(-dict="$here/fuzz/$t.dict")
    max_len=65536
    [ "$t" = gguf ] || max_len=8192
    echo "fuzz.sh: fuzzing $t for ${per}s"
    status=0
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$work/fuzz_$t" -max_total_time="$per" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$work/$t/findings/" "${dict[@]}" ${FUZZ_FLAGS:-} \
        "$work/$t/corpus" || status=$?
    if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/$t/findings")" ]; then
        mkdir -p "fuzz-findings/$t"
        cp "$work/$t/findings"/* "fuzz-findings/$t/" 2>/dev/null || true
        echo "fuzz.sh: $t: finding (exit $status); inputs kept in $(pwd)/fuzz-findings/$t/" >&2
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no findings (${targets[*]}: ${per}s each)"
