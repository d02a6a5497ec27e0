// SPDX-License-Identifier: MIT
// The tokenizer against ids from OpenAI's tiktoken (tests/data/phi4-tokenizer-cases.jsonl,
// cl100k; ../shared/phi4-mini-tokenizer-cases.jsonl, o200k), round trips, special tokens,
// invalid bytes, and the streaming detokenizer.
#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---- a small reader for the case file: one JSON object per line ----

typedef struct {
    char *text;
    size_t text_len;
    bool special;
    int32_t *ids;
    size_t n_ids;
} tok_case;

static void skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
        (*p)++;
}

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | cp >> 6);
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | cp >> 12);
        out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | cp >> 18);
        out[(*o)++] = (char)(0x80 | (cp >> 12 & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static bool hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

// Parses a JSON string at *p (which points at the opening quote) into a malloc'd buffer.
static bool parse_string(const char **p, char **out, size_t *out_len) {
    if (**p != '"') return false;
    const char *s = ++*p;
    char *buf = malloc(4 * strlen(s) + 1);
    size_t o = 0;
    while (*s && *s != '"') {
        if (*s != '\\') {
            buf[o++] = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'n':
            buf[o++] = '\n';
            s++;
            break;
        case 't':
            buf[o++] = '\t';
            s++;
            break;
        case 'r':
            buf[o++] = '\r';
            s++;
            break;
        case 'b':
            buf[o++] = '\b';
            s++;
            break;
        case 'f':
            buf[o++] = '\f';
            s++;
            break;
        case '/':
        case '\\':
        case '"':
            buf[o++] = *s++;
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(s + 1, &cp)) {
                free(buf);
                return false;
            }
            s += 5;
            if (cp >= 0xD800 && cp < 0xDC00 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo) && lo >= 0xDC00 &&
                lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            put_utf8(buf, &o, cp);
            break;
        }
        default:
            free(buf);
            return false;
        }
    }
    if (*s != '"') {
        free(buf);
        return false;
    }
    *p = s + 1;
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return true;
}

static bool parse_case(const char *line, tok_case *c) {
    memset(c, 0, sizeof *c);
    const char *p = line;
    skip_ws(&p);
    if (*p++ != '{') return false;
    bool have_text = false, have_ids = false;
    for (;;) {
        skip_ws(&p);
        char *key;
        size_t key_len;
        if (!parse_string(&p, &key, &key_len)) return false;
        skip_ws(&p);
        if (*p++ != ':') {
            free(key);
            return false;
        }
        skip_ws(&p);
        bool ok = true;
        if (!strcmp(key, "text")) {
            ok = parse_string(&p, &c->text, &c->text_len);
            have_text = ok;
        } else if (!strcmp(key, "special")) {
            if (!strncmp(p, "true", 4)) {
                c->special = true;
                p += 4;
            } else if (!strncmp(p, "false", 5)) {
                c->special = false;
                p += 5;
            } else
                ok = false;
        } else if (!strcmp(key, "ids")) {
            ok = *p++ == '[';
            size_t cap = 16;
            c->ids = malloc(cap * sizeof *c->ids);
            skip_ws(&p);
            if (*p == ']')
                p++;
            else
                while (ok) {
                    char *end;
                    long v = strtol(p, &end, 10);
                    if (end == p) {
                        ok = false;
                        break;
                    }
                    if (c->n_ids == cap) c->ids = realloc(c->ids, (cap *= 2) * sizeof *c->ids);
                    c->ids[c->n_ids++] = (int32_t)v;
                    p = end;
                    skip_ws(&p);
                    if (*p == ',') {
                        p++;
                        skip_ws(&p);
                        continue;
                    }
                    ok = *p++ == ']';
                    break;
                }
            have_ids = ok;
        } else {
            ok = false;
        }
        free(key);
        if (!ok) return false;
        skip_ws(&p);
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '}' && have_text && have_ids;
    }
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s [", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? "," : "", ids[i]);
    fprintf(stderr, "]\n");
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static bool valid_utf8(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t len = b < 0x80                 ? 1
                     : b >= 0xC2 && b <= 0xDF ? 2
                     : b >= 0xE0 && b <= 0xEF ? 3
                     : b >= 0xF0 && b <= 0xF4 ? 4
                                              : 0;
        if (!len || i + len > n) return false;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
        for (size_t k = 1; k < len; k++) {
            if (p[i + k] < (k == 1 ? lo : 0x80) || p[i + k] > (k == 1 ? hi : 0xBF)) return false;
        }
        i += len;
    }
    return true;
}

// Encodes and returns the ids (malloc'd) or NULL with *n = 0 on failure.
static int32_t *enc(const tokenizer *t, const char *s, size_t len, bool special, size_t *n) {
    int32_t *ids = NULL;
    *n = 0;
    int err = tokenizer_encode(t, s, len, special, &ids, n);
    CHECK(err == VKPHI_OK, "encode failed: %s", vkphi_last_error());
    return ids;
}

// The concatenated raw bytes of the ids' pieces equal s[0..len).
static bool pieces_equal(const tokenizer *t, const int32_t *ids, size_t n, const char *s, size_t len) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = tokenizer_piece(t, ids[i], &pl);
        if (at + pl > len || memcmp(s + at, p, pl) != 0) return false;
        at += pl;
    }
    return at == len;
}

