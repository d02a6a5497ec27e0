// SPDX-License-Identifier: MIT
// OpenAI's request and response objects, read and written with cJSON.
//
// Sampling follows OpenAI's defaults (temperature 1, top_p 1, no top-k, no min-p, no
// penalties), not the CLI's. llama.cpp's extra fields top_k, min_p, repeat_penalty
// and reasoning_format are accepted too. Tools go into the chat template where it has
// a place for them (Phi-4-mini's). Fields this server cannot honour (n > 1, logprobs,
// forced tool choice, images, echo, suffix, JSON response formats) are refused with a
// 400 rather than silently ignored; fields that change nothing here (user, metadata,
// store, parallel_tool_calls, ...) are ignored.
#include "api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "vkphi.h"

#define SRV_MAX_STOP 4 // as OpenAI documents

void srv_error_set(srv_error *err, int status, const char *type, const char *code, const char *param, const char *fmt,
                   ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    err->param = param;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

// A 400 about the request's contents: bad() returns false, bad_field() -1.
__attribute__((format(printf, 4, 0))) static void bad_v(srv_error *err, const char *code, const char *param,
                                                        const char *fmt, va_list ap) {
    err->status = 400;
    err->type = "invalid_request_error";
    err->code = code;
    err->param = param;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

__attribute__((format(printf, 4, 5))) static bool bad(srv_error *err, const char *code, const char *param,
                                                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bad_v(err, code, param, fmt, ap);
    va_end(ap);
    return false;
}

__attribute__((format(printf, 4, 5))) static int bad_field(srv_error *err, const char *code, const char *param,
                                                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bad_v(err, code, param, fmt, ap);
    va_end(ap);
    return -1;
}

static char *print_and_delete(cJSON *root) {
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static cJSON *add_str_or_null(cJSON *obj, const char *key, const char *value) {
    return value ? cJSON_AddStringToObject(obj, key, value) : cJSON_AddNullToObject(obj, key);
}

char *srv_error_json(const srv_error *err) {
    // Messages quote the request, whose strings may hold any bytes (cJSON does not
    // check them), and "%.200s" may cut a character in two: JSON goes out as UTF-8.
    char *msg = NULL;
    if (tokenizer_utf8_repair(err->message, strlen(err->message), &msg, NULL) != VKPHI_OK) return NULL;
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (!e) {
        cJSON_Delete(root);
        free(msg);
        return NULL;
    }
    cJSON_AddStringToObject(e, "message", msg);
    free(msg);
    cJSON_AddStringToObject(e, "type", err->type ? err->type : "server_error");
    add_str_or_null(e, "param", err->param);
    add_str_or_null(e, "code", err->code);
    return print_and_delete(root);
}

// ---- reading fields ----
// Each getter returns 1 when the field is present, 0 when it is absent or null, and
// -1 with *err set when it has the wrong type or is out of range.

static const char *type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "null";
}

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int get_number(const cJSON *obj, const char *key, double lo, double hi, double *out, srv_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v))
        return bad_field(err, "invalid_type", key, "Invalid type for '%s': expected a number, but got %s instead.", key,
                         type_name(v));
    double d = v->valuedouble;
    if (!(d >= lo))
        return bad_field(err, "decimal_below_min_value", key, "Invalid '%s': %g is below the minimum value %g.", key, d,
                         lo);
    if (!(d <= hi))
        return bad_field(err, "decimal_above_max_value", key, "Invalid '%s': %g is above the maximum value %g.", key, d,
                         hi);
    *out = d;
    return 1;
}

static int get_int(const cJSON *obj, const char *key, double lo, double hi, double *out, srv_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble))
        return bad_field(err, "invalid_type", key, "Invalid type for '%s': expected an integer, but got %s instead.",
                         key, cJSON_IsNumber(v) ? "a fractional number" : type_name(v));
    double d = v->valuedouble;
    if (d < lo)
        return bad_field(err, "integer_below_min_value", key,
                         "Invalid '%s': integer below minimum value. Expected a value >= %.0f, but got %.0f instead.",
                         key, lo, d);
    if (d > hi)
        return bad_field(err, "integer_above_max_value", key,
                         "Invalid '%s': integer above maximum value. Expected a value <= %.0f, but got %.0f instead.",
                         key, hi, d);
    *out = d;
    return 1;
}

static int get_bool(const cJSON *obj, const char *key, bool *out, srv_error *err) {
    const cJSON *v = field(obj, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v))
        return bad_field(err, "invalid_type", key, "Invalid type for '%s': expected a boolean, but got %s instead.",
                         key, type_name(v));
    *out = cJSON_IsTrue(v);
    return 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool nomem(srv_error *err) {
    srv_error_set(err, 500, "server_error", NULL, NULL, "The server ran out of memory reading the request.");
    return false;
}

