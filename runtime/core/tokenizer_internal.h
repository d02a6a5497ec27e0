// SPDX-License-Identifier: MIT
// The tokenizer as its three files share it: the tables tokenizer.c builds from
// the GGUF file, which tokenizer_encode.c merges with and tokenizer_decode.c reads
// the tokens' bytes from, and the hash lookups that building and encoding both
// use. Internal to those files; tokenizer.h is the interface. No Vulkan here.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The pre-tokenizer regex runs on PCRE2: a well-kept library with complete Unicode
// property tables (\p{L}, \p{N} for every script), lookahead (the split needs
// \s+(?!\S)), case-insensitive matching of the contractions, a JIT compiler that keeps
// the split far faster than the merges, and PCRE2_MATCH_INVALID_UTF, which lets it run
// on arbitrary bytes: invalid UTF-8 simply never matches, and we turn the gaps between
// matches into pieces of their own.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"

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

static inline size_t token_len(const tokenizer *t, int32_t id) { return t->off[id + 1] - t->off[id]; }

// Hash lookups (the tables are filled in tokenizer.c).

static inline uint64_t hash_bytes(const char *s, size_t n) { // FNV-1a
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static inline uint64_t hash_u64(uint64_t x) { // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline int32_t find_bytes(const tokenizer *t, const char *s, size_t n) {
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->by_bytes_mask;; i = (i + 1) & t->by_bytes_mask) {
        int32_t id = t->by_bytes[i];
        if (id < 0) return -1;
        if (token_len(t, id) == n && memcmp(t->pool + t->off[id], s, n) == 0) return id;
    }
}

// Returns the slot of pair (l, r): either holding it or the empty slot where it goes.
static inline uint32_t pair_slot(const tokenizer *t, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t i = (uint32_t)hash_u64(key) & t->pair_mask;
    while (t->pair_key[i] != UINT64_MAX && t->pair_key[i] != key)
        i = (i + 1) & t->pair_mask;
    return i;
}