static int32_t byte_id(const tokenizer *t, uint8_t b) {
    char s[2] = {(char)b, 0};
    return tokenizer_token_id(t, s);
}

// ---- the tests ----

static void test_cases(const tokenizer *t, const char *path) {
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL, "cannot open %s", path);
    if (!fp) return;
    char *line = NULL;
    size_t cap = 0;
    int n_cases = 0, n_ok = 0, n_round = 0;
    while (getline(&line, &cap, fp) > 0) {
        if (line[0] == '\n') continue;
        tok_case c;
        bool parsed = parse_case(line, &c);
        CHECK(parsed, "case file line %d does not parse", n_cases + 1);
        if (!parsed) {
            free(c.text);
            free(c.ids);
            continue;
        }
        n_cases++;
        size_t n;
        int32_t *ids = enc(t, c.text, c.text_len, c.special, &n);
        bool ok = same_ids(ids, n, c.ids, c.n_ids);
        CHECK(ok, "case %d: ids differ from tiktoken's", n_cases);
        if (!ok) {
            fprintf(stderr, "  text %.*s (special %d)\n", (int)c.text_len, c.text, c.special);
            print_ids("want", c.ids, c.n_ids);
            print_ids("got ", ids, n);
        }
        n_ok += ok;
        char *back = NULL;
        size_t back_len = 0;
        CHECK(tokenizer_decode(t, ids, n, &back, &back_len) == VKPHI_OK, "decode failed");
        bool round = back && back_len == c.text_len && memcmp(back, c.text, back_len) == 0;
        CHECK(round, "case %d: decode(encode(text)) differs from text", n_cases);
        n_round += round;
        free(back);
        free(ids);
        free(c.text);
        free(c.ids);
    }
    free(line);
    fclose(fp);
    CHECK(n_cases >= 60, "only %d cases read", n_cases);
    printf("tiktoken cases: %d of %d match, %d round-trip\n", n_ok, n_cases, n_round);
}

static void test_queries(const tokenizer *t) {
    uint32_t nv = tokenizer_n_vocab(t);
    CHECK(nv == 100352, "n_vocab %u", nv);
    CHECK(tokenizer_bos(t) == 100257, "bos %d", tokenizer_bos(t));
    CHECK(tokenizer_eos(t) == 100265, "eos %d", tokenizer_eos(t));
    CHECK(tokenizer_token_id(t, "<|im_start|>") == 100264, "im_start");
    CHECK(tokenizer_token_id(t, "<|im_end|>") == 100265, "im_end");
    CHECK(tokenizer_token_id(t, "<|im_sep|>") == 100266, "im_sep");
    CHECK(tokenizer_token_id(t, "<|endoftext|>") == 100257, "endoftext");
    CHECK(tokenizer_token_id(t, " Hello") == 22691, "' Hello' is %d", tokenizer_token_id(t, " Hello"));
    CHECK(tokenizer_token_id(t, "no such token at all, surely") == -1, "unknown text");
    CHECK(tokenizer_is_eog(t, 100265) && tokenizer_is_eog(t, 100257), "im_end and endoftext end generation");
    CHECK(!tokenizer_is_eog(t, 100264) && !tokenizer_is_eog(t, 9906), "im_start, Hello do not");
    CHECK(!tokenizer_is_eog(t, -1) && !tokenizer_is_eog(t, (int32_t)nv), "out-of-range ids do not");
    CHECK(tokenizer_is_special(t, 100264) && !tokenizer_is_special(t, 9906) && !tokenizer_is_special(t, -3),
          "is_special");
    size_t len;
    const char *p = tokenizer_piece(t, 22691, &len);
    CHECK(len == 6 && !memcmp(p, " Hello", 6), "piece 22691 is ' Hello'");
    p = tokenizer_piece(t, 100264, &len);
    CHECK(len == 12 && !memcmp(p, "<|im_start|>", 12), "piece of <|im_start|>");
    p = tokenizer_piece(t, 198, &len);
    CHECK(len == 1 && p[0] == '\n', "piece 198 is a newline");
    p = tokenizer_piece(t, -1, &len);
    CHECK(p && len == 0, "piece of -1 is empty");
    p = tokenizer_piece(t, (int32_t)nv, &len);
    CHECK(p && len == 0, "piece of n_vocab is empty");
    for (int b = 0; b < 256; b++) {
        int32_t id = byte_id(t, (uint8_t)b);
        if (b == 0) continue; // "" is no token
        p = tokenizer_piece(t, id, &len);
        CHECK(id >= 0 && len == 1 && (uint8_t)p[0] == b, "byte 0x%02X has a one-byte token", b);
    }
}

