// SPDX-License-Identifier: MIT
// libFuzzer target for Phi-4's chat template, chat_build and chat_format (run by
// tests/fuzz.sh). The input is a flags byte, then messages separated by NUL bytes
// (contents are C strings). A message's first byte picks its role, r = b % 16:
//   0..11: system, user, assistant (r % 3); the rest is the content
//   12..14: an arbitrary role: the bytes up to the first '\n', then the content
//   15: a user message with no content (NULL)
// flags bit 0: add the generation prompt.
// What must hold: unknown roles and NULL contents are refused with a message and no
// ids; otherwise the ids are, per message, <|im_start|> role <|im_sep|> content
// <|im_end|>, with role and content encoded as plain text, so the only special ids
// are the markers (marker text inside a message stays text); the pieces of the ids
// are chat_format's text; a shorter conversation's ids are a prefix; and tokenizing
// chat_format's text with special parsing gives the same ids when no message holds
// special-token text.
#include "chat.h"
#include "fuzz_common.h"

static int32_t im_start, im_sep, im_end;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_load_tokenizer();
    im_start = tokenizer_token_id(fuzz_tok, "<|im_start|>");
    im_sep = tokenizer_token_id(fuzz_tok, "<|im_sep|>");
    im_end = tokenizer_token_id(fuzz_tok, "<|im_end|>");
    FUZZ_CHECK(im_start >= 0 && im_sep >= 0 && im_end >= 0, "the tokenizer lacks the chat markers");
    return 0;
}

static bool same_ids(const int32_t *a, const int32_t *b, size_t n) { return !n || !memcmp(a, b, n * sizeof *a); }

// Checks that ids[*at..) starts with the plain encoding of s, and moves *at past it.
static void expect_text(const int32_t *ids, size_t n, size_t *at, const char *s, const char *what) {
    int32_t *want = NULL;
    size_t n_want = 0;
    FUZZ_CHECK(tokenizer_encode(fuzz_tok, s, strlen(s), false, &want, &n_want) == VKPHI_OK, "encode failed");
    FUZZ_CHECK(n_want <= n - *at && same_ids(ids + *at, want, n_want), "the %s's ids are not its plain encoding", what);
    for (size_t i = 0; i < n_want; i++)
        FUZZ_CHECK(!tokenizer_is_special(fuzz_tok, want[i]), "the %s's text gave special id %d", what, want[i]);
    *at += n_want;
    free(want);
}

static void expect_id(const int32_t *ids, size_t n, size_t *at, int32_t id) {
    FUZZ_CHECK(*at < n && ids[*at] == id, "expected marker %d at %zu", id, *at);
    (*at)++;
}

