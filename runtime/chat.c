// SPDX-License-Identifier: MIT
// Phi-4's chat template, built as token ids piece by piece.
#include "chat.h"

#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"system", "user", "assistant"};

static int check_messages(const chat_message *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!m[i].role || !m[i].content)
            return vkphi_fail(VKPHI_ERR_ARG, "chat message %zu has no role or no content", i);
        bool known = false;
        for (size_t r = 0; r < sizeof roles / sizeof *roles; r++)
            known |= !strcmp(m[i].role, roles[r]);
        if (!known)
            return vkphi_fail(VKPHI_ERR_ARG, "chat message %zu has role '%s'; Phi-4 knows system, user and assistant",
                              i, m[i].role);
    }
    return VKPHI_OK;
}

// The caller's array may be exactly full, so it grows here one id at a time (three
// markers a message; the contents grow it in bulk inside tokenizer_encode).
static int push(int32_t **ids, size_t *n, int32_t id) {
    int32_t *p = realloc(*ids, (*n + 1) * sizeof *p);
    if (!p) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory building the chat prompt");
    *ids = p;
    p[(*n)++] = id;
    return VKPHI_OK;
}

int chat_build(const tokenizer *t, const chat_message *messages, size_t n_messages, bool add_generation_prompt,
               int32_t **ids, size_t *n_ids) {
    if (!t || !ids || !n_ids || (!messages && n_messages))
        return vkphi_fail(VKPHI_ERR_ARG, "chat_build got a NULL argument");
    if (!*ids) *n_ids = 0;
    int err = check_messages(messages, n_messages);
    if (err) return err;
    const char *names[3] = {"<|im_start|>", "<|im_sep|>", "<|im_end|>"};
    int32_t mark[3];
    for (int k = 0; k < 3; k++) {
        mark[k] = tokenizer_token_id(t, names[k]);
        if (mark[k] < 0 || !tokenizer_is_special(t, mark[k]))
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                              "the vocabulary has no %s special token, so Phi-4's chat format cannot be built",
                              names[k]);
    }
    // Each piece of text is tokenized on its own and the ids joined. This is what
    // tokenizing the whole template with special parsing gives too, as long as the
    // contents hold no marker text: plain text between special tokens is split by
    // itself (tiktoken's rule, and ours), so no regex match ever spans a marker.
    size_t n_turns = n_messages + (add_generation_prompt ? 1 : 0);
    for (size_t i = 0; i < n_turns && !err; i++) {
        bool prompt = i == n_messages;
        const char *role = prompt ? "assistant" : messages[i].role;
        err = push(ids, n_ids, mark[0]);
        if (!err) err = tokenizer_encode(t, role, strlen(role), false, ids, n_ids);
        if (!err) err = push(ids, n_ids, mark[1]);
        if (prompt || err) break;
        err = tokenizer_encode(t, messages[i].content, strlen(messages[i].content), false, ids, n_ids);
        if (!err) err = push(ids, n_ids, mark[2]);
    }
    return err;
}

int chat_format(const chat_message *messages, size_t n_messages, bool add_generation_prompt, char **out,
                size_t *out_len) {
    if (!out || (!messages && n_messages)) return vkphi_fail(VKPHI_ERR_ARG, "chat_format got a NULL argument");
    int err = check_messages(messages, n_messages);
    if (err) return err;
    static const char prompt[] = "<|im_start|>assistant<|im_sep|>";
    size_t len = add_generation_prompt ? sizeof prompt - 1 : 0;
    for (size_t i = 0; i < n_messages; i++)
        len += strlen("<|im_start|><|im_sep|><|im_end|>") + strlen(messages[i].role) + strlen(messages[i].content);
    char *s = malloc(len + 1);
    if (!s) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory formatting the chat prompt");
    size_t at = 0;
    for (size_t i = 0; i < n_messages; i++)
        at += (size_t)sprintf(s + at, "<|im_start|>%s<|im_sep|>%s<|im_end|>", messages[i].role, messages[i].content);
    if (add_generation_prompt) at += (size_t)sprintf(s + at, "%s", prompt);
    *out = s;
    if (out_len) *out_len = at;
    return VKPHI_OK;
}
