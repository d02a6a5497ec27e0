// SPDX-License-Identifier: MIT
// Byte-level BPE as in GPT-2 / cl100k: the text is split by a regular expression
// into pieces, each piece's bytes start as one token per byte, and adjacent pairs are
// merged, lowest merge rank first, until no listed merge applies.
#include "tokenizer.h"

#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The pre-tokenizer regex runs on PCRE2: a well-kept library with complete Unicode
// property tables (\p{L}, \p{N} for every script), lookahead (the split needs
// \s+(?!\S)), case-insensitive matching of the contractions, a JIT compiler that keeps
// the split far faster than the merges, and PCRE2_MATCH_INVALID_UTF, which lets it run
// on arbitrary bytes: invalid UTF-8 simply never matches, and we turn the gaps between
// matches into pieces of their own.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

// The splits, as tiktoken defines them. \s is spelled out as Unicode's White_Space
// set, which is what tiktoken's regex engine means by \s; PCRE2's own \s also takes
// U+180E.
#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
// cl100k_base (Phi-4; GGUF pre "dbrx", "llama-bpe", "llama3").
static const char split_cl100k[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
                                   "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
                                   "|\\p{N}{1,3}"
                                   "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
                                   "|[" WS "]*[\\r\\n]+"
                                   "|[" WS "]+(?![^" WS "])"
                                   "|[" WS "]+";
// o200k_base (Phi-4-mini; GGUF pre "gpt-4o"). A word is a run of upper-case-like
// letters then lower-case-like ones (so "HelloWorld" is two words, "HTML" one), with a
// contraction attached to it instead of standing alone; punctuation takes a trailing
// "/" as well as newlines.
#define UPPER "\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}"
#define LOWER "\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}"
#define CONTRACTION "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
static const char split_o200k[] = "[^\\r\\n\\p{L}\\p{N}]?[" UPPER "]*[" LOWER "]+" CONTRACTION
                                  "|[^\\r\\n\\p{L}\\p{N}]?[" UPPER "]+[" LOWER "]*" CONTRACTION "|\\p{N}{1,3}"
                                  "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*"
                                  "|[" WS "]*[\\r\\n]+"
                                  "|[" WS "]+(?![^" WS "])"
                                  "|[" WS "]+";

// The pre-tokenizers we implement, by the name GGUF files give them in tokenizer.ggml.pre.
static const struct {
    const char *name, *pattern;
} splits[] = {
    {"dbrx", split_cl100k}, // what Phi-4 files say
    {"llama-bpe", split_cl100k},
    {"llama3", split_cl100k},
    {"gpt-4o", split_o200k}, // Phi-4-mini
};

enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4 };

struct tokenizer {
    uint32_t n_vocab;
    int32_t bos, eos;
    int32_t eog[4]; // ids that end a generation (-1 = unused slot)
    uint8_t *type;  // (n_vocab) token type as in the file, clamped to 0..255
    char *pool;     // every token's decoded bytes, back to back
    size_t *off;    // (n_vocab + 1) token i is pool[off[i] .. off[i+1])

    // normal tokens by their bytes: open addressing, -1 = empty
    int32_t *by_bytes;
    uint32_t by_bytes_mask;
    int32_t byte_token[256]; // the token of each single byte

    // merges by (left id, right id): rank and the merged token
    uint64_t *pair_key; // left << 32 | right, UINT64_MAX = empty
    int32_t *pair_rank, *pair_result;
    uint32_t pair_mask;

    // special (control / user-defined) tokens, longest first, for parse_special
    int32_t *special;
    size_t n_special;
    uint8_t special_first[256]; // 1 where some special token starts with this byte

    pcre2_code *split;
};

static size_t token_len(const tokenizer *t, int32_t id) { return t->off[id + 1] - t->off[id]; }

// ---- hashing ----

