// SPDX-License-Identifier: MIT
// Byte-level BPE as in GPT-2 / cl100k: the text is split by a regular expression
// into pieces, each piece's bytes start as one token per byte, and adjacent pairs are
// merged, lowest merge rank first, until no listed merge applies. This file builds
// the tokenizer from a GGUF file (the splits, the vocabulary with GPT-2's byte
// mapping undone, the merges, the special tokens) and answers queries about its
// tokens; encoding is in tokenizer_encode.c, decoding in tokenizer_decode.c.
#include "tokenizer.h"

#include "common.h"
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// ---- hashing: building the tables (the lookups are in tokenizer_internal.h) ----

static uint32_t table_size(size_t n) { // power of two, at most half full
    uint32_t s = 16;
    while (s < 2 * n)
        s <<= 1;
    return s;
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