static void test_special(const tokenizer *t) {
    const char *s = "<|im_start|>user<|im_sep|>hi<|im_end|>";
    size_t n;
    int32_t *ids = enc(t, s, strlen(s), true, &n);
    int32_t want[] = {100264, 882, 100266, 6151, 100265};
    CHECK(same_ids(ids, n, want, 5), "special parsing on");
    if (!same_ids(ids, n, want, 5)) print_ids("got", ids, n);
    free(ids);

    ids = enc(t, s, strlen(s), false, &n);
    bool none = true;
    for (size_t i = 0; i < n; i++)
        none &= !tokenizer_is_special(t, ids[i]);
    CHECK(none && n > 5, "special parsing off: markers are plain text (%zu ids)", n);
    CHECK(pieces_equal(t, ids, n, s, strlen(s)), "special parsing off: round trip");
    free(ids);

    // "<|im_start" is not a special token; the longest complete one wins.
    s = "<|im_start<|endoftext|>|>";
    ids = enc(t, s, strlen(s), true, &n);
    size_t n_special = 0;
    for (size_t i = 0; i < n; i++)
        n_special += tokenizer_is_special(t, ids[i]);
    CHECK(n_special == 1 && pieces_equal(t, ids, n, s, strlen(s)), "partial marker then a marker");
    free(ids);
}

static void test_invalid_bytes(const tokenizer *t) {
    const char s[] = "abc\xff\xfe"
                     "def \xe4\xbd \xc3( caf\xc3\xa9\x80\x80\xed\xa0\x80 \xf4\x90\x80\x80!";
    size_t len = sizeof s - 1, n;
    int32_t *ids = enc(t, s, len, false, &n);
    bool in_range = true;
    for (size_t i = 0; i < n; i++)
        in_range &= ids[i] >= 0 && (uint32_t)ids[i] < tokenizer_n_vocab(t);
    CHECK(in_range && n > 0, "invalid UTF-8 gives in-range ids");
    CHECK(pieces_equal(t, ids, n, s, len), "invalid UTF-8: the pieces give back the exact bytes");
    char *out = NULL;
    size_t out_len = 0;
    CHECK(tokenizer_decode(t, ids, n, &out, &out_len) == VKPHI_OK, "decode");
    CHECK(out && valid_utf8(out, out_len) && strlen(out) == out_len, "decode of invalid bytes is valid UTF-8");
    // Python: bytes.decode("utf-8", "replace") gives one U+FFFD per maximal ill-formed subpart.
    const char want[] = "abc\xef\xbf\xbd\xef\xbf\xbd"
                        "def \xef\xbf\xbd \xef\xbf\xbd( caf\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!";
    CHECK(out && out_len == sizeof want - 1 && !memcmp(out, want, out_len), "U+FFFD placement: got '%s'",
          out ? out : "");
    free(out);
    free(ids);

    // The same rule for any bytes, and a cut character at the end is one U+FFFD.
    out = NULL;
    CHECK(tokenizer_utf8_repair(s, len, &out, &out_len) == VKPHI_OK && out_len == sizeof want - 1 &&
              !memcmp(out, want, out_len),
          "tokenizer_utf8_repair gives the decoder's U+FFFD placement");
    free(out);
    out = NULL;
    CHECK(tokenizer_utf8_repair("caf\xc3\xa9 \xf0\x9f\x99", 9, &out, &out_len) == VKPHI_OK && out_len == 9 &&
              !strcmp(out, "caf\xc3\xa9 \xef\xbf\xbd"),
          "tokenizer_utf8_repair: a cut emoji becomes one U+FFFD");
    free(out);
    out = NULL;
    CHECK(tokenizer_utf8_repair("", 0, &out, &out_len) == VKPHI_OK && out_len == 0 && out && !out[0],
          "tokenizer_utf8_repair of nothing is an empty string");
    free(out);

    ids = enc(t, "\xff", 1, false, &n);
    CHECK(n == 1 && ids[0] == byte_id(t, 0xff), "a lone 0xFF is its byte token");
    free(ids);

    // NUL bytes are text like any other.
    const char z[] = "a\0b\0\0c";
    ids = enc(t, z, sizeof z - 1, false, &n);
    CHECK(pieces_equal(t, ids, n, z, sizeof z - 1), "NUL bytes round-trip");
    free(ids);

    // Random byte strings, some of them UTF-8-ish, always round-trip through the pieces.
    test_seed(7);
    bool all = true;
    char buf[300];
    for (int k = 0; k < 2000; k++) {
        size_t l = test_rand_u32() % sizeof buf;
        for (size_t i = 0; i < l; i++) {
            uint32_t r = test_rand_u32();
            buf[i] = (char)(r % 4 == 0   ? r >> 8
                            : r % 4 == 1 ? ' ' + (r >> 8) % 95
                            : r % 4 == 2 ? 0x80 + (r >> 8) % 64
                                         : 0xC0 + (r >> 8) % 64);
        }
        ids = enc(t, buf, l, k % 2, &n);
        all &= pieces_equal(t, ids, n, buf, l);
        free(ids);
    }
    CHECK(all, "random bytes round-trip");
}