static uint64_t hash_bytes(const char *s, size_t n) { // FNV-1a
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) { // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t table_size(size_t n) { // power of two, at most half full
    uint32_t s = 16;
    while (s < 2 * n)
        s <<= 1;
    return s;
}

static int32_t find_bytes(const tokenizer *t, const char *s, size_t n) {
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->by_bytes_mask;; i = (i + 1) & t->by_bytes_mask) {
        int32_t id = t->by_bytes[i];
        if (id < 0) return -1;
        if (token_len(t, id) == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
    }
}

static void insert_bytes(tokenizer *t, int32_t id) { // keeps the first of equal texts
    const char *s = t->pool + t->off[id];
    size_t n = token_len(t, id);
    uint32_t i = (uint32_t)hash_bytes(s, n) & t->by_bytes_mask;
    for (; t->by_bytes[i] >= 0; i = (i + 1) & t->by_bytes_mask) {
        int32_t o = t->by_bytes[i];
        if (token_len(t, o) == n && memcmp(t->pool + t->off[o], s, n) == 0) return;
    }
    t->by_bytes[i] = id;
}

// Returns the slot of pair (l, r): either holding it or the empty slot where it goes.
static uint32_t pair_slot(const tokenizer *t, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t i = (uint32_t)hash_u64(key) & t->pair_mask;
    while (t->pair_key[i] != UINT64_MAX && t->pair_key[i] != key)
        i = (i + 1) & t->pair_mask;
    return i;
}

// ---- GPT-2's byte <-> unicode mapping ----
// Printable bytes stand for themselves; the other 68 bytes (controls, space, 0x7F-0xA0,
// 0xAD) are moved to code points 256.. in byte order so every token prints.

static int byte_of_codepoint(uint32_t cp) { // -1 when cp is not in the mapping
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int k = (int)cp - 256; // k-th byte that is not printable
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable && k-- == 0) return b;
    }
    return -1;
}

// Decodes one UTF-8 sequence at s[0..n); returns its length (0 if invalid).
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t b = s[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        c = b & 0x1F;
        min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        c = b & 0x0F;
        min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        c = b & 0x07;
        min = 0x10000;
    } else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

// Undoes the byte mapping of s[0..n) into out (which has room for n bytes); returns
// the byte count, or -1 when s is not made of mapped characters.
static long unmap_text(const char *s, size_t n, const int16_t *unmap, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (k == 0 || cp >= 512 || unmap[cp] < 0) return -1;
        out[o++] = (char)unmap[cp];
        i += k;
    }
    return (long)o;
}

// ---- creation ----

