#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes the GGUF reader (and model_check, and the dequantizers it reaches) with
# libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer.
#   tests/fuzz.sh [SECONDS]   (default 60)
# Builds tests/fuzz_gguf.c with clang, runs it on a copy of tests/fuzz/corpus, and
# exits non-zero on a finding; the crashing input is kept in fuzz-findings/.
set -euo pipefail

seconds=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cc=${CC:-}
if [ -z "$cc" ]; then
    for c in clang-14 clang; do command -v "$c" >/dev/null && { cc=$c; break; }; done
fi
[ -n "$cc" ] || { echo "fuzz.sh: clang not found (set CC)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cc" -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/runtime" "$here/fuzz_gguf.c" "$root/runtime/gguf.c" "$root/runtime/common.c" \
    "$root/runtime/quant.c" "$root/runtime/model_check.c" -lm -o "$work/fuzz_gguf"
cp -r "$here/fuzz/corpus" "$work/corpus"
mkdir -p "$work/findings"

status=0
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$work/fuzz_gguf" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/findings/" "$work/corpus" || status=$?
if [ "$status" -ne 0 ] || [ -n "$(ls -A "$work/findings")" ]; then
    mkdir -p fuzz-findings
    cp "$work"/findings/* fuzz-findings/ 2>/dev/null || true
    echo "fuzz.sh: finding (exit $status); inputs kept in $(pwd)/fuzz-findings/" >&2
    exit $((status ? status : 1))
fi
echo "fuzz.sh: no findings in ${seconds}s"