// Collects what the stream gives for each id; checks each chunk is valid UTF-8.
static char *stream_all(tokenizer_stream *st, const int32_t *ids, size_t n, int *n_empty) {
    static char acc[4096];
    size_t at = 0;
    *n_empty = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t len;
        const char *s = i < n ? tokenizer_stream_put(st, ids[i], &len) : tokenizer_stream_flush(st, &len);
        CHECK(valid_utf8(s, len) && strlen(s) == len, "stream chunk %zu is valid UTF-8", i);
        if (i < n && len == 0) (*n_empty)++;
        if (at + len < sizeof acc) {
            memcpy(acc + at, s, len);
            at += len;
        }
    }
    acc[at] = 0;
    return acc;
}

static void test_stream(const tokenizer *t) {
    tokenizer_stream *st = tokenizer_stream_create(t);
    CHECK(st != NULL, "stream create");
    if (!st) return;
    size_t len;
    // 🙂 = F0 9F 99 82 fed one byte token at a time: held back, then whole.
    const uint8_t smile[4] = {0xF0, 0x9F, 0x99, 0x82};
    for (int i = 0; i < 3; i++) {
        const char *s = tokenizer_stream_put(st, byte_id(t, smile[i]), &len);
        CHECK(len == 0 && s[0] == 0, "byte %d of the emoji is held back", i);
    }
    const char *s = tokenizer_stream_put(st, byte_id(t, smile[3]), &len);
    CHECK(len == 4 && !memcmp(s, smile, 4), "the emoji comes out whole");

    // Real ids from tiktoken in which emoji span tokens.
    const char *text =
        "\xf0\x9f\x99\x82\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd emoji \xf0\x9f\x9a\x80\xf0\x9f\x9a\x80";
    size_t n;
    int32_t *ids = enc(t, text, strlen(text), false, &n);
    int n_empty;
    char *got = stream_all(st, ids, n, &n_empty);
    CHECK(!strcmp(got, text), "streamed emoji text equals the input");
    CHECK(n_empty > 0, "some emoji bytes were held back (%d)", n_empty);
    free(ids);

    // A stray continuation, an invalid lead byte: U+FFFD at once, and text goes on.
    s = tokenizer_stream_put(st, byte_id(t, 0x80), &len);
    CHECK(len == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "stray continuation gives U+FFFD");
    s = tokenizer_stream_put(st, byte_id(t, 0xFF), &len);
    CHECK(len == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "0xFF gives U+FFFD");
    s = tokenizer_stream_put(st, tokenizer_token_id(t, "ok"), &len);
    CHECK(len == 2 && !memcmp(s, "ok", 2), "text goes on after U+FFFD");
    // A partial sequence broken by ASCII.
    s = tokenizer_stream_put(st, byte_id(t, 0xE4), &len);
    CHECK(len == 0, "lead byte held");
    s = tokenizer_stream_put(st, tokenizer_token_id(t, "a"), &len);
    CHECK(len == 4 && !memcmp(s,
                              "\xef\xbf\xbd"
                              "a",
                              4),
          "broken partial gives U+FFFD then the text");
    // A continuation that does not fit the lead (E0 needs A0..BF next).
    tokenizer_stream_put(st, byte_id(t, 0xE0), &len);
    s = tokenizer_stream_put(st, byte_id(t, 0x80), &len);
    CHECK(len == 6 && !memcmp(s, "\xef\xbf\xbd\xef\xbf\xbd", 6), "overlong E0 80 gives two U+FFFD");
    // An incomplete tail at the end.
    tokenizer_stream_put(st, byte_id(t, 0xF0), &len);
    s = tokenizer_stream_put(st, byte_id(t, 0x9F), &len);
    CHECK(len == 0, "partial held");
    s = tokenizer_stream_flush(st, &len);
    CHECK(len == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "flush turns the tail into U+FFFD");
    s = tokenizer_stream_flush(st, &len);
    CHECK(len == 0, "a second flush gives nothing");
    // Ids outside the vocabulary.
    s = tokenizer_stream_put(st, -7, &len);
    CHECK(len == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "id -7 gives U+FFFD");
    s = tokenizer_stream_put(st, (int32_t)tokenizer_n_vocab(t), &len);
    CHECK(len == 3 && !memcmp(s, "\xef\xbf\xbd", 3), "id n_vocab gives U+FFFD");
    // Special tokens come out as their text.
    s = tokenizer_stream_put(st, 100265, &len);
    CHECK(len == 10 && !memcmp(s, "<|im_end|>", 10), "special token text");
    tokenizer_stream_destroy(st);

    int32_t bad[] = {9906, -1, 1917, 1 << 30};
    char *out;
    CHECK(tokenizer_decode(t, bad, 4, &out, &len) == VKPHI_OK, "decode with bad ids");
    CHECK(!strcmp(out, "Hello\xef\xbf\xbd world\xef\xbf\xbd"), "bad ids decode as U+FFFD: '%s'", out);
    free(out);
}

