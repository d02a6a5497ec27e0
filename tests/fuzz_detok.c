// SPDX-License-Identifier: MIT
// libFuzzer target for the streaming detokenizer (run by tests/fuzz.sh). The input
// is read 3 bytes per step, b0 b1 b2, into token ids of every kind:
//   b0 & 3 = 0: the byte token of byte b1          (broken UTF-8 on purpose)
//            1: a special token, picked by b1 b2
//            2: any id in the vocabulary, (b0 >> 2, b2, b1) as a 22-bit number
//            3: b1 % 6 < 5: an id outside the vocabulary (negative, n_vocab, ...)
//               b1 % 6 = 5: tokenizer_stream_flush instead of an id
// What must hold: every chunk is NUL-terminated valid UTF-8; after each id the text
// given so far is the oracle's decoding of the bytes so far (an out-of-range id
// stands for U+FFFD), save one incomplete sequence held back; after a flush it is
// exactly the oracle's, and equals tokenizer_decode of the same ids.
#include "fuzz_common.h"

static int32_t byte_id[256];
static int32_t *specials;
static size_t n_specials;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_load_tokenizer();
    uint32_t n = tokenizer_n_vocab(fuzz_tok);
    for (int b = 0; b < 256; b++)
        byte_id[b] = -1;
    specials = malloc(n * sizeof *specials);
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const char *p = tokenizer_piece(fuzz_tok, (int32_t)i, &len);
        if (tokenizer_is_special(fuzz_tok, (int32_t)i))
            specials[n_specials++] = (int32_t)i;
        else if (len == 1 && byte_id[(uint8_t)p[0]] < 0)
            byte_id[(uint8_t)p[0]] = (int32_t)i;
    }
    for (int b = 0; b < 256; b++)
        FUZZ_CHECK(byte_id[b] >= 0, "the vocabulary has no token for byte %d", b);
    FUZZ_CHECK(n_specials > 0, "the vocabulary has no special tokens");
    return 0;
}

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

// The oracle's text for the segment's bytes must be what was given (have), or that
// plus one U+FFFD for an incomplete tail the stream still holds (when !flushed).
static void check_so_far(const bytes *in, const bytes *have, bool flushed) {
    size_t want_len;
    char *want = fuzz_utf8_replace(in->p, in->len, &want_len);
    bool same = have->len == want_len && !memcmp(have->p, want, want_len);
    bool held = !flushed && have->len + 3 == want_len && !memcmp(have->p, want, have->len) &&
                !memcmp(want + have->len, "\xEF\xBF\xBD", 3);
    FUZZ_CHECK(same || held, "streamed text (%zu bytes) differs from the oracle's (%zu bytes)%s", have->len, want_len,
               flushed ? " after a flush" : "");
    free(want);
}

static void check_chunk(const char *s, size_t len) {
    FUZZ_CHECK(s != NULL && s[len] == 0, "chunk is NULL or not NUL-terminated");
    FUZZ_CHECK(fuzz_utf8_valid(s, len), "chunk of %zu bytes is not valid UTF-8", len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint32_t n_vocab = tokenizer_n_vocab(fuzz_tok);
    const int32_t outside[5] = {-1, INT32_MIN, (int32_t)n_vocab, INT32_MAX, -(int32_t)n_vocab};
    tokenizer_stream *st = tokenizer_stream_create(fuzz_tok);
    FUZZ_CHECK(st != NULL, "stream create failed");
    // The segment since the last flush: bytes fed, text given (never NULL, for memcmp).
    bytes in = {malloc(64), 0, 64}, have = {malloc(64), 0, 64};
    int32_t *ids = malloc((size / 3 + 1) * sizeof *ids); // the segment's ids, for tokenizer_decode
    size_t n_ids = 0, steps = 0;
    for (size_t i = 0; i + 3 <= size + 3; i += 3) {
        bool end = i + 3 > size; // one flush after the last step
        bool flush = end;
        int32_t id = 0;
        if (!end) {
            uint8_t b0 = data[i], b1 = data[i + 1], b2 = data[i + 2];
            uint32_t v = (uint32_t)(b0 >> 2) << 16 | (uint32_t)b2 << 8 | b1;
            switch (b0 & 3) {
            case 0:
                id = byte_id[b1];
                break;
            case 1:
                id = specials[((uint32_t)b2 << 8 | b1) % n_specials];
                break;
            case 2:
                id = (int32_t)(v % n_vocab);
                break;
            default:
                if (b1 % 6 == 5)
                    flush = true;
                else
                    id = outside[b1 % 6];
            }
        }
        size_t len;
        const char *s;
        if (flush) {
            s = tokenizer_stream_flush(st, &len);
        } else {
            s = tokenizer_stream_put(st, id, &len);
            size_t pl;
            const char *p = tokenizer_piece(fuzz_tok, id, &pl);
            if (id < 0 || (uint32_t)id >= n_vocab) {
                FUZZ_CHECK(pl == 0, "an id outside the vocabulary has a piece");
                put(&in, "\xEF\xBF\xBD", 3);
            } else {
                put(&in, p, pl);
            }
            ids[n_ids++] = id;
        }
        check_chunk(s, len);
        put(&have, s, len);
        // The step-by-step check costs the whole segment each time: only early on.
        if (flush || steps++ < 64) check_so_far(&in, &have, flush);
        if (flush) {
            char *out = NULL;
            size_t out_len = 0;
            FUZZ_CHECK(tokenizer_decode(fuzz_tok, ids, n_ids, &out, &out_len) == VKPHI_OK, "decode failed");
            FUZZ_CHECK(out_len == have.len && !memcmp(out, have.p, out_len),
                       "tokenizer_decode differs from the streamed text");
            free(out);
            in.len = have.len = n_ids = 0;
        }
    }
    free(ids);
    free(in.p);
    free(have.p);
    tokenizer_stream_destroy(st);
    return 0;
}