static int load_vocab(tokenizer *t, const gguf_file *f) {
    static const char *K_TOKENS = "tokenizer.ggml.tokens", *K_TYPES = "tokenizer.ggml.token_type";
    enum gguf_type et;
    uint64_t n;
    if (!gguf_get_arr(f, K_TOKENS, &et, &n) || et != GGUF_TYPE_STRING)
        return vkphi_fail(VKPHI_ERR_FORMAT, "the model has no tokenizer.ggml.tokens string array");
    if (n == 0 || n > INT32_MAX / 2)
        return vkphi_fail(VKPHI_ERR_FORMAT, "the model's vocabulary size %llu is out of range", (unsigned long long)n);
    t->n_vocab = (uint32_t)n;

    t->type = malloc(n);
    t->off = malloc((n + 1) * sizeof *t->off);
    if (!t->type || !t->off) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the vocabulary");
    uint64_t n_types = 0;
    const void *types = NULL;
    if (gguf_get_arr(f, K_TYPES, &et, &n_types)) {
        if ((et != GGUF_TYPE_INT32 && et != GGUF_TYPE_UINT32) || n_types != n)
            return vkphi_fail(VKPHI_ERR_FORMAT, "tokenizer.ggml.token_type has %llu entries for %llu tokens",
                              (unsigned long long)n_types, (unsigned long long)n);
        types = gguf_get_arr_data(f, K_TYPES);
        if (!types) return vkphi_fail(VKPHI_ERR_FORMAT, "tokenizer.ggml.token_type cannot be read");
    }

    int16_t unmap[512];
    for (uint32_t cp = 0; cp < 512; cp++)
        unmap[cp] = (int16_t)byte_of_codepoint(cp);

    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (!gguf_get_arr_str(f, K_TOKENS, i, &len))
            return vkphi_fail(VKPHI_ERR_FORMAT, "token %llu of tokenizer.ggml.tokens cannot be read",
                              (unsigned long long)i);
        total += len;
    }
    t->pool = malloc(total ? total : 1);
    if (!t->pool) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the vocabulary");

    size_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        const char *s = gguf_get_arr_str(f, K_TOKENS, i, &len);
        int32_t ty = TOKEN_NORMAL;
        if (types) memcpy(&ty, (const char *)types + 4 * i, 4);
        t->type[i] = (uint8_t)(ty < 0 || ty > 255 ? 0 : ty);
        t->off[i] = pos;
        long k = t->type[i] == TOKEN_NORMAL ? unmap_text(s, len, unmap, t->pool + pos) : -1;
        if (k < 0) { // special tokens, and any text outside the byte mapping, stand for themselves
            memcpy(t->pool + pos, s, len);
            k = (long)len;
        }
        pos += (size_t)k;
    }
    t->off[n] = pos;

    t->by_bytes_mask = table_size(n) - 1;
    t->by_bytes = malloc((size_t)(t->by_bytes_mask + 1) * sizeof *t->by_bytes);
    if (!t->by_bytes) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the vocabulary");
    memset(t->by_bytes, 0xff, (size_t)(t->by_bytes_mask + 1) * sizeof *t->by_bytes);
    for (uint32_t i = 0; i < n; i++)
        if (t->type[i] == TOKEN_NORMAL) insert_bytes(t, (int32_t)i);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_token[b] = find_bytes(t, &c, 1);
        if (t->byte_token[b] < 0)
            return vkphi_fail(VKPHI_ERR_FORMAT, "the byte-level vocabulary has no token for byte 0x%02X", b);
    }

    size_t n_special = 0;
    for (uint32_t i = 0; i < n; i++)
        n_special += (t->type[i] == TOKEN_CONTROL || t->type[i] == TOKEN_USER_DEFINED) && t->off[i + 1] > t->off[i];
    t->special = malloc((n_special ? n_special : 1) * sizeof *t->special);
    if (!t->special) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the vocabulary");
    for (uint32_t i = 0; i < n; i++) {
        if ((t->type[i] == TOKEN_CONTROL || t->type[i] == TOKEN_USER_DEFINED) && t->off[i + 1] > t->off[i]) {
            t->special[t->n_special++] = (int32_t)i;
            t->special_first[(uint8_t)t->pool[t->off[i]]] = 1;
        }
    }
    // Longest first, so the longest special token wins where one text starts another
    // (insertion sort: there are a few hundred at most, and it keeps ids ascending among equals).
    for (size_t i = 1; i < t->n_special; i++) {
        int32_t id = t->special[i];
        size_t j = i;
        for (; j > 0 && token_len(t, t->special[j - 1]) < token_len(t, id); j--)
            t->special[j] = t->special[j - 1];
        t->special[j] = id;
    }
    return VKPHI_OK;
}

