// SPDX-License-Identifier: MIT
// libFuzzer target for tokenizer_encode and tokenizer_decode (run by tests/fuzz.sh):
// the input is the text, any bytes, encoded with and without special-token parsing.
// What must hold, for every input:
// - encoding never fails, and every id is in the vocabulary;
// - the pieces of the ids, joined, are the input bytes exactly (specials give their
//   text), so nothing is lost or invented;
// - without special parsing no id is a special token, so marker text in user input
//   stays text; with it, an input holding no special text encodes as without;
// - tokenizer_decode gives valid UTF-8, equal to the input when the input is valid
//   UTF-8, and otherwise to the input with U+FFFD per maximal ill-formed subpart;
// - encoding appends to an array already holding ids and leaves those alone.
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_load_tokenizer();
    return 0;
}

// Joins the pieces of ids[0..n) and compares them with text[0..len).
static bool pieces_equal(const int32_t *ids, size_t n, const uint8_t *text, size_t len) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = tokenizer_piece(fuzz_tok, ids[i], &pl);
        if (pl == 0 || pl > len - at || memcmp(p, text + at, pl) != 0) return false;
        at += pl;
    }
    return at == len;
}

static void check_decode(const int32_t *ids, size_t n, const uint8_t *text, size_t len, bool valid) {
    char *out = NULL;
    size_t out_len = 0;
    FUZZ_CHECK(tokenizer_decode(fuzz_tok, ids, n, &out, &out_len) == VKPHI_OK, "decode failed: %s", vkphi_last_error());
    FUZZ_CHECK(out[out_len] == 0, "decoded text is not NUL-terminated");
    FUZZ_CHECK(fuzz_utf8_valid(out, out_len), "decoded text is not valid UTF-8");
    if (valid) FUZZ_CHECK(out_len == len && !memcmp(out, text, len), "decode(encode(text)) != text");
    size_t want_len;
    char *want = fuzz_utf8_replace(text, len, &want_len);
    FUZZ_CHECK(out_len == want_len && !memcmp(out, want, want_len),
               "decoded text differs from the input with U+FFFD for its ill-formed bytes");
    free(want);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const uint32_t n_vocab = tokenizer_n_vocab(fuzz_tok);
    const bool valid = fuzz_utf8_valid(data, size);

    int32_t *plain = NULL;
    size_t n_plain = 0;
    FUZZ_CHECK(tokenizer_encode(fuzz_tok, text, size, false, &plain, &n_plain) == VKPHI_OK, "encode failed: %s",
               vkphi_last_error());
    FUZZ_CHECK((n_plain == 0) == (size == 0), "%zu bytes gave %zu ids", size, n_plain);
    for (size_t i = 0; i < n_plain; i++) {
        FUZZ_CHECK(plain[i] >= 0 && (uint32_t)plain[i] < n_vocab, "id %d out of range", plain[i]);
        FUZZ_CHECK(!tokenizer_is_special(fuzz_tok, plain[i]), "plain text gave special id %d", plain[i]);
    }
    FUZZ_CHECK(pieces_equal(plain, n_plain, data, size), "pieces of the plain encoding != input");
    check_decode(plain, n_plain, data, size, valid);

    // With special parsing, appended after a sentinel id that must survive.
    int32_t *spec = malloc(sizeof *spec);
    spec[0] = 7;
    size_t n_spec = 1;
    FUZZ_CHECK(tokenizer_encode(fuzz_tok, text, size, true, &spec, &n_spec) == VKPHI_OK, "encode failed: %s",
               vkphi_last_error());
    FUZZ_CHECK(n_spec >= 1 && spec[0] == 7, "encode overwrote the ids it appends to");
    bool any_special = false;
    for (size_t i = 1; i < n_spec; i++) {
        FUZZ_CHECK(spec[i] >= 0 && (uint32_t)spec[i] < n_vocab, "id %d out of range", spec[i]);
        any_special |= tokenizer_is_special(fuzz_tok, spec[i]);
    }
    FUZZ_CHECK(pieces_equal(spec + 1, n_spec - 1, data, size), "pieces of the special encoding != input");
    if (!any_special)
        FUZZ_CHECK(n_spec - 1 == n_plain && (!n_plain || !memcmp(spec + 1, plain, n_plain * sizeof *plain)),
                   "text without special tokens encodes differently with parse_special");
    check_decode(spec + 1, n_spec - 1, data, size, valid);
    free(spec);
    free(plain);
    return 0;
}