// Pseudo-English text of about `size` bytes, varied enough that no cache could help.
static char *english(size_t size) {
    static const char *words[] = {"the",
                                  "of",
                                  "and",
                                  "to",
                                  "in",
                                  "a",
                                  "is",
                                  "that",
                                  "for",
                                  "it",
                                  "as",
                                  "was",
                                  "with",
                                  "be",
                                  "by",
                                  "on",
                                  "not",
                                  "he",
                                  "I",
                                  "this",
                                  "are",
                                  "or",
                                  "his",
                                  "from",
                                  "at",
                                  "which",
                                  "but",
                                  "have",
                                  "an",
                                  "had",
                                  "they",
                                  "you",
                                  "were",
                                  "their",
                                  "one",
                                  "all",
                                  "we",
                                  "can",
                                  "her",
                                  "has",
                                  "there",
                                  "been",
                                  "if",
                                  "more",
                                  "when",
                                  "will",
                                  "would",
                                  "who",
                                  "so",
                                  "no",
                                  "government",
                                  "tokenizer",
                                  "international",
                                  "understanding",
                                  "Phi",
                                  "model",
                                  "people",
                                  "development",
                                  "questions",
                                  "answered",
                                  "quickly",
                                  "runtime",
                                  "Vulkan",
                                  "GPU",
                                  "don't",
                                  "it's",
                                  "we'll",
                                  "1984",
                                  "3.14",
                                  "London",
                                  "Paris",
                                  "September",
                                  "extraordinary",
                                  "implementation"};
    static const char *punct[] = {" ",   " ",  " ",  " ",  " ",  " ",  ", ",   ". ",
                                  ".\n", "; ", " (", ") ", "! ", "? ", ":\n\n"};
    char *s = malloc(size + 64);
    size_t at = 0;
    test_seed(42);
    while (at < size) {
        const char *w = words[test_rand_u32() % (sizeof words / sizeof *words)];
        const char *p = punct[test_rand_u32() % (sizeof punct / sizeof *punct)];
        at += (size_t)sprintf(s + at, "%s%s", w, p);
    }
    s[at] = 0;
    return s;
}

static double english_speed; // MB/s of the cl100k tokenizer on english(4 MB), for the o200k one to compare