static int load_merges(tokenizer *t, const gguf_file *f) {
    static const char *K_MERGES = "tokenizer.ggml.merges";
    enum gguf_type et;
    uint64_t n;
    if (!gguf_get_arr(f, K_MERGES, &et, &n) || et != GGUF_TYPE_STRING)
        return vkphi_fail(VKPHI_ERR_FORMAT, "the model has no tokenizer.ggml.merges string array");
    if (n > INT32_MAX / 4) return vkphi_fail(VKPHI_ERR_FORMAT, "tokenizer.ggml.merges is too long");
    t->pair_mask = table_size(n) - 1;
    size_t slots = (size_t)t->pair_mask + 1;
    t->pair_key = malloc(slots * sizeof *t->pair_key);
    t->pair_rank = malloc(slots * sizeof *t->pair_rank);
    t->pair_result = malloc(slots * sizeof *t->pair_result);
    if (!t->pair_key || !t->pair_rank || !t->pair_result)
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the merges");
    memset(t->pair_key, 0xff, slots * sizeof *t->pair_key);

    int16_t unmap[512];
    for (uint32_t cp = 0; cp < 512; cp++)
        unmap[cp] = (int16_t)byte_of_codepoint(cp);
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t m = 0; m < n; m++) {
        uint64_t len;
        const char *s = gguf_get_arr_str(f, K_MERGES, m, &len);
        const char *sp = s ? memchr(s, ' ', len) : NULL;
        if (!sp) {
            free(buf);
            return vkphi_fail(VKPHI_ERR_FORMAT,
                              "merge %llu of tokenizer.ggml.merges is not two tokens separated by a space",
                              (unsigned long long)m);
        }
        if (len > cap) {
            cap = len * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory loading the merges");
            }
            buf = nb;
        }
        size_t nl = (size_t)(sp - s);
        long bl = unmap_text(s, nl, unmap, buf);
        long br = bl < 0 ? -1 : unmap_text(sp + 1, len - nl - 1, unmap, buf + bl);
        int32_t l = bl > 0 ? find_bytes(t, buf, (size_t)bl) : -1;
        int32_t r = br > 0 ? find_bytes(t, buf + bl, (size_t)br) : -1;
        int32_t res = l >= 0 && r >= 0 ? find_bytes(t, buf, (size_t)(bl + br)) : -1;
        if (res < 0) {
            free(buf);
            return vkphi_fail(
                VKPHI_ERR_FORMAT,
                "merge %llu of tokenizer.ggml.merges ('%.*s') names a token that is not in the vocabulary",
                (unsigned long long)m, (int)(len > 60 ? 60 : len), s);
        }
        uint32_t slot = pair_slot(t, l, r);
        if (t->pair_key[slot] == UINT64_MAX) { // the first listing of a pair wins
            t->pair_key[slot] = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
            t->pair_rank[slot] = (int32_t)m;
            t->pair_result[slot] = res;
        }
    }
    free(buf);
    return VKPHI_OK;
}

static int32_t special_by_text(const tokenizer *t, const char *s, size_t n) {
    for (size_t i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i];
        if (token_len(t, id) == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
    }
    return -1;
}

static int load_ids(tokenizer *t, const gguf_file *f) {
    const char *keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    int32_t *dst[2] = {&t->bos, &t->eos};
    for (int k = 0; k < 2; k++) {
        uint32_t v;
        *dst[k] = -1;
        if (gguf_find_key(f, keys[k]) < 0) continue;
        if (!gguf_get_u32(f, keys[k], &v)) {
            int32_t sv;
            if (!gguf_get_i32(f, keys[k], &sv)) return vkphi_fail(VKPHI_ERR_FORMAT, "%s is not an integer", keys[k]);
            if (sv < 0) continue; // -1: none
            v = (uint32_t)sv;
        }
        if (v >= t->n_vocab)
            return vkphi_fail(VKPHI_ERR_FORMAT, "%s %u is outside the vocabulary of %u tokens", keys[k], v, t->n_vocab);
        *dst[k] = (int32_t)v;
    }
    // Generation ends at <|im_end|> and <|endoftext|> whatever eos says: files converted
    // before the eos fix name <|endoftext|> as eos and would otherwise never stop.
    // Phi-4-mini ends its turns with <|end|> (its eos is <|endoftext|>).
    t->eog[0] = t->eos;
    t->eog[1] = special_by_text(t, "<|im_end|>", 10);
    t->eog[2] = special_by_text(t, "<|endoftext|>", 13);
    t->eog[3] = special_by_text(t, "<|end|>", 7);
    return VKPHI_OK;
}

