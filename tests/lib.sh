# SPDX-License-Identifier: MIT
# Shared by the tests/cli_*.sh tests: the binary, a temporary directory removed at
# exit, and the checks. Source it first; `failed` is 1 once a check failed, `passed`
# counts the checks that passed.
VKPHI=${VKPHI:?set VKPHI to the vkphi binary}
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failed=0 passed=0 shared_skipped=0
export LC_ALL=C # byte-wise string handling

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=1; }
expect() { # name got want
    if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}

# An error: exit status 1, nothing on stdout, exactly one line on stderr naming `words`.
expect_error() { # name words command...
    local name=$1 words=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    local lines; lines=$(wc -l <"$TMP/err")
    if [ $rc -eq 1 ] && [ ! -s "$TMP/out" ] && [ "$lines" -eq 1 ] && grep -q '^vkphi: error: ' "$TMP/err" &&
        grep -qF -- "$words" "$TMP/err"; then
        ok "$name: $(cat "$TMP/err")"
    else
        bad "$name: exit $rc, stdout '$(cat "$TMP/out")', stderr '$(cat "$TMP/err")'"
    fi
}

# ../shared (VKPHI_SHARED_DIR: the reference models) for WHAT, the part of the test
# that needs it, as test_shared_dir in tests/harness.c: status 0 and SHARED its path
# when it is there. When it is absent: status 1, and the part is skipped (a "skipped:
# WHAT: ../shared is absent" line; the test still passes if the rest does, see finish)
# or, when VKPHI_REQUIRE_SHARED is set (CI has ../shared), failed.
have_shared() { # what
    SHARED=${VKPHI_SHARED_DIR:-}
    if [ -n "$SHARED" ] && [ -d "$SHARED" ]; then return 0; fi
    if [ -n "${VKPHI_REQUIRE_SHARED:-}" ] && [ "$VKPHI_REQUIRE_SHARED" != 0 ]; then
        bad "$1: ../shared (VKPHI_SHARED_DIR=$SHARED) is missing and VKPHI_REQUIRE_SHARED=$VKPHI_REQUIRE_SHARED"
    else
        echo "skipped: $1: ../shared is absent (VKPHI_SHARED_DIR=$SHARED)"
        shared_skipped=$((shared_skipped + 1))
    fi
    return 1
}
# Ends the test: 1 when a check failed, 77 (skipped: ctest shows "Not Run") when
# nothing was checked because ../shared is absent, else 0.
finish() {
    [ "$failed" -eq 0 ] || exit 1
    [ "$shared_skipped" -gt 0 ] && [ "$passed" -eq 0 ] && exit 77
    exit 0
}
# The rest of the test needs ../shared: without it, the test ends here (finish).
need_shared() { have_shared "$1" || finish; }

# Writes OUT: mkmodel's tiny preset (Q8_0) with the vocabulary of the reference files,
# Phi-4's first 4096 tokens and its 96 special ones (tests/tiny_vocab.py): the shape,
# tokenizer and sizes of ../shared/reference/tiny-phi4-Q8_0.gguf, other random weights.
write_tiny() { # out
    python3 "$TESTS/tiny_vocab.py" "${VKPHI_TOKENIZER_GGUF:-$TESTS/../runtime/convert/phi4-tokenizer.gguf}" "$TMP/tiny-vocab.gguf" 2>"$TMP/err" &&
        "$VKPHI" mkmodel --preset tiny --type Q8_0 --tokenizer "$TMP/tiny-vocab.gguf" -o "$1" >/dev/null 2>>"$TMP/err"
}

# M: a small Phi-4-shaped model: the shared Q8_0 reference file, or one of its shape
# written here (write_tiny) when ../shared is absent; without python3 too, mkmodel's
# tiny preset with Phi-4's whole vocabulary (slower; tests that rely on the reference
# file's sizes need python3 anyway and check for it first).
pick_model() {
    if have_shared "the reference model tiny-phi4-Q8_0.gguf (one of its shape is written here instead)"; then
        M=$SHARED/reference/tiny-phi4-Q8_0.gguf
    else
        [ "$failed" -eq 0 ] || exit 1
        M=$TMP/tiny-Q8_0.gguf
        if command -v python3 >/dev/null; then
            write_tiny "$M" || { bad "writing a model of the reference file's shape: $(cat "$TMP/err")"; exit 1; }
        else
            echo "note: python3 is absent: mkmodel's tiny preset with Phi-4's whole vocabulary instead"
            "$VKPHI" mkmodel --preset tiny --type Q8_0 -o "$M" >/dev/null 2>"$TMP/err" || { bad "mkmodel: $(cat "$TMP/err")"; exit 1; }
        fi
    fi
    echo "model: $M"
}