// ---- the request ----

// Refuses fields that ask for something this server does not do.
static bool check_unsupported(const cJSON *root, enum srv_endpoint ep, srv_error *err) {
    double n;
    int r = get_int(root, "n", 1, 1, &n, err);
    if (r < 0) {
        srv_error_set(err, 400, "invalid_request_error", "unsupported_value", "n",
                      "Only n = 1 is supported: this server generates one choice per request.");
        return false;
    }
    const cJSON *v;
    if ((v = field(root, "logprobs")) && !cJSON_IsFalse(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return bad(err, "unsupported_parameter", "logprobs", "'logprobs' is not supported by this server.");
    if ((v = field(root, "top_logprobs")) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
        return bad(err, "unsupported_parameter", "top_logprobs", "'top_logprobs' is not supported by this server.");
    if (ep == SRV_EP_COMPLETION && (v = field(root, "tools")) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
        return bad(err, "unsupported_parameter", "tools", "'tools' is only for /v1/chat/completions.");
    if ((v = field(root, "tool_choice")) &&
        !(cJSON_IsString(v) && (!strcmp(v->valuestring, "auto") || !strcmp(v->valuestring, "none"))))
        return bad(err, "unsupported_value", "tool_choice",
                   "Only tool_choice 'auto' and 'none' are supported by this server: it cannot force a tool call.");
    if ((v = field(root, "functions")) && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
        return bad(err, "unsupported_parameter", "functions", "'functions' is not supported by this server.");
    if ((v = field(root, "response_format"))) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
        if (!cJSON_IsObject(v) || !cJSON_IsString(type))
            return bad(err, "invalid_type", "response_format",
                       "Invalid 'response_format': expected an object with a string 'type'.");
        if (strcmp(type->valuestring, "text") != 0)
            return bad(err, "unsupported_value", "response_format",
                       "response_format type '%.100s' is not supported: only 'text' is.", type->valuestring);
    }
    if (ep == SRV_EP_COMPLETION) {
        if ((v = field(root, "echo")) && !cJSON_IsFalse(v))
            return bad(err, "unsupported_parameter", "echo", "'echo' is not supported by this server.");
        if ((v = field(root, "suffix")) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return bad(err, "unsupported_parameter", "suffix", "'suffix' is not supported by this server.");
        if ((v = field(root, "best_of")) && !(cJSON_IsNumber(v) && v->valuedouble == 1))
            return bad(err, "unsupported_value", "best_of", "Only best_of = 1 is supported by this server.");
    }
    return true;
}

static bool parse_sampling(const srv_api *api, const cJSON *root, srv_request *req, srv_error *err) {
    sampler_params *sp = &req->gen.sampling;
    *sp = sampler_default_params();
    // OpenAI's defaults.
    sp->temperature = 1.0f;
    sp->top_k = 0;
    sp->top_p = 1.0f;
    sp->min_p = 0.0f;
    sp->repeat_penalty = 1.0f;
    sp->presence_penalty = 0.0f;
    sp->frequency_penalty = 0.0f;
    sp->penalize_prompt = false;

    double d;
    int r;
    if ((r = get_number(root, "temperature", 0, 2, &d, err)) < 0) return false;
    if (r) sp->temperature = (float)d;
    if ((r = get_number(root, "top_p", 0, 1, &d, err)) < 0) return false;
    if (r) sp->top_p = (float)d;
    if ((r = get_number(root, "presence_penalty", -2, 2, &d, err)) < 0) return false;
    if (r) sp->presence_penalty = (float)d;
    if ((r = get_number(root, "frequency_penalty", -2, 2, &d, err)) < 0) return false;
    if (r) sp->frequency_penalty = (float)d;
    // llama.cpp's extensions.
    if ((r = get_int(root, "top_k", 0, 1e9, &d, err)) < 0) return false;
    if (r) sp->top_k = (int32_t)d;
    if ((r = get_number(root, "min_p", 0, 1, &d, err)) < 0) return false;
    if (r) sp->min_p = (float)d;
    if ((r = get_number(root, "repeat_penalty", 1e-6, 1e6, &d, err)) < 0) return false;
    if (r) sp->repeat_penalty = (float)d;
    // Penalties count every generated token (OpenAI's "the text so far").
    bool penalties = sp->presence_penalty != 0 || sp->frequency_penalty != 0 || sp->repeat_penalty != 1;
    sp->repeat_last_n = penalties ? (int32_t)api->n_ctx : 0;

    if ((r = get_int(root, "seed", -9223372036854775808.0, 18446744073709551615.0, &d, err)) < 0) return false;
    if (r) {
        sp->seed = d < 0 ? (uint64_t)(int64_t)d : d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    } else {
        uint64_t s = 0;
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) s = (uint64_t)(vkphi_now() * 1e9);
        sp->seed = s;
    }

    // max_completion_tokens is the newer name; it wins when both are given.
    req->gen.max_tokens = -1;
    if ((r = get_int(root, "max_tokens", 1, 1e15, &d, err)) < 0) return false;
    if (r) req->gen.max_tokens = d > INT32_MAX ? INT32_MAX : (int32_t)d;
    if ((r = get_int(root, "max_completion_tokens", 1, 1e15, &d, err)) < 0) return false;
    if (r) req->gen.max_tokens = d > INT32_MAX ? INT32_MAX : (int32_t)d;

    // stop: a string or an array of up to four strings.
    const cJSON *stop = field(root, "stop");
    if (stop) {
        if (!cJSON_IsString(stop) && !cJSON_IsArray(stop))
            return bad(err, "invalid_type", "stop",
                       "Invalid type for 'stop': expected a string or an array of strings, but got %s instead.",
                       type_name(stop));
        int n = cJSON_IsString(stop) ? 1 : cJSON_GetArraySize(stop);
        if (n > SRV_MAX_STOP)
            return bad(err, "array_above_max_length", "stop",
                       "Invalid 'stop': array too long. Expected at most %d strings, but got %d.", SRV_MAX_STOP, n);
        if (n > 0 && !(req->stop = calloc((size_t)n, sizeof *req->stop))) return nomem(err);
        for (int i = 0; i < n; i++) {
            const cJSON *s = cJSON_IsString(stop) ? stop : cJSON_GetArrayItem(stop, i);
            if (!cJSON_IsString(s))
                return bad(err, "invalid_type", "stop",
                           "Invalid type for 'stop[%d]': expected a string, but got %s instead.", i, type_name(s));
            if (!s->valuestring[0]) continue; // an empty stop string would stop at once: ignore it
            if (!(req->stop[req->n_stop] = dup_str(s->valuestring))) return nomem(err);
            req->n_stop++;
        }
    }

    // logit_bias: {"token id": bias in [-100, 100]}.
    const cJSON *bias = field(root, "logit_bias");
    if (bias) {
        if (!cJSON_IsObject(bias))
            return bad(err, "invalid_type", "logit_bias",
                       "Invalid type for 'logit_bias': expected an object, but got %s instead.", type_name(bias));
        int n = cJSON_GetArraySize(bias);
        if (n > 0 && !(req->bias = calloc((size_t)n, sizeof *req->bias))) return nomem(err);
        const cJSON *b;
        cJSON_ArrayForEach(b, bias) {
            char *end;
            errno = 0;
            long id = strtol(b->string, &end, 10);
            if (errno || end == b->string || *end || id < 0 || id >= (long)api->n_vocab)
                return bad(err, "invalid_value", "logit_bias",
                           "Invalid 'logit_bias': key '%.40s' is not a token id of this model (0 to %u).", b->string,
                           api->n_vocab - 1);
            if (!cJSON_IsNumber(b) || !(b->valuedouble >= -100 && b->valuedouble <= 100))
                return bad(err, "invalid_value", "logit_bias",
                           "Invalid 'logit_bias' for token %ld: expected a number from -100 to 100.", id);
            // -100 bans the token as OpenAI describes; smaller magnitudes shift the logit.
            float v = (float)b->valuedouble;
            req->bias[req->n_bias++] = (generate_logit_bias){(int32_t)id, v <= -100 ? -INFINITY : v};
        }
    }

    // The sampler's own checks, so that a bad combination is a 400 now, not a failure later.
    sampler *smp = sampler_create(sp, api->n_vocab);
    if (!smp) return bad(err, "invalid_value", NULL, "%s", vkphi_last_error());
    sampler_destroy(smp);
    return true;
}

// The text of a message's content: a string, or an array of text parts joined with
// newlines. *out is malloc'd.
static bool message_text(const cJSON *content, int i, bool null_ok, char **out, srv_error *err) {
    const char *param = "messages";
    if (!content || cJSON_IsNull(content)) {
        if (!null_ok)
            return bad(err, "missing_required_parameter", param, "Missing required parameter: 'messages[%d].content'.",
                       i);
        return (*out = dup_str("")) ? true : nomem(err);
    }
    if (cJSON_IsString(content)) return (*out = dup_str(content->valuestring)) ? true : nomem(err);
    if (!cJSON_IsArray(content))
        return bad(err, "invalid_type", param,
                   "Invalid type for 'messages[%d].content': expected a string or an array of content parts, but got "
                   "%s instead.",
                   i, type_name(content));
    srv_buf b = {0};
    const cJSON *part;
    int k = 0;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
            srv_buf_free(&b);
            return bad(err, "invalid_type", param,
                       "Invalid 'messages[%d].content[%d]': expected an object with a 'type'.", i, k);
        }
        if (strcmp(type->valuestring, "text") != 0) {
            srv_buf_free(&b);
            return bad(err, "unsupported_value", param,
                       "Invalid 'messages[%d].content[%d]': content parts of type '%.60s' are not supported; this "
                       "model reads text only.",
                       i, k, type->valuestring);
        }
        if (!cJSON_IsString(text)) {
            srv_buf_free(&b);
            return bad(err, "invalid_type", param,
                       "Invalid type for 'messages[%d].content[%d].text': expected a string, but got %s instead.", i, k,
                       type_name(text));
        }
        if ((k > 0 && !srv_buf_puts(&b, "\n")) || !srv_buf_puts(&b, text->valuestring)) {
            srv_buf_free(&b);
            return nomem(err);
        }
        k++;
    }
    if (!b.p && !srv_buf_put(&b, "", 0)) return nomem(err);
    *out = b.p;
    return true;
}

// tools: OpenAI's [{"type": "function", "function": {"name", "description",
// "parameters"}}], handed to the template as the list of function objects that
// Phi-4-mini was trained on ([{"name", "description", "parameters"}]). *out is NULL
// when there are none or tool_choice is "none".
static bool parse_tools(const cJSON *root, char **out, srv_error *err) {
    *out = NULL;
    const cJSON *tools = field(root, "tools"), *choice = field(root, "tool_choice");
    if (!tools) return true;
    if (!cJSON_IsArray(tools))
        return bad(err, "invalid_type", "tools", "Invalid type for 'tools': expected an array, but got %s instead.",
                   type_name(tools));
    if (cJSON_GetArraySize(tools) == 0 || (cJSON_IsString(choice) && !strcmp(choice->valuestring, "none"))) return true;
    cJSON *list = cJSON_CreateArray();
    if (!list) return nomem(err);
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *name = fn ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
        if (!cJSON_IsObject(t) || !cJSON_IsString(type) || strcmp(type->valuestring, "function") ||
            !cJSON_IsObject(fn) || !cJSON_IsString(name)) {
            cJSON_Delete(list);
            return bad(err, "invalid_value", "tools",
                       "Invalid 'tools[%d]': expected {\"type\": \"function\", \"function\": {\"name\": ...}}.", i);
        }
        cJSON *copy = cJSON_Duplicate(fn, true);
        if (!copy || !cJSON_AddItemToArray(list, copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(list);
            return nomem(err);
        }
        i++;
    }
    *out = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    return *out ? true : nomem(err);
}

// reasoning_format: llama.cpp's names; "none" keeps <think> sections in the content.
static int parse_reasoning(const cJSON *root, bool *reasoning, srv_error *err) {
    *reasoning = true;
    const cJSON *v = field(root, "reasoning_format");
    if (!v) return 0;
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "none") && strcmp(v->valuestring, "auto") &&
                               strcmp(v->valuestring, "deepseek") && strcmp(v->valuestring, "deepseek-legacy")))
        return bad_field(err, "invalid_value", "reasoning_format",
                         "Invalid 'reasoning_format': expected 'none', 'auto' or 'deepseek'.");
    *reasoning = strcmp(v->valuestring, "none") != 0;
    return 1;
}