static tokenizer *create(const gguf_file *f) {
    const char *model = NULL, *pre = NULL;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model)) {
        vkphi_fail(VKPHI_ERR_FORMAT, "the model has no tokenizer (tokenizer.ggml.model is missing)");
        return NULL;
    }
    if (strcmp(model, "gpt2") != 0) {
        vkphi_fail(VKPHI_ERR_UNSUPPORTED, "tokenizer model '%s' is not supported (only byte-level BPE, 'gpt2')", model);
        return NULL;
    }
    const char *pattern = NULL;
    if (!gguf_get_str(f, "tokenizer.ggml.pre", &pre)) {
        vkphi_log(VKPHI_LOG_WARN, "%s: tokenizer.ggml.pre is missing; assuming the cl100k split", gguf_name(f));
        pattern = split_cl100k;
    } else {
        for (size_t i = 0; i < sizeof splits / sizeof *splits && !pattern; i++)
            if (!strcmp(pre, splits[i].name)) pattern = splits[i].pattern;
    }
    if (!pattern) {
        vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                   "pre-tokenizer tokenizer.ggml.pre = '%s' is unsupported (vkphi has the cl100k split of 'dbrx', "
                   "'llama-bpe' and 'llama3', and the o200k split of 'gpt-4o')",
                   pre);
        return NULL;
    }

    tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating the tokenizer");
        return NULL;
    }
    if (load_vocab(t, f) || load_merges(t, f) || load_ids(t, f)) {
        tokenizer_destroy(t);
        return NULL;
    }
    int err;
    PCRE2_SIZE err_off;
    t->split = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, NULL);
    if (!t->split) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the pre-tokenizer regex does not compile at offset %zu: %s", (size_t)err_off,
                   (char *)msg);
        tokenizer_destroy(t);
        return NULL;
    }
    // Without JIT (a PCRE2 built without it) matching still works, only slower.
    if (pcre2_jit_compile(t->split, PCRE2_JIT_COMPLETE) != 0)
        vkphi_log(VKPHI_LOG_DEBUG, "PCRE2 JIT unavailable; the tokenizer uses the interpreter");
    return t;
}

tokenizer *tokenizer_create(const gguf_file *f) {
    if (!f) {
        vkphi_fail(VKPHI_ERR_ARG, "tokenizer_create needs an open GGUF file");
        return NULL;
    }
    tokenizer *t = create(f);
    if (!t) { // name the file in the message
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vkphi_last_error());
        vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s", gguf_name(f), msg);
    }
    return t;
}

void tokenizer_destroy(tokenizer *t) {
    if (!t) return;
    pcre2_code_free(t->split);
    free(t->type);
    free(t->pool);
    free(t->off);
    free(t->by_bytes);
    free(t->pair_key);
    free(t->pair_rank);
    free(t->pair_result);
    free(t->special);
    free(t);
}

// ---- queries ----

uint32_t tokenizer_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tokenizer_bos(const tokenizer *t) { return t->bos; }
int32_t tokenizer_eos(const tokenizer *t) { return t->eos; }

int32_t tokenizer_token_id(const tokenizer *t, const char *piece) {
    size_t n = strlen(piece);
    int32_t id = special_by_text(t, piece, n);
    return id >= 0 ? id : find_bytes(t, piece, n);
}

bool tokenizer_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && (id == t->eog[0] || id == t->eog[1] || id == t->eog[2] || id == t->eog[3]);
}

bool tokenizer_is_markup(const tokenizer *t, int32_t id) {
    static const char *const markup[] = {"<think>", "</think>", "<|tool_call|>", "<|/tool_call|>"};
    if (!tokenizer_is_special(t, id)) return false;
    size_t len = token_len(t, id);
    for (size_t i = 0; i < sizeof markup / sizeof *markup; i++)
        if (len == strlen(markup[i]) && !memcmp(t->pool + t->off[id], markup[i], len)) return true;
    return false;
}

