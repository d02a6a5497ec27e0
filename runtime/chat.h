// SPDX-License-Identifier: MIT
// Phi-4's chat format (ChatML with <|im_sep|>, no newlines between turns):
//   <|im_start|>system<|im_sep|>{system}<|im_end|><|im_start|>user<|im_sep|>{user}<|im_end|>
//   <|im_start|>assistant<|im_sep|>
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct chat_message {
    const char *role;    // "system", "user" or "assistant"
    const char *content; // NUL-terminated UTF-8 (any bytes are tokenized as they are)
} chat_message;

// Appends the token ids of the conversation to *ids (same convention as
// tokenizer_encode: start with *ids = NULL, *n_ids = 0; free() when done). The markers
// are the special tokens themselves; roles and contents are tokenized as plain text,
// so a message that contains "<|im_start|>" cannot forge a turn. Every message ends
// with <|im_end|>; add_generation_prompt appends "<|im_start|>assistant<|im_sep|>" for
// the model to answer. The ids of messages[0..k) are a prefix of those of
// messages[0..k+1), so a conversation can be extended without re-encoding.
// Returns VKPHI_OK, VKPHI_ERR_ARG for an unknown role, VKPHI_ERR_UNSUPPORTED when the
// vocabulary lacks the markers.
int chat_build(const tokenizer *t, const chat_message *messages, size_t n_messages, bool add_generation_prompt,
               int32_t **ids, size_t *n_ids);

// The same conversation as text (malloc'd, NUL-terminated), for display and logs. To
// feed the model use chat_build: tokenizing this text with special parsing on would let
// message contents inject markers.
int chat_format(const chat_message *messages, size_t n_messages, bool add_generation_prompt, char **out,
                size_t *out_len);