// An assistant message's tool_calls (OpenAI's shape, arguments a JSON string) as the
// model writes them inside <|tool_call|>: [{"name": ..., "arguments": {...}}].
static bool history_calls(const cJSON *tc, int i, char **out, srv_error *err) {
    if (!cJSON_IsArray(tc))
        return bad(err, "invalid_type", "messages", "Invalid type for 'messages[%d].tool_calls': expected an array.",
                   i);
    if (cJSON_GetArraySize(tc) == 0) return true;
    cJSON *list = cJSON_CreateArray();
    if (!list) return nomem(err);
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, tc) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = fn ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
        const cJSON *args = fn ? cJSON_GetObjectItemCaseSensitive(fn, "arguments") : NULL;
        if (!cJSON_IsObject(fn) || !cJSON_IsString(name) || (args && !cJSON_IsString(args))) {
            cJSON_Delete(list);
            return bad(err, "invalid_value", "messages",
                       "Invalid 'messages[%d].tool_calls[%d]': expected {\"function\": {\"name\": ..., \"arguments\": "
                       "\"...\"}}.",
                       i, k);
        }
        cJSON *one = cJSON_CreateObject();
        // Arguments that are JSON go in as the object the model wrote; others as the string.
        cJSON *parsed = args ? cJSON_Parse(args->valuestring) : cJSON_CreateObject();
        if (!parsed && args) parsed = cJSON_CreateString(args->valuestring);
        if (!one || !parsed || !cJSON_AddItemToArray(list, one) ||
            !cJSON_AddStringToObject(one, "name", name->valuestring) ||
            !cJSON_AddItemToObject(one, "arguments", parsed)) {
            cJSON_Delete(list);
            return nomem(err);
        }
        k++;
    }
    *out = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    return *out ? true : nomem(err);
}

