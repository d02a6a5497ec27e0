// SPDX-License-Identifier: MIT
// Decoding to valid UTF-8: whole id arrays (tokenizer_decode), outside text
// (tokenizer_utf8_repair) and the streaming detokenizer, which holds back an
// incomplete sequence until the next token completes it and turns what can never
// be valid into U+FFFD.
#include "tokenizer.h"

#include "common.h"
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

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
