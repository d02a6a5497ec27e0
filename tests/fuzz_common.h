// SPDX-License-Identifier: MIT
// What the libFuzzer targets over the tokenizer, the detokenizer, the chat template
// and the server's requests share: the Phi-4 tokenizer loaded once, a UTF-8 check,
// and an independent oracle for "bytes to valid UTF-8 with U+FFFD".
//
// The tokenizer file is runtime/convert/phi4-tokenizer.gguf: tests/fuzz.sh passes its path
// as VKPHI_FUZZ_TOKENIZER_PATH at compile time; the environment variable
// VKPHI_FUZZ_TOKENIZER overrides it.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "tokenizer.h"

#ifndef VKPHI_FUZZ_TOKENIZER_PATH
#define VKPHI_FUZZ_TOKENIZER_PATH "runtime/convert/phi4-tokenizer.gguf"
#endif

// A failed property: say which, then abort so libFuzzer keeps the input.
#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz check failed (%s:%d): ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static tokenizer *fuzz_tok; // loaded by fuzz_load_tokenizer, never freed (reachable: no leak)

static void fuzz_load_tokenizer(void) {
    const char *path = getenv("VKPHI_FUZZ_TOKENIZER");
    if (!path || !path[0]) path = VKPHI_FUZZ_TOKENIZER_PATH;
    gguf_file *f = gguf_open(path);
    if (f) fuzz_tok = tokenizer_create(f);
    gguf_close(f);
    if (!fuzz_tok) {
        fprintf(stderr, "fuzz: cannot load the tokenizer %s (set VKPHI_FUZZ_TOKENIZER): %s\n", path,
                vkphi_last_error());
        exit(2);
    }
}

// Unicode's well-formed UTF-8 (table 3-7): no overlongs, surrogates or values past U+10FFFF.
static size_t fuzz_utf8_seq(const uint8_t *s, size_t n) { // length of the valid sequence at s, 0 if none
    uint8_t b = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF)
        need = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        need = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        need = 4;
    else
        return 0;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
    for (size_t k = 1; k < need; k++) {
        if (k >= n || s[k] < (k == 1 ? lo : 0x80) || s[k] > (k == 1 ? hi : 0xBF)) return 0;
    }
    return need;
}

static bool fuzz_utf8_valid(const void *p, size_t n) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n;) {
        size_t k = fuzz_utf8_seq(s + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

// bytes[0..n) decoded as Python's bytes.decode("utf-8", "replace") does: one U+FFFD
// for each maximal ill-formed subpart (the longest prefix of a valid sequence, or one
// byte). Written here independently of tokenizer.c's streaming state machine, as the
// oracle it is checked against. Returns malloc'd text, *out_len its length.
static char *fuzz_utf8_replace(const uint8_t *s, size_t n, size_t *out_len) {
    char *out = malloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = fuzz_utf8_seq(s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        // How many bytes form a valid prefix: the lead plus continuations in range.
        size_t sub = 1;
        uint8_t b = s[i];
        size_t need = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 1;
        for (size_t k2 = 1; k2 < need && i + k2 < n; k2++) {
            uint8_t lo = 0x80, hi = 0xBF, c = s[i + k2];
            if (k2 == 1) {
                if (b == 0xE0) lo = 0xA0;
                if (b == 0xED) hi = 0x9F;
                if (b == 0xF0) lo = 0x90;
                if (b == 0xF4) hi = 0x8F;
            }
            if (c < lo || c > hi) break;
            sub++;
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += sub;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}