static bool parse_messages(const srv_api *api, const cJSON *root, srv_request *req, srv_error *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs || cJSON_IsNull(msgs))
        return bad(err, "missing_required_parameter", "messages", "Missing required parameter: 'messages'.");
    if (!cJSON_IsArray(msgs))
        return bad(err, "invalid_type", "messages",
                   "Invalid type for 'messages': expected an array, but got %s instead.", type_name(msgs));
    int n = cJSON_GetArraySize(msgs);
    if (n == 0)
        return bad(err, "empty_array", "messages",
                   "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
                   "instead.");
    chat_message *cm = calloc((size_t)n, sizeof *cm);
    char **texts = calloc((size_t)n, sizeof *texts), **calls = calloc((size_t)n, sizeof *calls);
    bool ok = cm && texts && calls;
    if (!ok) nomem(err);
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (!ok) break;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m)) {
            ok = bad(err, "invalid_type", "messages",
                     "Invalid type for 'messages[%d]': expected an object, but got %s instead.", i, type_name(m));
            break;
        }
        if (!cJSON_IsString(role)) {
            ok = bad(err, role ? "invalid_type" : "missing_required_parameter", "messages",
                     "Invalid 'messages[%d].role': expected one of 'system', 'developer', 'user', 'assistant'.", i);
            break;
        }
        const char *r = role->valuestring;
        if (!strcmp(r, "developer")) r = "system"; // OpenAI's newer name for the system turn
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") && strcmp(r, "tool")) {
            ok = bad(err, "invalid_value", "messages",
                     "Invalid 'messages[%d].role': '%.40s' is not supported; expected one of 'system', 'developer', "
                     "'user', 'assistant', 'tool'.",
                     i, role->valuestring);
            break;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!(ok = message_text(content, i, !strcmp(r, "assistant"), &texts[i], err))) break;
        cm[i].role = r;
        cm[i].content = texts[i];
        const cJSON *tc = field(m, "tool_calls");
        if (tc && !strcmp(r, "assistant") && !(ok = history_calls(tc, i, &calls[i], err))) break;
        cm[i].tool_calls = calls[i];
        i++;
    }
    char *tools = NULL;
    if (ok) ok = parse_tools(root, &tools, err);
    if (ok) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int rc = api->tmpl != CHAT_TEMPLATE_NONE
                     ? chat_render(api->t, api->tmpl, cm, (size_t)n, tools, true, &ids, &n_ids)
                 : tools ? chat_render(api->t, CHAT_TEMPLATE_PHI4_MINI, cm, (size_t)n, tools, true, &ids, &n_ids)
                         : chat_build(api->t, cm, (size_t)n, true, &ids, &n_ids);
        req->tool_calls = tools != NULL;
        if (rc != VKPHI_OK) {
            free(ids);
            ok = bad(err, "invalid_value", "messages", "%s", vkphi_last_error());
        } else {
            req->prompt = ids;
            req->n_prompt = (uint32_t)n_ids;
        }
    }
    for (int k = 0; texts && k < n; k++)
        free(texts[k]);
    for (int k = 0; calls && k < n; k++)
        free(calls[k]);
    free(texts);
    free(calls);
    free(cm);
    free(tools);
    return ok;
}