static void test_speed(const tokenizer *t) {
    size_t size = 4 << 20;
    char *s = english(size);
    size_t len = strlen(s), n;
    double t0 = vkphi_now();
    int32_t *ids = enc(t, s, len, false, &n);
    double dt = vkphi_now() - t0;
    english_speed = len / 1e6 / dt;
    printf("encode: %.2f MB of English-like text in %.3f s: %.1f MB/s, %.2f bytes/token\n", len / 1e6, dt,
           len / 1e6 / dt, (double)len / (double)n);
    CHECK(pieces_equal(t, ids, n, s, len), "long text round-trips");
    // Made-up words from random syllables: most are not whole tokens, so the merges run.
    static const char *syl[] = {"ka", "tion", "pre", "ul", "mor",  "ex",  "qua",
                                "ni", "zed",  "ble", "st", "ough", "ing", "ve"};
    char *w = malloc(size + 64);
    size_t wl = 0;
    while (wl < size) {
        size_t k = 1 + test_rand_u32() % 5;
        for (size_t i = 0; i < k; i++)
            wl += (size_t)sprintf(w + wl, "%s", syl[test_rand_u32() % (sizeof syl / sizeof *syl)]);
        w[wl++] = test_rand_u32() % 8 ? ' ' : '\n';
    }
    int32_t *wids = NULL;
    size_t wn = 0;
    t0 = vkphi_now();
    CHECK(tokenizer_encode(t, w, wl, false, &wids, &wn) == VKPHI_OK, "encode made-up words");
    dt = vkphi_now() - t0;
    printf("encode: %.2f MB of made-up words in %.3f s: %.1f MB/s, %.2f bytes/token\n", wl / 1e6, dt, wl / 1e6 / dt,
           (double)wl / (double)wn);
    CHECK(pieces_equal(t, wids, wn, w, wl), "made-up words round-trip");
    free(wids);
    free(w);
    t0 = vkphi_now();
    char *out;
    size_t out_len;
    CHECK(tokenizer_decode(t, ids, n, &out, &out_len) == VKPHI_OK, "decode");
    dt = vkphi_now() - t0;
    printf("decode: %.1f MB/s\n", len / 1e6 / dt);
    CHECK(out_len == len && !memcmp(out, s, len), "decode of long text");
    free(out);
    free(ids);

    // Worst cases: one 1 MB word (a single piece for the merges), 1 MB of spaces,
    // 1 MB of digits, 1 MB of random bytes.
    for (int k = 0; k < 4; k++) {
        static const char *what[] = {"one 1 MB word", "1 MB of spaces", "1 MB of digits", "1 MB of random bytes"};
        size_t m = 1 << 20;
        test_seed(9);
        for (size_t i = 0; i < m; i++)
            s[i] = k == 0   ? (char)('a' + test_rand_u32() % 26)
                   : k == 1 ? ' '
                   : k == 2 ? (char)('0' + i % 10)
                            : (char)test_rand_u32();
        t0 = vkphi_now();
        ids = enc(t, s, m, false, &n);
        dt = vkphi_now() - t0;
        printf("encode %s: %.3f s (%zu ids)\n", what[k], dt, n);
        CHECK(n > 0 && pieces_equal(t, ids, n, s, m), "%s round-trips", what[k]);
        free(ids);
    }
    free(s);
}

// ---- small vocabularies written by the test, for the error paths ----

typedef struct {
    const char *model, *pre; // pre NULL: key absent
    bool no_merges, short_types, drop_byte0;
    const char *extra_merge; // appended to the merges
    uint32_t eos;
} vocab_opts;

