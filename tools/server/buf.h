// SPDX-License-Identifier: MIT
// A growable byte buffer for the server (request bodies, generated text, SSE output).
#pragma once
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct srv_buf {
    char *p;    // NUL-terminated when len > 0
    size_t len; // bytes in use, the NUL excluded
    size_t cap;
} srv_buf;

// Appends data[0..n); false (buffer unchanged) when memory runs out.
static inline bool srv_buf_put(srv_buf *b, const void *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

static inline bool srv_buf_puts(srv_buf *b, const char *s) { return srv_buf_put(b, s, strlen(s)); }

static inline void srv_buf_clear(srv_buf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
}

static inline void srv_buf_free(srv_buf *b) {
    free(b->p);
    *b = (srv_buf){0};
}