// prompt: a string, an array of token ids, or an array holding one of those.
static bool parse_prompt(const srv_api *api, const cJSON *root, srv_request *req, srv_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p || cJSON_IsNull(p))
        return bad(err, "missing_required_parameter", "prompt", "Missing required parameter: 'prompt'.");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) {
        const cJSON *only = cJSON_GetArrayItem(p, 0);
        if (cJSON_IsString(only) || cJSON_IsArray(only)) p = only;
    }
    if (cJSON_IsString(p)) {
        int32_t *ids = NULL;
        size_t n = 0;
        // The caller writes the whole prompt, so the text of special tokens
        // (<|im_start|> ...) stands for them, as in a hand-written template.
        if (tokenizer_encode(api->t, p->valuestring, strlen(p->valuestring), true, &ids, &n) != VKPHI_OK) {
            free(ids);
            return bad(err, "invalid_value", "prompt", "%s", vkphi_last_error());
        }
        req->prompt = ids;
        req->n_prompt = (uint32_t)n;
    } else if (cJSON_IsArray(p)) {
        int n = cJSON_GetArraySize(p);
        if (n > 0 && !(req->prompt = malloc(sizeof(int32_t) * (size_t)n))) return nomem(err);
        const cJSON *v;
        cJSON_ArrayForEach(v, p) {
            if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 ||
                v->valuedouble >= api->n_vocab)
                return bad(err, "invalid_value", "prompt",
                           "Invalid 'prompt': expected a string, or token ids from 0 to %u (one prompt per request).",
                           api->n_vocab - 1);
            req->prompt[req->n_prompt++] = (int32_t)v->valuedouble;
        }
    } else {
        return bad(err, "invalid_type", "prompt",
                   "Invalid type for 'prompt': expected a string or an array of token ids, but got %s instead.",
                   type_name(p));
    }
    if (req->n_prompt == 0) {
        // Nothing to continue from: start from <|endoftext|>, the document boundary.
        int32_t bos = tokenizer_bos(api->t);
        if (bos < 0) bos = tokenizer_token_id(api->t, "<|endoftext|>");
        if (bos < 0) return bad(err, "invalid_value", "prompt", "The prompt is empty.");
        free(req->prompt);
        if (!(req->prompt = malloc(sizeof(int32_t)))) return nomem(err);
        req->prompt[0] = bos;
        req->n_prompt = 1;
    }
    return true;
}