bool tokenizer_is_special(const tokenizer *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n_vocab && (t->type[id] == TOKEN_CONTROL || t->type[id] == TOKEN_USER_DEFINED);
}

const char *tokenizer_piece(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (uint32_t)id >= t->n_vocab) {
        *len = 0;
        return "";
    }
    *len = token_len(t, id);
    return t->pool + t->off[id];
}

// ---- encoding ----

typedef struct {
    int32_t **ids;
    size_t *n, cap;
} id_out;

static bool push_id(id_out *o, int32_t id) {
    if (*o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *p = realloc(*o->ids, cap * sizeof *p);
        if (!p) return false;
        *o->ids = p;
        o->cap = cap;
    }
    (*o->ids)[(*o->n)++] = id;
    return true;
}

typedef struct {
    int32_t rank;
    int32_t pos;         // symbol index of the left side
    int32_t left, right; // token ids when pushed, to spot entries made stale by a merge
} bpe_pair;

typedef struct { // per-call scratch, grown to the longest piece
    size_t cap;
    int32_t *id, *next, *prev;
    bpe_pair *heap;
    size_t n_heap;
} bpe_work;

static bool pair_less(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos); // leftmost wins ties
}

static void heap_push(bpe_work *w, bpe_pair p) {
    size_t i = w->n_heap++;
    while (i > 0 && pair_less(&p, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = p;
}

static bpe_pair heap_pop(bpe_work *w) {
    bpe_pair top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = last;
    return top;
}

static void push_pair(const tokenizer *t, bpe_work *w, int32_t pos) {
    if (pos < 0 || w->next[pos] < 0) return;
    int32_t q = w->next[pos];
    uint32_t slot = pair_slot(t, w->id[pos], w->id[q]);
    if (t->pair_key[slot] == UINT64_MAX) return;
    heap_push(w, (bpe_pair){t->pair_rank[slot], pos, w->id[pos], w->id[q]});
}

// Merges one piece. Symbols form a linked list over the piece's bytes; a heap holds
// every adjacent pair that has a merge, so a piece of n bytes costs O(n log n).
static int bpe_piece(const tokenizer *t, bpe_work *w, const uint8_t *s, size_t n, id_out *out) {
    if (n == 0) return VKPHI_OK;
    // A piece that is a token as a whole is that token (tiktoken's rule, and a shortcut).
    int32_t whole = find_bytes(t, (const char *)s, n);
    if (whole >= 0) return push_id(out, whole) ? VKPHI_OK : vkphi_fail(VKPHI_ERR_NOMEM, "out of memory tokenizing");
    if (n > INT32_MAX / 4) return vkphi_fail(VKPHI_ERR_ARG, "a %zu-byte word is too long to tokenize", n);
    if (n > w->cap) {
        size_t cap = n < 256 ? 256 : n;
        int32_t *id = realloc(w->id, cap * sizeof *id);
        if (id) w->id = id;
        int32_t *nx = realloc(w->next, cap * sizeof *nx);
        if (nx) w->next = nx;
        int32_t *pv = realloc(w->prev, cap * sizeof *pv);
        if (pv) w->prev = pv;
        bpe_pair *hp = realloc(w->heap, 3 * cap * sizeof *hp); // n-1 pairs at first, 2 more per merge
        if (hp) w->heap = hp;
        if (!id || !nx || !pv || !hp) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory tokenizing");
        w->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        w->id[i] = t->byte_token[s[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        push_pair(t, w, (int32_t)i);
    while (w->n_heap > 0) {
        bpe_pair p = heap_pop(w);
        int32_t q = w->next[p.pos];
        // A merged-away symbol keeps id -1, so stale entries fail this test.
        if (w->id[p.pos] != p.left || q < 0 || w->id[q] != p.right) continue;
        w->id[p.pos] = t->pair_result[pair_slot(t, p.left, p.right)];
        w->id[q] = -1;
        w->next[p.pos] = w->next[q];
        if (w->next[q] >= 0) w->prev[w->next[q]] = p.pos;
        push_pair(t, w, w->prev[p.pos]);
        push_pair(t, w, p.pos);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        if (!push_id(out, w->id[i])) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory tokenizing");
    return VKPHI_OK;
}

// Splits plain text (no special tokens) with the regex and merges every piece.
static int encode_plain(const tokenizer *t, pcre2_match_data *md, bpe_work *w, const uint8_t *s, size_t n,
                        id_out *out) {
    size_t at = 0;
    while (at < n) {
        int rc = pcre2_match(t->split, s, n, at, 0, md, NULL);
        size_t start = n, end = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            start = ov[0];
            end = ov[1] > ov[0] ? ov[1] : ov[0] + 1; // the split never matches empty; guard anyway
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return vkphi_fail(VKPHI_ERR_ARG, "the pre-tokenizer failed at byte %zu: %s", at, (char *)msg);
        }
        // Bytes no alternative matched are invalid UTF-8: they form a piece of their own.
        int err = bpe_piece(t, w, s + at, start - at, out);
        if (!err && start < n) err = bpe_piece(t, w, s + start, end - start, out);
        if (err) return err;
        at = end;
    }
    return VKPHI_OK;
}

// Finds the special token that starts at s (the longest), or -1.
static int32_t special_at(const tokenizer *t, const uint8_t *s, size_t n) {
    if (!t->special_first[s[0]]) return -1;
    for (size_t i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i];
        size_t len = token_len(t, id);
        if (len <= n && memcmp(t->pool + t->off[id], s, len) == 0) return id;
    }
    return -1;
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ids,
                     size_t *n_ids) {
    if (!t || !ids || !n_ids || (!text && len))
        return vkphi_fail(VKPHI_ERR_ARG, "tokenizer_encode got a NULL argument");
    id_out out = {ids, n_ids, *ids ? *n_ids : 0};
    if (!*ids) *n_ids = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->split, NULL);
    if (!md) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory tokenizing");
    bpe_work w = {0};
    const uint8_t *s = (const uint8_t *)text;
    int err = VKPHI_OK;
    size_t seg = 0; // start of the plain text not yet encoded
    if (parse_special) {
        // Plain text between special tokens is split on its own, as tiktoken does.
        for (size_t i = 0; i < len && !err;) {
            int32_t id = special_at(t, s + i, len - i);
            if (id < 0) {
                i++;
                continue;
            }
            err = encode_plain(t, md, &w, s + seg, i - seg, &out);
            if (!err && !push_id(&out, id)) err = vkphi_fail(VKPHI_ERR_NOMEM, "out of memory tokenizing");
            i += token_len(t, id);
            seg = i;
        }
    }
    if (!err) err = encode_plain(t, md, &w, s + seg, len - seg, &out);
    free(w.id);
    free(w.next);
    free(w.prev);
    free(w.heap);
    pcre2_match_data_free(md);
    return err;
}

// ---- decoding to valid UTF-8 ----

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} text_buf;

static void buf_put(text_buf *b, const void *p, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; // U+FFFD

typedef struct {
    uint8_t part[4]; // a sequence begun but not finished
    int have, need;
} utf8_state;

// The range the second byte of a sequence must fall in, by lead byte (Unicode table 3-7):
// this excludes overlong forms, surrogates and code points past U+10FFFF.
static void second_range(uint8_t lead, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
}

static void utf8_feed(utf8_state *st, const uint8_t *p, size_t n, text_buf *out) {
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        if (st->have > 0) {
            uint8_t lo = 0x80, hi = 0xBF;
            if (st->have == 1) second_range(st->part[0], &lo, &hi);
            if (b < lo || b > hi) { // the partial sequence is broken: one U+FFFD, then b afresh
                buf_put(out, replacement, 3);
                st->have = 0;
                continue;
            }
            st->part[st->have++] = b;
            i++;
            if (st->have == st->need) {
                buf_put(out, st->part, (size_t)st->need);
                st->have = 0;
            }
            continue;
        }
        if (b < 0x80) { // copy a run of ASCII at once
            size_t j = i + 1;
            while (j < n && p[j] < 0x80)
                j++;
            buf_put(out, p + i, j - i);
            i = j;
            continue;
        }
        i++;
        if (b >= 0xC2 && b <= 0xDF)
            st->need = 2;
        else if (b >= 0xE0 && b <= 0xEF)
            st->need = 3;
        else if (b >= 0xF0 && b <= 0xF4)
            st->need = 4;
        else { // a continuation byte with no lead, or a byte that never occurs in UTF-8
            buf_put(out, replacement, 3);
            continue;
        }
        st->part[0] = b;
        st->have = 1;
    }
}

static void utf8_finish(utf8_state *st, text_buf *out) {
    if (st->have > 0) buf_put(out, replacement, 3);
    st->have = 0;
}

static void feed_token(const tokenizer *t, utf8_state *st, int32_t id, text_buf *out) {
    if (id < 0 || (uint32_t)id >= t->n_vocab) {
        utf8_feed(st, (const uint8_t *)replacement, 3, out); // also ends any partial sequence
        return;
    }
    utf8_feed(st, (const uint8_t *)t->pool + t->off[id], token_len(t, id), out);
}

// Ends a whole-text decode: the tail, then the buffer handed over.
static int finish_text(utf8_state *st, text_buf *b, char **out, size_t *out_len) {
    utf8_finish(st, b);
    if (b->oom) {
        free(b->data);
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory decoding text");
    }
    *out = b->data;
    if (out_len) *out_len = b->len;
    return VKPHI_OK;
}

int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n_ids, char **out, size_t *out_len) {
    text_buf b = {0};
    utf8_state st = {0};
    buf_put(&b, "", 0);
    for (size_t i = 0; i < n_ids; i++)
        feed_token(t, &st, ids[i], &b);
    return finish_text(&st, &b, out, out_len);
}

int tokenizer_utf8_repair(const char *text, size_t len, char **out, size_t *out_len) {
    text_buf b = {0};
    utf8_state st = {0};
    buf_put(&b, "", 0);
    utf8_feed(&st, (const uint8_t *)text, len, &b);
    return finish_text(&st, &b, out, out_len);
}

struct tokenizer_stream {
    const tokenizer *t;
    utf8_state st;
    text_buf out;
};

tokenizer_stream *tokenizer_stream_create(const tokenizer *t) {
    tokenizer_stream *s = calloc(1, sizeof *s);
    if (!s) {
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating a detokenizer");
        return NULL;
    }
    s->t = t;
    buf_put(&s->out, "", 0);
    if (s->out.oom) {
        free(s);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating a detokenizer");
        return NULL;
    }
    return s;
}

void tokenizer_stream_destroy(tokenizer_stream *s) {
    if (!s) return;
    free(s->out.data);
    free(s);
}

static const char *stream_result(tokenizer_stream *s, size_t *len) {
    if (s->out.oom) { // keep the old buffer; report nothing rather than a torn string
        s->out.oom = false;
        s->out.len = 0;
        s->out.data[0] = 0;
    }
    if (len) *len = s->out.len;
    return s->out.data;
}

const char *tokenizer_stream_put(tokenizer_stream *s, int32_t id, size_t *len) {
    s->out.len = 0;
    s->out.data[0] = 0;
    feed_token(s->t, &s->st, id, &s->out);
    return stream_result(s, len);
}

const char *tokenizer_stream_flush(tokenizer_stream *s, size_t *len) {
    s->out.len = 0;
    s->out.data[0] = 0;
    utf8_finish(&s->st, &s->out);
    return stream_result(s, len);
}
