// SPDX-License-Identifier: MIT
// Byte-level BPE tokenizer (GGUF tokenizer.ggml.model = "gpt2", with the cl100k split
// that Phi-4 uses or the o200k split of Phi-4-mini), built from a GGUF file's metadata, and a streaming detokenizer
// that only ever hands out valid UTF-8. No Vulkan here.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct tokenizer tokenizer;

// Reads tokenizer.ggml.{model,pre,tokens,token_type,merges,bos_token_id,eos_token_id}.
// The tokenizer copies what it needs: the file may be closed afterwards. On failure
// (missing key, unsupported model or tokenizer.ggml.pre, inconsistent vocabulary) returns NULL and
// vkphi_last_error() says why.
tokenizer *tokenizer_create(const gguf_file *f);
void tokenizer_destroy(tokenizer *t);

// Appends the ids of text[0..len) to *ids (a malloc'd array of *n_ids entries that
// grows as needed; start with *ids = NULL, *n_ids = 0; free() it when done). The text
// may hold any bytes: invalid UTF-8 becomes byte tokens. When parse_special is true,
// the text of a control or user-defined token (e.g. "<|im_start|>") becomes that
// token; when false it is tokenized as plain text. Returns VKPHI_OK or an error code
// (on error *ids keeps what was appended so far, still to be freed).
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, bool parse_special, int32_t **ids,
                     size_t *n_ids);

uint32_t tokenizer_n_vocab(const tokenizer *t);
int32_t tokenizer_bos(const tokenizer *t); // -1 when the file names none
int32_t tokenizer_eos(const tokenizer *t); // -1 when the file names none
// The id of the token whose text is exactly `piece` (a special token's text, or a
// normal token's decoded bytes); -1 when there is none.
int32_t tokenizer_token_id(const tokenizer *t, const char *piece);
// True for the tokens that end a generation: <|im_end|>, <|endoftext|>, <|end|> and
// the file's eos, whichever of them the vocabulary has.
bool tokenizer_is_eog(const tokenizer *t, int32_t id);
// True for the special tokens that mark up a model's answer and so belong to its text:
// <think>, </think> (reasoning models), <|tool_call|>, <|/tool_call|> (Phi-4-mini).
// Generation streams their text like plain text, for the reasoning and tool-call parsers.
bool tokenizer_is_markup(const tokenizer *t, int32_t id);
// True for control and user-defined tokens (the ones parse_special recognises).
bool tokenizer_is_special(const tokenizer *t, int32_t id);
// The bytes a token stands for (byte-level mapping undone; a special token gives its
// text). Not NUL-terminated in general and not necessarily valid UTF-8 on its own.
// An id outside the vocabulary gives "" with *len = 0.
const char *tokenizer_piece(const tokenizer *t, int32_t id, size_t *len);

// Decodes a whole id array into valid UTF-8 (*out is malloc'd and NUL-terminated,
// *out_len excludes the NUL): bytes that cannot form UTF-8 become U+FFFD, an id
// outside the vocabulary becomes U+FFFD. Returns VKPHI_OK or VKPHI_ERR_NOMEM.
int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n_ids, char **out, size_t *out_len);
// Any bytes made valid UTF-8 by the same rule (U+FFFD for each maximal ill-formed
// subpart; an incomplete sequence at the end, e.g. text cut by a length limit, is
// one U+FFFD), for text from outside that must go out as UTF-8 (the server's error
// messages quote the request). *out is malloc'd and NUL-terminated. Returns VKPHI_OK
// or VKPHI_ERR_NOMEM.
int tokenizer_utf8_repair(const char *text, size_t len, char **out, size_t *out_len);

// ---- streaming detokenizer ----
// Feed ids one at a time as they are generated; each call returns the text that is
// complete so far, always valid UTF-8. An incomplete multi-byte sequence at the end
// of a token is held back until the next token completes it. Bytes that can never be
// valid (a stray continuation byte, an invalid lead byte, a partial sequence broken
// by another byte) come out as U+FFFD, one per maximal ill-formed subpart (the
// Unicode recommendation, as Python's errors="replace" does), and decoding goes on.
typedef struct tokenizer_stream tokenizer_stream;
tokenizer_stream *tokenizer_stream_create(const tokenizer *t); // NULL on out of memory
void tokenizer_stream_destroy(tokenizer_stream *s);
// Returns NUL-terminated text (possibly "") valid until the next call on s; *len
// (may be NULL) gets its length. Never NULL.
const char *tokenizer_stream_put(tokenizer_stream *s, int32_t id, size_t *len);
// Ends the stream: an incomplete tail becomes U+FFFD. The stream can then be reused.
const char *tokenizer_stream_flush(tokenizer_stream *s, size_t *len);