// cJSON's strings are C strings: "\u0000" would silently cut a prompt, a message or a
// stop string short there. JSON has backslashes only inside strings, so a scan that
// skips each escaped character finds every such escape.
static bool has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4)) return true;
        i++;
    }
    return false;
}

bool srv_parse_request(const srv_api *api, enum srv_endpoint ep, const char *body, size_t len, srv_request *req,
                       srv_error *err) {
    memset(req, 0, sizeof *req);
    req->ep = ep;
    req->gen = generate_default_params();
    req->gen.force = api->force;
    req->gen.n_force = api->n_force;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return bad(err, NULL, NULL,
                   "We could not parse the JSON body of your request: it is not valid JSON (error at byte %zu). The "
                   "API expects a JSON object.",
                   at);
    }
    bool ok = false;
    const cJSON *model;
    if (end && (size_t)(end - body) < len) {
        // cJSON stops after the first value: anything but whitespace after it is an error.
        for (const char *p = end; p < body + len; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                bad(err, NULL, NULL,
                    "We could not parse the JSON body of your request: unexpected text after the JSON value (at byte "
                    "%zu).",
                    (size_t)(p - body));
                goto done;
            }
    }
    if (!cJSON_IsObject(root)) {
        bad(err, "invalid_type", NULL, "The request body must be a JSON object, not %s.", type_name(root));
        goto done;
    }
    if (has_nul_escape(body, end ? (size_t)(end - body) : len)) {
        bad(err, "invalid_value", NULL,
            "The request holds a NUL character (\\u0000) in a string; this server does not accept NUL in text.");
        goto done;
    }
    model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model || cJSON_IsNull(model)) {
        bad(err, "missing_required_parameter", "model", "You must provide a model parameter.");
        goto done;
    }
    if (!cJSON_IsString(model)) {
        bad(err, "invalid_type", "model", "Invalid type for 'model': expected a string, but got %s instead.",
            type_name(model));
        goto done;
    }
    if (!srv_model_matches(api, model->valuestring)) {
        srv_error_set(err, 404, "invalid_request_error", "model_not_found", "model",
                      "The model '%.200s' does not exist. This server runs '%s'.", model->valuestring, api->model_id);
        goto done;
    }
    if (!check_unsupported(root, ep, err)) goto done;
    if (get_bool(root, "stream", &req->stream, err) < 0) goto done;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) {
            bad(err, "invalid_type", "stream_options",
                "Invalid type for 'stream_options': expected an object, but got %s instead.", type_name(so));
            goto done;
        }
        if (get_bool(so, "include_usage", &req->include_usage, err) < 0) goto done;
        if (!req->stream) {
            bad(err, "invalid_value", "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
            goto done;
        }
    }
    if (!parse_sampling(api, root, req, err)) goto done;
    if (ep == SRV_EP_CHAT) {
        if (api->tmpl_error) {
            srv_error_set(err, 400, "invalid_request_error", "unsupported_chat_template", "messages", "%s",
                          api->tmpl_error);
            goto done;
        }
        if (parse_reasoning(root, &req->reasoning, err) < 0) goto done;
    }
    if (!(ep == SRV_EP_CHAT ? parse_messages(api, root, req, err) : parse_prompt(api, root, req, err))) goto done;
    if (req->n_prompt >= api->n_ctx) {
        bad(err, "context_length_exceeded", ep == SRV_EP_CHAT ? "messages" : "prompt",
            "This model's maximum context length is %u tokens. However, your %s resulted in %u tokens, which leaves "
            "no room for a completion. Please shorten it (or start the server with a larger -c).",
            api->n_ctx, ep == SRV_EP_CHAT ? "messages" : "prompt", req->n_prompt);
        goto done;
    }
    ok = true;