// GPT-2's printable form of byte b, as UTF-8 (the converter's mapping, written out here
// independently of the tokenizer's own table).
static size_t mapped_byte(int b, char *out) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    int cp = b;
    if (!printable) {
        cp = 256;
        for (int k = 0; k < b; k++)
            cp += !((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE);
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

// 256 byte tokens, "ab" (256), "abab" (257), <|endoftext|> (258), <|im_end|> (259).
static tokenizer *small_tokenizer(const char *path, vocab_opts o) {
    enum { N = 260 };
    char bytes[256][2];
    const char *strs[N];
    uint64_t lens[N];
    int32_t types[N];
    for (int b = 0; b < 256; b++) {
        lens[b] = mapped_byte(b, bytes[b]);
        strs[b] = bytes[b];
        types[b] = 1;
    }
    if (o.drop_byte0) {
        strs[0] = "xyz";
        lens[0] = 3;
    }
    const char *more[4] = {"ab", "abab", "<|endoftext|>", "<|im_end|>"};
    for (int i = 0; i < 4; i++) {
        strs[256 + i] = more[i];
        lens[256 + i] = strlen(more[i]);
        types[256 + i] = i < 2 ? 1 : 3;
    }
    const char *merges[3] = {"a b", "ab ab", o.extra_merge};
    uint64_t merge_lens[3] = {3, 5, o.extra_merge ? strlen(o.extra_merge) : 0};
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "phi3");
    gguf_writer_set_str(w, "tokenizer.ggml.model", o.model ? o.model : "gpt2");
    if (o.pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", o.pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, N);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, o.short_types ? N - 1 : N);
    if (!o.no_merges) gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, merge_lens, o.extra_merge ? 3 : 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 258);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", o.eos ? o.eos : 258);
    int err = gguf_writer_begin(w, path);
    if (!err) err = gguf_writer_finish(w);
    gguf_writer_free(w);
    CHECK(!err, "writing %s: %s", path, vkphi_last_error());
    gguf_file *f = err ? NULL : gguf_open(path);
    CHECK(err || f, "gguf_open %s: %s", path, vkphi_last_error());
    tokenizer *t = f ? tokenizer_create(f) : NULL;
    gguf_close(f);
    remove(path);
    return t;
}

static void test_small_vocab(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/vkphi-test-tokenizer-%d.gguf", (int)getpid());
    vkphi_set_log_level(VKPHI_LOG_ERROR); // the missing-pre case warns

    tokenizer *t = small_tokenizer(path, (vocab_opts){.pre = "dbrx"});
    CHECK(t != NULL, "small vocabulary: %s", vkphi_last_error());
    if (t) {
        size_t n;
        int32_t *ids = enc(t, "ababab", 6, false, &n);
        const int32_t want[] = {257, 256};
        CHECK(same_ids(ids, n, want, 2), "merges by rank, leftmost first: ababab -> abab ab");
        free(ids);
        ids = enc(t, "ba<|im_end|>", 12, true, &n);
        const int32_t want2[] = {'b', 'a', 259}; // token b is byte b here
        CHECK(same_ids(ids, n, want2, 3), "bytes, then a special token");
        free(ids);
        CHECK(tokenizer_n_vocab(t) == 260 && tokenizer_eos(t) == 258, "n_vocab, eos");
        CHECK(tokenizer_is_eog(t, 258) && tokenizer_is_eog(t, 259) && !tokenizer_is_eog(t, 256), "eog by text");
        tokenizer_destroy(t);
    }
    t = small_tokenizer(path, (vocab_opts){0});
    CHECK(t != NULL, "no tokenizer.ggml.pre: assumed cl100k (%s)", vkphi_last_error());
    tokenizer_destroy(t);

    struct {
        vocab_opts o;
        const char *msg;
    } bad[] = {
        {{.pre = "dbrx", .model = "llama"}, "'llama'"},     {{.pre = "qwen2"}, "tokenizer.ggml.pre = 'qwen2'"},
        {{.pre = "dbrx", .no_merges = true}, "merges"},     {{.pre = "dbrx", .extra_merge = "a q"}, "merge 2"},
        {{.pre = "dbrx", .extra_merge = "abq"}, "merge 2"}, {{.pre = "dbrx", .eos = 9999}, "eos_token_id"},
        {{.pre = "dbrx", .drop_byte0 = true}, "byte 0x00"}, {{.pre = "dbrx", .short_types = true}, "token_type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = small_tokenizer(path, bad[i].o);
        CHECK(!t && strstr(vkphi_last_error(), bad[i].msg), "bad vocabulary %zu refused naming %s: %s", i, bad[i].msg,
              vkphi_last_error());
        tokenizer_destroy(t);
    }
    vkphi_set_log_level(VKPHI_LOG_WARN);
}

// ---- Phi-4-mini: o200k (tokenizer.ggml.pre = "gpt-4o") and its specials ----

static void test_mini(void) {
    const char *shared = test_shared_dir("Phi-4-mini's o200k tokenizer and its cases (phi4-mini-tokenizer*)");
    if (!shared) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/phi4-mini-tokenizer.gguf", shared);
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "gguf_open %s: %s", path, vkphi_last_error());
    if (!f) return;
    double t0 = vkphi_now();
    tokenizer *t = tokenizer_create(f);
    printf("phi4-mini tokenizer_create: %.1f ms\n", (vkphi_now() - t0) * 1e3);
    CHECK(t != NULL, "tokenizer_create (mini): %s", vkphi_last_error());
    gguf_close(f);
    if (!t) return;

    CHECK(tokenizer_n_vocab(t) == 200064, "mini n_vocab %u", tokenizer_n_vocab(t));
    CHECK(tokenizer_bos(t) == 199999 && tokenizer_eos(t) == 199999, "mini bos %d eos %d", tokenizer_bos(t),
          tokenizer_eos(t));
    static const char *names[] = {"<|endofprompt|>", "<|assistant|>",     "<|end|>",   "<|user|>",
                                  "<|system|>",      "<|tool|>",          "<|/tool|>", "<|tool_call|>",
                                  "<|/tool_call|>",  "<|tool_response|>", "<|tag|>"};
    for (int i = 0; i < 11; i++) {
        int32_t id = tokenizer_token_id(t, names[i]);
        CHECK(id == 200018 + i && tokenizer_is_special(t, id), "%s is special id %d", names[i], id);
    }
    CHECK(tokenizer_is_eog(t, 200020) && tokenizer_is_eog(t, 199999), "<|end|> and <|endoftext|> end generation");
    CHECK(!tokenizer_is_eog(t, 200019) && !tokenizer_is_eog(t, 200025), "<|assistant|>, <|tool_call|> do not");
    CHECK(tokenizer_is_markup(t, 200025) && tokenizer_is_markup(t, 200026) && !tokenizer_is_markup(t, 200020) &&
              !tokenizer_is_markup(t, 13225),
          "tool-call markers are markup, <|end|> and words are not");

    snprintf(path, sizeof path, "%s/phi4-mini-tokenizer-cases.jsonl", shared);
    test_cases(t, path);

    // Splits where o200k differs from cl100k, checked by the pieces (not tiktoken's ids,
    // which the case file covers): case runs, attached contractions, "/" after punctuation.
    struct {
        const char *text;
        int n_ids; // every piece here is one token of o200k
    } pieces[] = {{"HelloWorld", 2}, {"don't", 1}, {"DON'T", 2}, {" 12345", 3}};
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        size_t n;
        int32_t *ids = enc(t, pieces[i].text, strlen(pieces[i].text), false, &n);
        CHECK((int)n == pieces[i].n_ids && pieces_equal(t, ids, n, pieces[i].text, strlen(pieces[i].text)),
              "'%s' is %d ids, got %zu", pieces[i].text, pieces[i].n_ids, n);
        free(ids);
    }

    // Speed against the cl100k tokenizer on the same text (test_speed ran first).
    char *s = english(4 << 20);
    size_t len = strlen(s), n;
    t0 = vkphi_now();
    int32_t *ids = enc(t, s, len, false, &n);
    double mbs = len / 1e6 / (vkphi_now() - t0);
    printf("o200k encode: %.1f MB/s (cl100k: %.1f MB/s), %.2f bytes/token\n", mbs, english_speed,
           (double)len / (double)n);
    CHECK(pieces_equal(t, ids, n, s, len), "o200k: long text round-trips");
    CHECK(mbs >= 0.25 * english_speed, "o200k encodes at %.1f MB/s, far below cl100k's %.1f", mbs, english_speed);
    free(ids);

    // Worst cases for the o200k split (its letter runs backtrack over upper/lower case):
    // 1 MB of capitals, of "aB" pairs, of mixed scripts with combining marks, of random bytes.
    for (int k = 0; k < 4; k++) {
        static const char *what[] = {"capitals", "aB pairs", "marks and scripts", "random bytes"};
        static const char *mixed[] = {"e\xcc\x81", "\xce\xa9", "\xe4\xb8\x96", "A", "'s", " ", "1", "\n"};
        size_t m = 1 << 20, at = 0;
        test_seed(11);
        while (at + 8 < m) {
            if (k == 0)
                s[at++] = (char)('A' + test_rand_u32() % 26);
            else if (k == 1)
                s[at] = at % 2 ? 'B' : 'a', at++;
            else if (k == 3)
                s[at++] = (char)test_rand_u32();
            else {
                const char *p = mixed[test_rand_u32() % 8];
                memcpy(s + at, p, strlen(p));
                at += strlen(p);
            }
        }
        t0 = vkphi_now();
        ids = enc(t, s, at, false, &n);
        double dt = vkphi_now() - t0;
        printf("o200k encode 1 MB of %s: %.3f s (%zu ids)\n", what[k], dt, n);
        CHECK(n > 0 && pieces_equal(t, ids, n, s, at), "o200k: %s round-trip", what[k]);
        free(ids);
    }
    free(s);
    tokenizer_destroy(t);
}

int main(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s", test_tokenizer_path());
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "gguf_open %s: %s", path, vkphi_last_error());
    if (!f) return test_finish();
    double t0 = vkphi_now();
    tokenizer *t = tokenizer_create(f);
    printf("tokenizer_create: %.1f ms\n", (vkphi_now() - t0) * 1e3);
    CHECK(t != NULL, "tokenizer_create: %s", vkphi_last_error());
    gguf_close(f); // the tokenizer keeps its own copy
    if (!t) return test_finish();

    test_queries(t);
    snprintf(path, sizeof path, "%s/phi4-tokenizer-cases.jsonl", test_data_dir());
    test_cases(t, path);
    test_special(t);
    test_invalid_bytes(t);
    test_stream(t);
    test_speed(t);
    test_small_vocab();
    tokenizer_destroy(t);
    test_mini();
    return test_finish();
}
