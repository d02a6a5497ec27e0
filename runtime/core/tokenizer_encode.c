// SPDX-License-Identifier: MIT
// Encoding: plain text is split into pieces by the pre-tokenizer's regex, special
// tokens are cut out first when asked, and each piece's bytes are merged, lowest
// merge rank first (a heap of the adjacent pairs), into token ids.
#include "tokenizer.h"

#include "common.h"
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

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
