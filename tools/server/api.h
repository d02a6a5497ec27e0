// SPDX-License-Identifier: MIT
// OpenAI's API as JSON (cJSON): requests for /v1/chat/completions and
// /v1/completions checked and turned into token ids and generation settings, and
// the response objects (chat.completion, chat.completion.chunk, text_completion,
// model list, error) built.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "vkphi.h"

enum srv_endpoint { SRV_EP_CHAT, SRV_EP_COMPLETION };

// What the request parser needs to know about the loaded model.
typedef struct srv_api {
    const tokenizer *t;
    const char *model_id;   // the name clients use: the file name without ".gguf"
    const char *model_file; // the file name, accepted as a model name too
    long long created;      // the file's modification time (for /v1/models)
    uint32_t n_vocab;       // the model's output size
    uint32_t n_ctx;         // tokens of KV cache per slot
    // The chat format (chat_template_choose). CHAT_TEMPLATE_NONE with no error: the one
    // the vocabulary has the markers of; with an error: chat requests are refused with it.
    enum chat_template tmpl;
    const char *tmpl_error;
    const int32_t *force; // tests (VKPHI_TEST_OUTPUT): every answer begins with these tokens
    size_t n_force;
} srv_api;

// An error as OpenAI reports it: {"error": {"message", "type", "param", "code"}}.
typedef struct srv_error {
    int status;        // HTTP status
    const char *type;  // "invalid_request_error", "server_error"
    const char *code;  // NULL: null
    const char *param; // NULL: null
    char message[512];
} srv_error;

void srv_error_set(srv_error *err, int status, const char *type, const char *code, const char *param, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));
// The error's JSON (malloc'd); NULL only when memory runs out.
char *srv_error_json(const srv_error *err);

// A checked request. The prompt, stop strings and logit biases are malloc'd and
// handed to srv_task_create (which takes them over) or freed by srv_request_free.
typedef struct srv_request {
    enum srv_endpoint ep;
    bool stream, include_usage;
    generate_params gen; // sampling and max_tokens; stop and bias are below
    int32_t *prompt;
    uint32_t n_prompt;
    char **stop;
    size_t n_stop;
    generate_logit_bias *bias;
    size_t n_bias;
    bool reasoning;  // chat: a <think> section goes to reasoning_content ("reasoning_format" not "none")
    bool tool_calls; // chat: tools were given, so <|tool_call|> sections become tool_calls
} srv_request;

// Parses and checks body[0..len). False with *err filled (status 400 or 404) when
// the request is malformed, names another model, or does not fit the context.
bool srv_parse_request(const srv_api *api, enum srv_endpoint ep, const char *body, size_t len, srv_request *req,
                       srv_error *err);
void srv_request_free(srv_request *req);

// ---- responses (malloc'd JSON text; NULL only when memory runs out) ----

typedef struct srv_reply {
    enum srv_endpoint ep;
    const char *id;    // "chatcmpl-..." or "cmpl-..."
    long long created; // Unix time of the request
    const char *model; // the model id
    bool usage_field;  // streaming with include_usage: chunks carry "usage": null
} srv_reply;

// The whole answer: chat.completion or text_completion.
char *srv_json_response(const srv_reply *r, const char *text, size_t len, enum generate_finish finish, srv_usage u);
// One streamed chunk: role (chat's first chunk) and/or text, or the last one with
// finish set (empty delta / text).
char *srv_json_chunk(const srv_reply *r, bool role, const char *text, size_t len, enum generate_finish finish);
// A chat answer in parts (chat_splitter): content, reasoning (reasoning_content when
// not NULL) and tool calls (the JSON array srv_tool_calls made, or NULL).
typedef struct srv_answer {
    const char *content, *reasoning, *tool_calls;
    size_t content_len, reasoning_len;
} srv_answer;
// The whole chat answer; finish_reason "tool_calls" when a->tool_calls is set.
char *srv_json_chat_response(const srv_reply *r, const srv_answer *a, enum generate_finish finish, srv_usage u);
// A streamed chat chunk whose delta has field ("content" or "reasoning_content") = text.
char *srv_json_chat_delta(const srv_reply *r, const char *field, const char *text, size_t len);
// The streamed chunk with the tool calls (delta.tool_calls, each with its index).
char *srv_json_tool_calls_chunk(const srv_reply *r, const char *tool_calls);
// The last streamed chat chunk when the answer is tool calls (finish_reason "tool_calls").
char *srv_json_tool_calls_finish(const srv_reply *r);
// The tool calls in the text of the model's <|tool_call|> sections (joined): each
// section a JSON object {"name", "arguments" (or "parameters")} or an array of them.
// Returns OpenAI's tool_calls array as JSON text ([{"id", "type": "function",
// "function": {"name", "arguments": "<JSON text>"}}], malloc'd), or NULL when the text
// does not parse that way (then it is content).
char *srv_tool_calls(const char *text, size_t len);

// The streamed usage chunk (stream_options.include_usage): no choices.
char *srv_json_usage_chunk(const srv_reply *r, srv_usage u);
// GET /v1/models and GET /v1/models/{id}.
char *srv_json_models(const srv_api *api);
char *srv_json_model(const srv_api *api);
// True when name is the loaded model's id or file name.
bool srv_model_matches(const srv_api *api, const char *name);