done:
    cJSON_Delete(root);
    if (!ok) srv_request_free(req);
    return ok;
}

void srv_request_free(srv_request *req) {
    free(req->prompt);
    for (size_t i = 0; i < req->n_stop; i++)
        free(req->stop[i]);
    free(req->stop);
    free(req->bias);
    req->prompt = NULL;
    req->stop = NULL;
    req->bias = NULL;
    req->n_prompt = 0;
    req->n_stop = req->n_bias = 0;
}

bool srv_model_matches(const srv_api *api, const char *name) {
    return !strcmp(name, api->model_id) || (api->model_file && !strcmp(name, api->model_file));
}

// ---- responses ----

// text[0..len) as a JSON string literal: exact even for NUL bytes, which cJSON's
// C strings cannot hold. The text is valid UTF-8 (the detokenizer makes it so).
static cJSON *json_text(const char *text, size_t len) {
    srv_buf b = {0};
    bool ok = srv_buf_put(&b, "\"", 1);
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char esc[8];
        switch (c) {
        case '"':
            ok = srv_buf_put(&b, "\\\"", 2);
            break;
        case '\\':
            ok = srv_buf_put(&b, "\\\\", 2);
            break;
        case '\n':
            ok = srv_buf_put(&b, "\\n", 2);
            break;
        case '\r':
            ok = srv_buf_put(&b, "\\r", 2);
            break;
        case '\t':
            ok = srv_buf_put(&b, "\\t", 2);
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                ok = srv_buf_put(&b, esc, 6);
            } else {
                ok = srv_buf_put(&b, &text[i], 1);
            }
        }
    }
    ok = ok && srv_buf_put(&b, "\"", 1);
    cJSON *raw = ok ? cJSON_CreateRaw(b.p) : NULL;
    srv_buf_free(&b);
    return raw;
}

static const char *finish_name(enum generate_finish f) {
    return f == GENERATE_FINISH_LENGTH ? "length" : f == GENERATE_FINISH_NONE ? NULL : "stop";
}

static cJSON *usage_json(srv_usage u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", u.prompt);
    cJSON_AddNumberToObject(o, "completion_tokens", u.completion);
    cJSON_AddNumberToObject(o, "total_tokens", (double)u.prompt + u.completion);
    cJSON *d = cJSON_AddObjectToObject(o, "prompt_tokens_details");
    if (d) cJSON_AddNumberToObject(d, "cached_tokens", u.cached);
    return o;
}

static cJSON *reply_head(const srv_reply *r, const char *object) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", r->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)r->created);
    cJSON_AddStringToObject(root, "model", r->model);
    return root;
}

