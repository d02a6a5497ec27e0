// SPDX-License-Identifier: MIT
// libFuzzer target for the server's request mapping (run by tests/fuzz.sh): the input
// is a request body, parsed by srv_parse_request for /v1/chat/completions and for
// /v1/completions, with the Phi-4 tokenizer and no HTTP or model. What must hold:
// - a refusal is a well-formed error: status 400 or 404, a type, a non-empty message,
//   and srv_error_json gives a valid UTF-8 JSON object that cJSON parses back to that
//   message (with U+FFFD for bytes of the request that are not UTF-8);
// - an accepted request is within its limits (prompt ids in the vocabulary and
//   shorter than the context, at most 4 non-empty stop strings, biases in range),
//   and the answers built for it (srv_json_response, srv_json_chunk,
//   srv_json_usage_chunk), with the prompt's decoded text as the generated text, are
//   valid UTF-8 JSON that parses back to that text.
// A crash, a sanitizer report or a leak is a finding too.
#include <cjson/cJSON.h>
#include <math.h>

#include "fuzz_common.h"
#include "server/api.h"

static srv_api api;

static cJSON *parse_json(const char *s, const char *what) {
    FUZZ_CHECK(s != NULL, "%s: no JSON", what);
    FUZZ_CHECK(fuzz_utf8_valid(s, strlen(s)), "%s is not valid UTF-8: %s", what, s);
    cJSON *j = cJSON_Parse(s);
    FUZZ_CHECK(cJSON_IsObject(j), "%s does not parse as a JSON object: %s", what, s);
    return j;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_load_tokenizer();
    // A small context, so that "does not fit" is reachable.
    api = (srv_api){fuzz_tok, "phi-4-fuzz", "phi-4-fuzz.gguf", 1700000000, tokenizer_n_vocab(fuzz_tok), 96};
    char *s = srv_json_models(&api);
    cJSON_Delete(parse_json(s, "the model list"));
    free(s);
    s = srv_json_model(&api);
    cJSON_Delete(parse_json(s, "the model object"));
    free(s);
    return 0;
}

// The string at obj.choices[0].<key>[.<sub>], or NULL.
static const char *choice_text(const cJSON *j, const char *key, const char *sub) {
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (sub) v = cJSON_GetObjectItemCaseSensitive(v, sub);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void check_request(const srv_request *q, enum srv_endpoint ep) {
    FUZZ_CHECK(q->ep == ep, "wrong endpoint");
    FUZZ_CHECK(q->n_prompt >= 1 && q->n_prompt < api.n_ctx, "%u prompt tokens", q->n_prompt);
    for (uint32_t i = 0; i < q->n_prompt; i++)
        FUZZ_CHECK(q->prompt[i] >= 0 && (uint32_t)q->prompt[i] < api.n_vocab, "prompt id %d", q->prompt[i]);
    FUZZ_CHECK(q->n_stop <= 4, "%zu stop strings", q->n_stop);
    for (size_t i = 0; i < q->n_stop; i++)
        FUZZ_CHECK(q->stop[i] && q->stop[i][0], "empty stop string %zu", i);
    for (size_t i = 0; i < q->n_bias; i++) {
        float b = q->bias[i].bias;
        FUZZ_CHECK(q->bias[i].token >= 0 && (uint32_t)q->bias[i].token < api.n_vocab, "bias id %d", q->bias[i].token);
        FUZZ_CHECK((b >= -100 && b <= 100) || (isinf(b) && b < 0), "bias %g", (double)b);
    }
    FUZZ_CHECK(!q->include_usage || q->stream, "include_usage without stream");
    FUZZ_CHECK(q->gen.max_tokens == -1 || q->gen.max_tokens >= 1, "max_tokens %d", q->gen.max_tokens);
    const sampler_params *sp = &q->gen.sampling;
    FUZZ_CHECK(sp->temperature >= 0 && sp->temperature <= 2 && sp->top_p >= 0 && sp->top_p <= 1 && sp->min_p >= 0 &&
                   sp->min_p <= 1 && sp->top_k >= 0 && sp->repeat_penalty > 0,
               "sampling settings out of range");
}

static void check_answers(const srv_request *q, enum srv_endpoint ep) {
    char *text = NULL;
    size_t len = 0;
    FUZZ_CHECK(tokenizer_decode(fuzz_tok, q->prompt, q->n_prompt, &text, &len) == VKPHI_OK, "decode failed");
    const bool exact = strlen(text) == len; // cJSON's strings end at a NUL
    srv_reply r = {ep, ep == SRV_EP_CHAT ? "chatcmpl-fuzz" : "cmpl-fuzz", 1700000001, api.model_id,
                   q->stream && q->include_usage};
    srv_usage u = {q->n_prompt, q->n_prompt / 2, 7};
    const char *key = ep == SRV_EP_CHAT ? "message" : "text", *sub = ep == SRV_EP_CHAT ? "content" : NULL;
    const char *ckey = ep == SRV_EP_CHAT ? "delta" : "text";

    char *s = srv_json_response(&r, text, len, GENERATE_FINISH_LENGTH, u);
    cJSON *j = parse_json(s, "the response");
    const char *got = choice_text(j, key, sub);
    FUZZ_CHECK(got && (!exact || !strcmp(got, text)), "the response's text differs from the generated text");
    cJSON_Delete(j);
    free(s);

    s = srv_json_chunk(&r, true, text, len, GENERATE_FINISH_NONE);
    j = parse_json(s, "a chunk");
    got = choice_text(j, ckey, sub);
    FUZZ_CHECK(got && (!exact || !strcmp(got, text)), "the chunk's text differs from the generated text");
    cJSON_Delete(j);
    free(s);

    s = srv_json_chunk(&r, false, "", 0, GENERATE_FINISH_STOP);
    cJSON_Delete(parse_json(s, "the last chunk"));
    free(s);
    s = srv_json_usage_chunk(&r, u);
    cJSON_Delete(parse_json(s, "the usage chunk"));
    free(s);
    free(text);
}

static void check_error(const srv_error *e, const srv_request *q) {
    FUZZ_CHECK(e->status == 400 || e->status == 404, "status %d: %s", e->status, e->message);
    FUZZ_CHECK(e->type && e->type[0], "an error without a type");
    FUZZ_CHECK(memchr(e->message, 0, sizeof e->message) && e->message[0], "an empty or unterminated message");
    FUZZ_CHECK(!q->prompt && !q->stop && !q->bias && !q->n_prompt, "a refused request kept its allocations");
    char *s = srv_error_json(e);
    FUZZ_CHECK(s != NULL, "srv_error_json failed");
    cJSON *j = parse_json(s, "the error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    size_t want_len;
    char *want = fuzz_utf8_replace((const uint8_t *)e->message, strlen(e->message), &want_len);
    FUZZ_CHECK(cJSON_IsString(m) && !strcmp(m->valuestring, want), "the error JSON does not parse back: %s", s);
    free(want);
    cJSON_Delete(j);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int ep = SRV_EP_CHAT; ep <= SRV_EP_COMPLETION; ep++) {
        srv_request q;
        srv_error e = {0};
        if (srv_parse_request(&api, (enum srv_endpoint)ep, (const char *)data, size, &q, &e)) {
            check_request(&q, (enum srv_endpoint)ep);
            check_answers(&q, (enum srv_endpoint)ep);
            srv_request_free(&q);
        } else {
            check_error(&e, &q);
        }
    }
    return 0;
}