static bool has_special_text(const char *s) {
    int32_t *ids = NULL;
    size_t n = 0;
    FUZZ_CHECK(tokenizer_encode(fuzz_tok, s, strlen(s), true, &ids, &n) == VKPHI_OK, "encode failed");
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= tokenizer_is_special(fuzz_tok, ids[i]);
    free(ids);
    return any;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const roles[3] = {"system", "user", "assistant"};
    const bool gen = data[0] & 1;
    // One copy, NUL-terminated, cut at every NUL into messages.
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = 0;
    size_t n_msg = 0;
    for (size_t i = 0; i < size - 1; i++)
        n_msg += buf[i] == 0;
    n_msg += 1; // the last piece ends at the terminator
    chat_message *m = calloc(n_msg, sizeof *m);
    bool known = true, has_null = false, marker_free = true;
    char *p = buf;
    for (size_t k = 0; k < n_msg; k++) {
        size_t len = strlen(p);
        char *next = p + len + 1;
        unsigned r = len ? (uint8_t)p[0] % 16 : 1;
        char *body = len ? p + 1 : p;
        if (r < 12) {
            m[k] = (chat_message){roles[r % 3], body};
        } else if (r < 15) {
            char *nl = strchr(body, '\n');
            if (nl) *nl = 0;
            m[k] = (chat_message){body, nl ? nl + 1 : body + strlen(body)};
            known &= !strcmp(body, "system") || !strcmp(body, "user") || !strcmp(body, "assistant");
        } else {
            m[k] = (chat_message){"user", NULL};
            has_null = true;
        }
        if (m[k].content) marker_free &= !has_special_text(m[k].content);
        p = next;
    }

    int32_t *ids = NULL;
    size_t n_ids = 0;
    int err = chat_build(fuzz_tok, m, n_msg, gen, &ids, &n_ids);
    char *text = NULL;
    size_t text_len = 0;
    int ferr = chat_format(m, n_msg, gen, &text, &text_len);
    if (!known || has_null) {
        FUZZ_CHECK(err == VKPHI_ERR_ARG && ferr == VKPHI_ERR_ARG, "a bad message was not refused (%d, %d)", err, ferr);
        FUZZ_CHECK(vkphi_last_error()[0], "a refusal without a message");
        FUZZ_CHECK(ids == NULL && n_ids == 0, "a refused conversation gave ids");
        goto out;
    }
    FUZZ_CHECK(err == VKPHI_OK && ferr == VKPHI_OK, "chat_build/chat_format failed: %s", vkphi_last_error());

    // The structure, and no special id but the markers.
    size_t at = 0, n_special = 0;
    for (size_t k = 0; k <= n_msg; k++) {
        if (k == n_msg && !gen) break;
        expect_id(ids, n_ids, &at, im_start);
        expect_text(ids, n_ids, &at, k < n_msg ? m[k].role : "assistant", "role");
        expect_id(ids, n_ids, &at, im_sep);
        if (k == n_msg) break;
        expect_text(ids, n_ids, &at, m[k].content, "content");
        expect_id(ids, n_ids, &at, im_end);
    }
    FUZZ_CHECK(at == n_ids, "%zu ids after the conversation", n_ids - at);
    for (size_t i = 0; i < n_ids; i++)
        n_special += tokenizer_is_special(fuzz_tok, ids[i]);
    FUZZ_CHECK(n_special == 3 * n_msg + (gen ? 2 : 0), "%zu special ids for %zu messages", n_special, n_msg);

    // chat_format's text is what the ids stand for.
    FUZZ_CHECK(text[text_len] == 0 && strlen(text) == text_len, "chat_format's length is wrong");
    size_t off = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t pl;
        const char *piece = tokenizer_piece(fuzz_tok, ids[i], &pl);
        FUZZ_CHECK(pl <= text_len - off && !memcmp(text + off, piece, pl), "id %zu's piece is not in the text", i);
        off += pl;
    }
    FUZZ_CHECK(off == text_len, "the ids stand for %zu of %zu bytes of text", off, text_len);

    // Without the last message and the prompt: a prefix, appended to a held array.
    if (n_msg > 1) {
        int32_t *pre = malloc(sizeof *pre);
        pre[0] = 11;
        size_t n_pre = 1;
        FUZZ_CHECK(chat_build(fuzz_tok, m, n_msg - 1, false, &pre, &n_pre) == VKPHI_OK, "prefix build failed");
        FUZZ_CHECK(pre[0] == 11 && n_pre - 1 <= n_ids && same_ids(pre + 1, ids, n_pre - 1),
                   "a shorter conversation's ids are not a prefix");
        free(pre);
    }

    // Special parsing over the formatted text agrees when no message holds markers.
    if (marker_free) {
        int32_t *re = NULL;
        size_t n_re = 0;
        FUZZ_CHECK(tokenizer_encode(fuzz_tok, text, text_len, true, &re, &n_re) == VKPHI_OK, "encode failed");
        FUZZ_CHECK(n_re == n_ids && same_ids(re, ids, n_ids),
                   "chat_build differs from tokenizing chat_format's text with special parsing");
        free(re);
    }
out:
    free(ids);
    free(text);
    free(m);
    free(buf);
    return 0;
}