char *srv_json_response(const srv_reply *r, const char *text, size_t len, enum generate_finish finish, srv_usage u) {
    bool chat = r->ep == SRV_EP_CHAT;
    cJSON *root = reply_head(r, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", json_text(text, len));
        cJSON_AddNullToObject(msg, "refusal");
    } else {
        cJSON_AddItemToObject(c, "text", json_text(text, len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    add_str_or_null(c, "finish_reason", finish_name(finish));
    cJSON_AddItemToObject(root, "usage", usage_json(u));
    return print_and_delete(root);
}

char *srv_json_chunk(const srv_reply *r, bool role, const char *text, size_t len, enum generate_finish finish) {
    bool chat = r->ep == SRV_EP_CHAT;
    cJSON *root = reply_head(r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *delta = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(delta, "role", "assistant");
        if (role || len) cJSON_AddItemToObject(delta, "content", json_text(text, len));
    } else {
        cJSON_AddItemToObject(c, "text", json_text(text, len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    add_str_or_null(c, "finish_reason", finish_name(finish));
    if (r->usage_field) cJSON_AddNullToObject(root, "usage");
    return print_and_delete(root);
}

char *srv_json_chat_response(const srv_reply *r, const srv_answer *a, enum generate_finish finish, srv_usage u) {
    cJSON *root = reply_head(r, "chat.completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    // With tool calls and nothing else, content is null as in OpenAI's answers.
    if (a->tool_calls && !a->content_len)
        cJSON_AddNullToObject(msg, "content");
    else
        cJSON_AddItemToObject(msg, "content", json_text(a->content, a->content_len));
    if (a->reasoning) cJSON_AddItemToObject(msg, "reasoning_content", json_text(a->reasoning, a->reasoning_len));
    if (a->tool_calls) cJSON_AddItemToObject(msg, "tool_calls", cJSON_Parse(a->tool_calls));
    cJSON_AddNullToObject(msg, "refusal");
    cJSON_AddNullToObject(c, "logprobs");
    add_str_or_null(c, "finish_reason", a->tool_calls ? "tool_calls" : finish_name(finish));
    cJSON_AddItemToObject(root, "usage", usage_json(u));
    return print_and_delete(root);
}

static cJSON *chat_chunk_head(const srv_reply *r, cJSON **delta, const char *finish) {
    cJSON *root = reply_head(r, "chat.completion.chunk");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    *delta = cJSON_AddObjectToObject(c, "delta");
    cJSON_AddNullToObject(c, "logprobs");
    add_str_or_null(c, "finish_reason", finish);
    if (r->usage_field) cJSON_AddNullToObject(root, "usage");
    return root;
}

char *srv_json_chat_delta(const srv_reply *r, const char *field_name, const char *text, size_t len) {
    cJSON *delta, *root = chat_chunk_head(r, &delta, NULL);
    cJSON_AddItemToObject(delta, field_name, json_text(text, len));
    return print_and_delete(root);
}

char *srv_json_tool_calls_chunk(const srv_reply *r, const char *tool_calls) {
    cJSON *delta, *root = chat_chunk_head(r, &delta, NULL);
    cJSON *calls = cJSON_Parse(tool_calls), *call;
    int i = 0;
    cJSON_ArrayForEach(call, calls) { cJSON_AddNumberToObject(call, "index", i++); }
    cJSON_AddItemToObject(delta, "tool_calls", calls);
    return print_and_delete(root);
}

char *srv_json_tool_calls_finish(const srv_reply *r) {
    cJSON *delta, *root = chat_chunk_head(r, &delta, "tool_calls");
    return print_and_delete(root);
}

// One call: {"name": "...", "arguments": {...} or "..."} ("parameters" also read).
static cJSON *tool_call(const cJSON *o, int index) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!args) args = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !name->valuestring[0] ||
        (args && !cJSON_IsObject(args) && !cJSON_IsString(args)))
        return NULL;
    char *args_text = !args                  ? dup_str("{}")
                      : cJSON_IsString(args) ? dup_str(args->valuestring)
                                             : cJSON_PrintUnformatted(args);
    cJSON *call = cJSON_CreateObject(), *fn;
    char id[40];
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint64_t)(vkphi_now() * 1e9);
    snprintf(id, sizeof id, "call_%016llx%02x", (unsigned long long)rnd, index & 0xff);
    bool ok = args_text && call && cJSON_AddStringToObject(call, "id", id) &&
              cJSON_AddStringToObject(call, "type", "function") && (fn = cJSON_AddObjectToObject(call, "function")) &&
              cJSON_AddStringToObject(fn, "name", name->valuestring) &&
              cJSON_AddStringToObject(fn, "arguments", args_text);
    free(args_text);
    if (!ok) {
        cJSON_Delete(call);
        return NULL;
    }
    return call;
}

char *srv_tool_calls(const char *text, size_t len) {
    cJSON *calls = cJSON_CreateArray();
    const char *p = text, *end = text + len;
    bool ok = calls != NULL;
    int n = 0;
    while (ok) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p == end) break;
        const char *stop = NULL;
        cJSON *v = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, false);
        if (!v || !stop || stop <= p) {
            cJSON_Delete(v);
            ok = false;
            break;
        }
        p = stop;
        if (cJSON_IsObject(v)) {
            cJSON *c = tool_call(v, n);
            ok = c && cJSON_AddItemToArray(calls, c);
            n += ok;
        } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
            const cJSON *o;
            cJSON_ArrayForEach(o, v) {
                cJSON *c = ok ? tool_call(o, n) : NULL;
                ok = c && cJSON_AddItemToArray(calls, c);
                n += ok;
            }
        } else {
            ok = false;
        }
        cJSON_Delete(v);
    }
    char *out = ok && n > 0 ? cJSON_PrintUnformatted(calls) : NULL;
    cJSON_Delete(calls);
    return out;
}

char *srv_json_usage_chunk(const srv_reply *r, srv_usage u) {
    cJSON *root = reply_head(r, r->ep == SRV_EP_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(root, "choices");
    cJSON_AddItemToObject(root, "usage", usage_json(u));
    return print_and_delete(root);
}

static cJSON *model_json(const srv_api *api) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", api->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)api->created);
    cJSON_AddStringToObject(m, "owned_by", "vkphi");
    return m;
}

char *srv_json_models(const srv_api *api) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON_AddItemToArray(data, model_json(api));
    return print_and_delete(root);
}

char *srv_json_model(const srv_api *api) { return print_and_delete(model_json(api)); }
