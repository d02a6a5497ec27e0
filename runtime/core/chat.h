// SPDX-License-Identifier: MIT
// The chat formats of the Phi-4 family, built as token ids, and the parser that splits
// a model's answer into reasoning, content and tool calls.
//
// Phi-4 (and Phi-4-reasoning): ChatML with <|im_sep|>, no newlines between turns:
//   <|im_start|>system<|im_sep|>{system}<|im_end|><|im_start|>user<|im_sep|>{user}<|im_end|>
//   <|im_start|>assistant<|im_sep|>
// Phi-4-mini (and Phi-4-mini-reasoning), no newlines either; a system message with
// tools carries them before its <|end|>:
//   <|system|>{system}<|tool|>{tools}<|/tool|><|end|><|user|>{user}<|end|><|assistant|>
// Its Jinja writes every role as <|role|>, so a tool's result is <|tool|>{result}<|end|>.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "tokenizer.h"

typedef struct chat_message {
    const char *role;    // "system", "user", "assistant"; Phi-4-mini's also "tool" (a tool's result)
    const char *content; // NUL-terminated UTF-8 (any bytes are tokenized as they are)
    // Phi-4-mini, assistant: the JSON text of the tool calls it made (may be NULL),
    // written after the content as the model writes them: <|tool_call|>…<|/tool_call|>.
    const char *tool_calls;
} chat_message;

enum chat_template {
    CHAT_TEMPLATE_NONE = 0,  // not one we render
    CHAT_TEMPLATE_PHI4,      // ChatML with <|im_sep|>
    CHAT_TEMPLATE_PHI4_MINI, // <|system|>…<|end|>
};

// Recognizes a tokenizer.chat_template text (Jinja) as one of ours; NONE when it is
// NULL or not recognized. The Jinja is not run: a template that writes Phi-4's markers
// and no newlines is Phi-4's (Phi-3's also writes <|end|> but puts newlines after
// them, so it is not taken for Phi-4-mini's).
enum chat_template chat_template_detect(const char *jinja);
// "phi4" (also "chatml") and "phi4-mini"; NONE for any other name.
enum chat_template chat_template_by_name(const char *name);
const char *chat_template_name(enum chat_template tmpl); // "phi4", "phi4-mini", "none"
// The names chat_template_by_name knows, for help texts.
#define CHAT_TEMPLATE_NAMES "phi4, phi4-mini"

// The template to render f's conversations with: the one its tokenizer.chat_template
// is; when that is not one we render, the one named by fallback (may be NULL); when
// the file has no template text, the one its vocabulary has the markers of. Fails
// (VKPHI_ERR_UNSUPPORTED, with the reason) for an unknown template without fallback,
// an unknown fallback name, or a vocabulary that lacks the chosen template's markers.
int chat_template_choose(const gguf_file *f, const tokenizer *t, const char *fallback, enum chat_template *out);

// Appends the token ids of the conversation in template tmpl to *ids (same convention
// as tokenizer_encode: start with *ids = NULL, *n_ids = 0; free() when done). The
// markers are the special tokens themselves; roles and contents are tokenized as plain
// text, so a message that contains "<|im_start|>" or "<|end|>" cannot forge a turn.
// tools (may be NULL) is the JSON text of the tool list, which Phi-4-mini's template
// puts into the first system message (a system message with empty content is made
// first when there is none); Phi-4's template has no place for it (VKPHI_ERR_UNSUPPORTED).
// add_generation_prompt appends the assistant's opening for the model to answer
// (the end-of-text that Phi-4-mini's Jinja adds otherwise is left out, so the ids of
// messages[0..k) are a prefix of those of messages[0..k+1)). Returns VKPHI_OK,
// VKPHI_ERR_ARG for an unknown role or template, VKPHI_ERR_UNSUPPORTED when the
// vocabulary lacks the markers.
int chat_render(const tokenizer *t, enum chat_template tmpl, const chat_message *messages, size_t n_messages,
                const char *tools, bool add_generation_prompt, int32_t **ids, size_t *n_ids);
// chat_render with the template the vocabulary has the markers of (Phi-4's when it
// has <|im_start|>, else Phi-4-mini's when it has <|end|>), without tools.
int chat_build(const tokenizer *t, const chat_message *messages, size_t n_messages, bool add_generation_prompt,
               int32_t **ids, size_t *n_ids);

// The same conversation as text (malloc'd, NUL-terminated), for display and logs. To
// feed the model use chat_render: tokenizing this text with special parsing on would
// let message contents inject markers. chat_format is chat_format_template in Phi-4's.
int chat_format_template(enum chat_template tmpl, const chat_message *messages, size_t n_messages, const char *tools,
                         bool add_generation_prompt, char **out, size_t *out_len);
int chat_format(const chat_message *messages, size_t n_messages, bool add_generation_prompt, char **out,
                size_t *out_len);

// ---- the answer's parts ----
// A streaming splitter for a model's answer: text between <think> and </think> is
// reasoning, text between <|tool_call|> and <|/tool_call|> is a tool call, the rest is
// content; the tags themselves are dropped. Text may arrive in pieces of any size: a
// tag split across pieces is still found (the possible start of a tag is held back
// until the next piece settles it). Whitespace next to the reasoning's tags is dropped
// (after <think>, before and after </think>), as the reference server trims it. An
// answer that ends inside a section gives that section's text as it is.
enum chat_part { CHAT_PART_CONTENT, CHAT_PART_REASONING, CHAT_PART_TOOL_CALL };
// Called with the text of one part (never empty). A tool call's text may come in
// several calls; chat_splitter_n_tool_calls says which tool call it belongs to.
typedef void (*chat_part_fn)(enum chat_part part, const char *text, size_t len, void *user);

typedef struct chat_splitter chat_splitter;
// reasoning: look for <think>…</think>; tool_calls: look for <|tool_call|>…<|/tool_call|>.
// With neither, everything is content. NULL on out of memory.
chat_splitter *chat_splitter_create(bool reasoning, bool tool_calls);
void chat_splitter_destroy(chat_splitter *s);
// Feeds text[0..len); calls fn for each piece that is settled. Returns VKPHI_OK or
// VKPHI_ERR_NOMEM.
int chat_splitter_put(chat_splitter *s, const char *text, size_t len, chat_part_fn fn, void *user);
// Ends the answer: hands out what was held back. *tool_call_open (may be NULL) says
// whether the answer ended inside a tool call. The splitter can then be reused.
int chat_splitter_flush(chat_splitter *s, chat_part_fn fn, void *user, bool *tool_call_open);
// Which part the next text belongs to, and the number of tool calls begun so far.
enum chat_part chat_splitter_state(const chat_splitter *s);
size_t chat_splitter_n_tool_calls(const chat_splitter *s);
