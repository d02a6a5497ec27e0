# SPDX-License-Identifier: MIT
# Shared by the tests/cli_*.sh tests: the binary, a temporary directory removed at
# exit, and the checks. Source it first; `failed` is 1 once a check failed.
VKPHI=${VKPHI:?set VKPHI to the vkphi binary}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failed=0
export LC_ALL=C # byte-wise string handling

ok() { echo "ok   $1"; }
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

# M: a small Phi-4-shaped model: the shared Q8_0 reference file, or one written here.
pick_model() {
    M="${VKPHI_SHARED_DIR:-/nonexistent}/reference/tiny-phi4-Q8_0.gguf"
    if [ ! -r "$M" ]; then
        M="$TMP/tiny-Q8_0.gguf"
        "$VKPHI" mkmodel --preset tiny --type Q8_0 -o "$M" >/dev/null 2>"$TMP/err" || { bad "mkmodel: $(cat "$TMP/err")"; exit 1; }
    fi
    echo "model: $M"
}
