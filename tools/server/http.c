// SPDX-License-Identifier: MIT
// HTTP with libmicrohttpd in thread-per-connection mode: each connection's thread
// may block, so a plain answer waits for its task in the request handler, and a
// stream's content-reader callback waits for the next piece of text. Both poll the
// socket while they wait, so a client that hangs up frees its slot (or its place in
// the queue) at once; a failed write does the same through the completion callbacks.
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vkphi.h"

#define SRV_WAIT_MS 100 // how often a waiting connection checks that its client is still there

enum route { R_NONE, R_HEALTH, R_METRICS, R_MODELS, R_MODEL, R_CHAT, R_COMPLETIONS, R_COUNT };
// How a request ended, for /metrics: its status class, or closed without an answer.
enum reply_class { C_2XX, C_4XX, C_5XX, C_CLOSED, C_COUNT };

struct srv_http {
    struct MHD_Daemon *d;
    atomic_int active; // requests begun and not yet completed
    srv_http_config cfg;
    // NULL until srv_http_ready; set once, before `ready`, and read after it.
    const srv_api *api;
    srv_engine *e;
    atomic_bool ready;
    uint16_t port;
    atomic_ullong requests[R_COUNT][C_COUNT]; // answered requests, for /metrics
};

// One request on a connection (MHD's per-request pointer).
typedef struct conn_req {
    srv_http *h;
    enum route route;
    bool counted; // added to h->requests
    srv_buf body;
    bool too_large;        // the body passed cfg.max_body
    bool oom;              // the body could not be stored
    bool replied;          // a response is queued
    srv_task *task;        // a non-streamed generation this request waits for
    const char *model_arg; // R_MODEL: the id in the URL (points into MHD's url)
} conn_req;

// ---- replies ----

// Counts the request's answer once (the first one queued; C_CLOSED when none was).
static void count_reply(conn_req *r, unsigned status) {
    if (!r || r->counted) return;
    r->counted = true;
    enum reply_class k = status == 0 ? C_CLOSED : status < 400 ? C_2XX : status < 500 ? C_4XX : C_5XX;
    atomic_fetch_add(&r->h->requests[r->route][k], 1);
}

static const char oom_json[] = "{\"error\":{\"message\":\"The server ran out of "
                               "memory.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";

// Queues body (malloc'd, taken over; NULL means out of memory: a JSON 500 instead).
static enum MHD_Result reply_body(struct MHD_Connection *c, conn_req *r, unsigned status, char *body,
                                  const char *type) {
    struct MHD_Response *resp;
    if (body) {
        resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) free(body);
    } else {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        type = "application/json";
        resp = MHD_create_response_from_buffer(sizeof oom_json - 1, (void *)oom_json, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                r->route == R_CHAT || r->route == R_COMPLETIONS ? "POST" : "GET, HEAD");
    if (status == MHD_HTTP_UNAUTHORIZED) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (r) r->replied = true;
    if (ret == MHD_YES) count_reply(r, status);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, conn_req *r, unsigned status, char *json) {
    return reply_body(c, r, status, json, "application/json");
}

static enum MHD_Result reply_error(struct MHD_Connection *c, conn_req *r, const srv_error *err) {
    return reply_json(c, r, (unsigned)err->status, srv_error_json(err));
}

__attribute__((format(printf, 7, 8))) static enum MHD_Result reply_errorf(struct MHD_Connection *c, conn_req *r,
                                                                          int status, const char *type,
                                                                          const char *code, const char *param,
                                                                          const char *fmt, ...) {
    srv_error err = {status, type, code, param, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return reply_error(c, r, &err);
}

// True when the peer has closed its end (or the socket failed).
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static void make_id(char *out, size_t size, const char *prefix) {
    unsigned char b[12];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t x = (uint64_t)(vkphi_now() * 1e9) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
    int n = snprintf(out, size, "%s", prefix);
    for (size_t i = 0; i < sizeof b && n + 2 < (int)size; i++, n += 2)
        snprintf(out + n, size - (size_t)n, "%02x", b[i]);
}

static bool log_requests = true;

static void log_task(const char *path, srv_task *t, const char *how) {
    if (!log_requests) return;
    double queued, run;
    srv_task_times(t, &queued, &run);
    srv_usage u = srv_task_usage(t);
    enum srv_outcome o = srv_task_outcome(t);
    fprintf(stderr, "vkphi serve: %s %s: %u prompt tokens (%u cached), %u generated, %s; %.2f s queued, %.2f s\n", path,
            how, u.prompt, u.cached, u.completion,
            o == SRV_OUTCOME_OK       ? generate_finish_name(srv_task_finish(t))
            : o == SRV_OUTCOME_FAILED ? srv_task_error(t)
                                      : "cancelled",
            queued, run);
}

// ---- a chat answer in parts ----

// The answer's text goes through a chat_splitter: reasoning and content are handed
// out as they come (streaming) or at the end; tool-call sections are kept until the
// end, when they either parse as tool calls or go back into the content as text.
typedef struct srv_parts {
    chat_splitter *split;       // NULL: everything is content
    srv_buf content, reasoning; // not yet handed out
    srv_buf tool_json;          // the sections' text, joined
    srv_buf tool_raw;           // the same with their markers, for when they are text after all
    size_t n_calls;             // sections begun, to put the markers into tool_raw
    bool oom;
} srv_parts;

static void parts_add(enum chat_part part, const char *text, size_t len, void *user) {
    srv_parts *p = user;
    bool ok = true;
    if (part == CHAT_PART_TOOL_CALL) {
        size_t n = chat_splitter_n_tool_calls(p->split);
        for (; ok && p->n_calls < n; p->n_calls++) {
            if (p->n_calls > 0) ok = srv_buf_puts(&p->tool_raw, "<|/tool_call|>");
            ok = ok && srv_buf_puts(&p->tool_raw, "<|tool_call|>");
        }
        ok = ok && srv_buf_put(&p->tool_json, text, len) && srv_buf_put(&p->tool_raw, text, len);
    } else {
        ok = srv_buf_put(part == CHAT_PART_REASONING ? &p->reasoning : &p->content, text, len);
    }
    if (!ok) p->oom = true;
}

static bool parts_init(srv_parts *p, const srv_request *req) {
    memset(p, 0, sizeof *p);
    if (req->ep != SRV_EP_CHAT || (!req->reasoning && !req->tool_calls)) return true;
    p->split = chat_splitter_create(req->reasoning, req->tool_calls);
    return p->split != NULL;
}

static bool parts_put(srv_parts *p, const char *text, size_t len) {
    if (!p->split) {
        if (!srv_buf_put(&p->content, text, len)) p->oom = true;
    } else if (chat_splitter_put(p->split, text, len, parts_add, p) != VKPHI_OK) {
        p->oom = true;
    }
    return !p->oom;
}

// Ends the answer: returns the tool calls (malloc'd JSON) or NULL, in which case any
// tool-call text has been appended to the content.
static char *parts_end(srv_parts *p) {
    bool open = false;
    if (p->split) chat_splitter_flush(p->split, parts_add, p, &open);
    if (!p->n_calls) return NULL;
    char *calls = open ? NULL : srv_tool_calls(p->tool_json.p, p->tool_json.len);
    if (!calls) {
        if ((!open && !srv_buf_puts(&p->tool_raw, "<|/tool_call|>")) ||
            !srv_buf_put(&p->content, p->tool_raw.p, p->tool_raw.len))
            p->oom = true;
    }
    p->n_calls = 0;
    return calls;
}

static void parts_free(srv_parts *p) {
    chat_splitter_destroy(p->split);
    srv_buf_free(&p->content);
    srv_buf_free(&p->reasoning);
    srv_buf_free(&p->tool_json);
    srv_buf_free(&p->tool_raw);
    memset(p, 0, sizeof *p);
}

// ---- streaming ----

typedef struct srv_stream {
    srv_task *task; // its own reference
    struct MHD_Connection *conn;
    srv_reply reply;
    char id[48];
    bool include_usage;
    int phase;   // 0: nothing sent yet; 1: generating; 2: all queued in out
    srv_buf out; // SSE bytes not yet handed to MHD, from out.p + pos
    size_t pos;
    srv_buf text; // scratch for the new text
    const char *path;
    srv_parts parts;      // chat: the answer split into reasoning, content and tool calls
    bool tool_calls_sent; // the last chunk said finish_reason "tool_calls"
} srv_stream;

// Appends "data: JSON\n\n"; JSON is taken over (NULL: out of memory).
static bool sse_put(srv_stream *s, char *json) {
    bool ok = json && srv_buf_puts(&s->out, "data: ") && srv_buf_puts(&s->out, json) && srv_buf_puts(&s->out, "\n\n");
    free(json);
    return ok;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_stream *s = cls;
    for (;;) {
        if (s->pos < s->out.len) {
            size_t n = s->out.len - s->pos < max ? s->out.len - s->pos : max;
            memcpy(buf, s->out.p + s->pos, n);
            s->pos += n;
            return (ssize_t)n;
        }
        srv_buf_clear(&s->out);
        s->pos = 0;
        if (s->phase == 2) return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->phase == 0) {
            // Chat streams open with the assistant's role, as OpenAI's do.
            s->phase = 1;
            if (s->reply.ep == SRV_EP_CHAT && !sse_put(s, srv_json_chunk(&s->reply, true, "", 0, GENERATE_FINISH_NONE)))
                goto fail;
            continue;
        }
        bool oom = false;
        srv_buf_clear(&s->text);
        bool done = srv_task_take(s->task, SRV_WAIT_MS, &s->text, &oom);
        if (oom) goto fail;
        if (s->reply.ep == SRV_EP_CHAT) {
            // Reasoning and content as they settle; tool calls at the end.
            srv_parts *p = &s->parts;
            if (s->text.len && !parts_put(p, s->text.p, s->text.len)) goto fail;
            char *calls = done ? parts_end(p) : NULL;
            if (p->oom) {
                free(calls);
                goto fail;
            }
            bool ok = true;
            if (p->reasoning.len)
                ok = sse_put(s, srv_json_chat_delta(&s->reply, "reasoning_content", p->reasoning.p, p->reasoning.len));
            if (ok && p->content.len)
                ok = sse_put(s, srv_json_chat_delta(&s->reply, "content", p->content.p, p->content.len));
            srv_buf_clear(&p->reasoning);
            srv_buf_clear(&p->content);
            if (ok && calls && srv_task_outcome(s->task) == SRV_OUTCOME_OK)
                ok = sse_put(s, srv_json_tool_calls_chunk(&s->reply, calls)) &&
                     sse_put(s, srv_json_tool_calls_finish(&s->reply));
            if (calls) s->tool_calls_sent = ok;
            free(calls);
            if (!ok) goto fail;
        } else if (s->text.len &&
                   !sse_put(s, srv_json_chunk(&s->reply, false, s->text.p, s->text.len, GENERATE_FINISH_NONE))) {
            goto fail;
        }
        if (done) {
            s->phase = 2;
            if (srv_task_outcome(s->task) == SRV_OUTCOME_OK) {
                srv_usage u = srv_task_usage(s->task);
                if (!s->tool_calls_sent &&
                    !sse_put(s, srv_json_chunk(&s->reply, false, "", 0, srv_task_finish(s->task))))
                    goto fail;
                if (s->include_usage && !sse_put(s, srv_json_usage_chunk(&s->reply, u))) goto fail;
                if (!srv_buf_puts(&s->out, "data: [DONE]\n\n")) goto fail;
            } else {
                // OpenAI's clients raise an error for an event that carries one.
                bool failed = srv_task_outcome(s->task) == SRV_OUTCOME_FAILED;
                srv_error err = {failed ? 500 : 503, "server_error", NULL, NULL, ""};
                snprintf(err.message, sizeof err.message, "%s", srv_task_error(s->task));
                if (!sse_put(s, srv_error_json(&err))) goto fail;
            }
        } else if (!s->text.len && client_gone(s->conn)) {
            goto fail;
        }
    }
fail:
    srv_task_cancel(s->task);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

// MHD is done with the response: the stream ended, failed, or the client left.
static void stream_free(void *cls) {
    srv_stream *s = cls;
    srv_task_cancel(s->task); // no-op once it is done
    bool ignored;
    srv_buf_clear(&s->text);
    srv_task_take(s->task, 0, &s->text, &ignored);
    // The task may still be finishing its current step: wait for its end to log it.
    while (!srv_task_take(s->task, 1000, &s->text, &ignored))
        srv_buf_clear(&s->text);
    log_task(s->path, s->task, s->phase == 2 ? "streamed" : "stream closed early");
    srv_task_release(s->task);
    srv_buf_free(&s->out);
    srv_buf_free(&s->text);
    parts_free(&s->parts);
    free(s);
}

// ---- the generation endpoints ----

static enum MHD_Result handle_generate(srv_http *h, struct MHD_Connection *c, conn_req *r, const char *path) {
    enum srv_endpoint ep = r->route == R_CHAT ? SRV_EP_CHAT : SRV_EP_COMPLETION;
    srv_request req;
    srv_error err;
    if (!srv_parse_request(h->api, ep, r->body.p ? r->body.p : "", r->body.len, &req, &err))
        return reply_error(c, r, &err);
    srv_buf_free(&r->body);
    srv_task *t = srv_task_create(h->e, req.prompt, req.n_prompt, &req.gen, req.stop, req.n_stop, req.bias, req.n_bias);
    if (!t) {
        srv_request_free(&req);
        return reply_json(c, r, 500, NULL);
    }
    r->task = t; // the request's reference, released when the request completes
    srv_reply reply = {ep, NULL, (long long)time(NULL), h->api->model_id, req.include_usage};
    char id[48];
    make_id(id, sizeof id, ep == SRV_EP_CHAT ? "chatcmpl-" : "cmpl-");
    reply.id = id;

    if (!srv_engine_submit(t))
        return reply_errorf(c, r, 503, "server_error", "server_shutting_down", NULL, "The server is shutting down.");

    if (req.stream) {
        srv_stream *s = calloc(1, sizeof *s);
        if (!s) {
            srv_task_cancel(t);
            return reply_json(c, r, 500, NULL);
        }
        if (!parts_init(&s->parts, &req)) {
            free(s);
            srv_task_cancel(t);
            return reply_json(c, r, 500, NULL);
        }
        srv_task_retain(t);
        s->task = t;
        s->conn = c;
        s->reply = reply;
        snprintf(s->id, sizeof s->id, "%s", id);
        s->reply.id = s->id;
        s->include_usage = req.include_usage;
        s->path = ep == SRV_EP_CHAT ? "/v1/chat/completions" : "/v1/completions";
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
        if (!resp) {
            stream_free(s);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        r->replied = true;
        if (ret == MHD_YES) count_reply(r, 200); // when its headers go: the stream itself may still fail
        return ret;
    }

    // Not streamed: wait here (this connection's own thread) for the whole answer.
    srv_buf text = {0};
    bool oom = false;
    while (!srv_task_take(t, SRV_WAIT_MS, &text, &oom)) {
        if (client_gone(c)) {
            srv_task_cancel(t);
            while (!srv_task_take(t, 1000, &text, &oom))
                srv_buf_clear(&text);
            log_task(path, t, "closed by the client");
            srv_buf_free(&text);
            return MHD_NO; // close the connection
        }
    }
    log_task(path, t, "answered");
    enum MHD_Result ret;
    enum srv_outcome o = srv_task_outcome(t);
    if (oom) {
        ret = reply_json(c, r, 500, NULL);
    } else if (o == SRV_OUTCOME_OK && ep == SRV_EP_CHAT) {
        srv_parts p;
        char *calls = NULL;
        bool ok = parts_init(&p, &req) && parts_put(&p, text.p ? text.p : "", text.len);
        if (ok) calls = parts_end(&p);
        if (!ok || p.oom) {
            ret = reply_json(c, r, 500, NULL);
        } else {
            srv_answer a = {p.content.p ? p.content.p : "", NULL, calls, p.content.len, 0};
            if (p.reasoning.len) { // only answers that had a <think> section carry the field
                a.reasoning = p.reasoning.p ? p.reasoning.p : "";
                a.reasoning_len = p.reasoning.len;
            }
            ret = reply_json(c, r, 200, srv_json_chat_response(&reply, &a, srv_task_finish(t), srv_task_usage(t)));
        }
        free(calls);
        parts_free(&p);
    } else if (o == SRV_OUTCOME_OK) {
        ret = reply_json(
            c, r, 200,
            srv_json_response(&reply, text.p ? text.p : "", text.len, srv_task_finish(t), srv_task_usage(t)));
    } else {
        bool failed = o == SRV_OUTCOME_FAILED;
        ret = reply_errorf(c, r, failed ? 500 : 503, "server_error", failed ? NULL : "server_shutting_down", NULL, "%s",
                           srv_task_error(t));
    }
    srv_buf_free(&text);
    return ret;
}

// ---- routing ----

// Strips "/v1" and one trailing slash; returns the route and the methods it takes.
static enum route find_route(const char *url, bool *post, const char **model_arg) {
    char path[256];
    if (!strncmp(url, "/v1/", 4) || !strcmp(url, "/v1")) url += 3;
    size_t n = strlen(url);
    if (n >= sizeof path) return R_NONE;
    memcpy(path, url, n + 1);
    if (n > 1 && path[n - 1] == '/') path[--n] = 0;
    *post = false;
    if (!strcmp(path, "/health")) return R_HEALTH;
    if (!strcmp(path, "/metrics")) return R_METRICS;
    if (!strcmp(path, "/models")) return R_MODELS;
    if (!strncmp(path, "/models/", 8) && path[8]) {
        *model_arg = url + 8; // the id may itself hold no '/' worth stripping: use it as given
        return R_MODEL;
    }
    *post = true;
    if (!strcmp(path, "/chat/completions")) return R_CHAT;
    if (!strcmp(path, "/completions")) return R_COMPLETIONS;
    return R_NONE;
}

// Compares without an early exit, so the time taken says nothing about the key.
static bool key_equal(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned diff = na != nb;
    for (size_t i = 0; i < nb; i++)
        diff |= (unsigned char)(i < na ? a[i] : 0) ^ (unsigned char)b[i];
    return diff == 0;
}

static bool authorized(srv_http *h, struct MHD_Connection *c, bool *given) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    *given = auth && *auth;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return false;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return key_equal(auth, h->cfg.api_key);
}

// ---- /metrics: Prometheus's text format, version 0.0.4 ----

// Appends one formatted piece (under 512 bytes); once memory has run out, b->len is
// SIZE_MAX and nothing more is appended.
__attribute__((format(printf, 2, 3))) static void putf(srv_buf *b, const char *fmt, ...) {
    if (b->len == SIZE_MAX) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && !srv_buf_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1)) b->len = SIZE_MAX;
}

static void metric(srv_buf *b, const char *name, const char *type, const char *help) {
    putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

// Every series is written, zeros included, so that rate() and alerts see them from
// the first scrape. Counters are totals since the server started; a rate over
// vkphi_generated_tokens_total is the server's generation throughput, and
// vkphi_generated_tokens_per_second is the same over the last few seconds for a
// glance without PromQL.
static char *metrics_text(srv_http *h) {
    static const char *const route_label[R_COUNT] = {
        "other", "/health", "/metrics", "/v1/models", "/v1/models/{id}", "/v1/chat/completions", "/v1/completions"};
    static const char *const class_label[C_COUNT] = {"2xx", "4xx", "5xx", "closed"};
    bool ready = atomic_load(&h->ready);
    srv_stats st = {0};
    if (ready) srv_engine_stats(h->e, &st);
    srv_buf b = {0};
    metric(&b, "vkphi_ready", "gauge", "1 once the model is loaded and requests are served, 0 while it loads.");
    putf(&b, "vkphi_ready %d\n", ready ? 1 : 0);
    metric(&b, "vkphi_requests_total", "counter",
           "HTTP requests answered, by endpoint and status class (closed: the client left before an answer).");
    for (int i = 0; i < R_COUNT; i++)
        for (int k = 0; k < C_COUNT; k++)
            putf(&b, "vkphi_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", route_label[i], class_label[k],
                 (unsigned long long)atomic_load(&h->requests[i][k]));
    metric(&b, "vkphi_generations_total", "counter", "Generation requests that ran on a slot and ended.");
    putf(&b, "vkphi_generations_total %llu\n", (unsigned long long)st.tasks);
    metric(&b, "vkphi_prompt_tokens_total", "counter", "Prompt tokens of the generations that ended.");
    putf(&b, "vkphi_prompt_tokens_total %llu\n", (unsigned long long)st.prompt_tokens);
    metric(&b, "vkphi_prompt_tokens_cached_total", "counter",
           "Of those, tokens reused from a slot's cache and not evaluated again.");
    putf(&b, "vkphi_prompt_tokens_cached_total %llu\n", (unsigned long long)st.cached_tokens);
    metric(&b, "vkphi_generated_tokens_total", "counter", "Tokens generated (sampled), an end token included.");
    putf(&b, "vkphi_generated_tokens_total %llu\n", (unsigned long long)st.generated_tokens);
    metric(&b, "vkphi_slot_seconds_total", "counter", "Seconds the ended generations held their slots, summed.");
    putf(&b, "vkphi_slot_seconds_total %.6f\n", st.run_s);
    metric(&b, "vkphi_batch_steps_total", "counter",
           "Forward steps (model_eval_batch calls): each evaluates every busy slot's tokens at once.");
    putf(&b, "vkphi_batch_steps_total %llu\n", (unsigned long long)st.steps);
    metric(&b, "vkphi_batch_tokens_total", "counter",
           "Tokens evaluated in those steps (decode tokens and prompt chunks); over the steps, the mean batch.");
    putf(&b, "vkphi_batch_tokens_total %llu\n", (unsigned long long)st.step_tokens);
    metric(&b, "vkphi_generated_tokens_per_second", "gauge", "Tokens generated per second over the last few seconds.");
    putf(&b, "vkphi_generated_tokens_per_second %.3f\n", st.tokens_per_s);
    metric(&b, "vkphi_rate_window_seconds", "gauge", "The window of vkphi_generated_tokens_per_second.");
    putf(&b, "vkphi_rate_window_seconds %u\n", st.rate_window_s);
    metric(&b, "vkphi_queue_depth", "gauge", "Requests waiting for a slot.");
    putf(&b, "vkphi_queue_depth %u\n", st.queued);
    metric(&b, "vkphi_slots_busy", "gauge", "Slots generating.");
    putf(&b, "vkphi_slots_busy %u\n", st.busy);
    metric(&b, "vkphi_slots", "gauge", "Slots (--parallel).");
    putf(&b, "vkphi_slots %u\n", st.slots);
    metric(&b, "vkphi_kv_cache_tokens", "gauge", "Tokens held in the slots' KV caches, summed.");
    putf(&b, "vkphi_kv_cache_tokens %llu\n", (unsigned long long)st.kv_held);
    metric(&b, "vkphi_kv_cache_capacity_tokens", "gauge", "Tokens the slots' KV caches can hold (slots x context).");
    putf(&b, "vkphi_kv_cache_capacity_tokens %llu\n", (unsigned long long)st.kv_capacity);
    if (b.len == SIZE_MAX) { // a line did not fit in memory
        free(b.p);
        return NULL;
    }
    return b.p;
}

static enum MHD_Result handle_get(srv_http *h, struct MHD_Connection *c, conn_req *r) {
    if (r->route == R_METRICS)
        return reply_body(c, r, 200, metrics_text(h), "text/plain; version=0.0.4; charset=utf-8");
    if (r->route == R_HEALTH) {
        srv_stats st;
        srv_engine_stats(h->e, &st);
        char *json = malloc(160);
        if (json)
            snprintf(json, 160, "{\"status\":\"ok\",\"slots_idle\":%u,\"slots_processing\":%u,\"queued\":%u}",
                     st.slots - st.busy, st.busy, st.queued);
        return reply_json(c, r, 200, json);
    }
    if (r->route == R_MODELS) return reply_json(c, r, 200, srv_json_models(h->api));
    // R_MODEL
    if (!srv_model_matches(h->api, r->model_arg))
        return reply_errorf(c, r, 404, "invalid_request_error", "model_not_found", "model",
                            "The model '%.200s' does not exist. This server runs '%s'.", r->model_arg,
                            h->api->model_id);
    return reply_json(c, r, 200, srv_json_model(h->api));
}

// The first call for a request: everything that can be decided from the headers.
// Returns MHD_YES to go on reading the body.
static enum MHD_Result on_headers(srv_http *h, struct MHD_Connection *c, conn_req *r, const char *url,
                                  const char *method) {
    bool post = false;
    r->route = find_route(url, &post, &r->model_arg);
    bool is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (r->route == R_NONE)
        return reply_errorf(c, r, 404, "invalid_request_error", "unknown_url", NULL,
                            "Unknown request URL: %.16s %.200s. This server answers /v1/chat/completions, "
                            "/v1/completions, /v1/models, /health and /metrics.",
                            method, url);
    if (post ? strcmp(method, "POST") != 0 : !is_get)
        return reply_errorf(c, r, 405, "invalid_request_error", "method_not_allowed", NULL,
                            "Method %.16s is not allowed for %.200s; use %s.", method, url, post ? "POST" : "GET");
    bool given;
    // /health and /metrics are for load balancers and scrapers, and say nothing of what
    // is asked or answered: no key.
    if (h->cfg.api_key && r->route != R_HEALTH && r->route != R_METRICS && !authorized(h, c, &given))
        return reply_errorf(c, r, 401, "invalid_request_error", "invalid_api_key", NULL, "%s",
                            given ? "Incorrect API key provided. Pass the key the server was started with as "
                                    "'Authorization: Bearer KEY'."
                                  : "You didn't provide an API key. Pass it as 'Authorization: Bearer KEY'.");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || n > h->cfg.max_body) r->too_large = true;
    }
    if (r->too_large) {
        return reply_errorf(c, r, 413, "invalid_request_error", "request_too_large", NULL,
                            "The request body is larger than this server's limit of %zu bytes.", h->cfg.max_body);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    srv_http *h = cls;
    conn_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->h = h;
        *con_cls = r;
        atomic_fetch_add(&h->active, 1);
        return on_headers(h, c, r, url, method);
    }
    if (*upload_data_size) {
        if (!r->replied && !r->too_large && !r->oom) {
            if (r->body.len + *upload_data_size > h->cfg.max_body) {
                r->too_large = true;
                srv_buf_free(&r->body);
            } else if (!srv_buf_put(&r->body, upload_data, *upload_data_size)) {
                r->oom = true;
                srv_buf_free(&r->body);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->replied) return MHD_YES;
    if (r->too_large)
        return reply_errorf(c, r, 413, "invalid_request_error", "request_too_large", NULL,
                            "The request body is larger than this server's limit of %zu bytes.", h->cfg.max_body);
    if (r->oom) return reply_json(c, r, 500, NULL);
    if (!atomic_load(&h->ready) && r->route != R_METRICS) {
        // While the model loads: 503, so that a load balancer sends the request elsewhere.
        if (r->route == R_HEALTH) {
            static const char loading[] = "{\"status\":\"loading\"}";
            char *json = malloc(sizeof loading);
            if (json) memcpy(json, loading, sizeof loading);
            return reply_json(c, r, 503, json);
        }
        return reply_errorf(c, r, 503, "server_error", "model_loading", NULL,
                            "The model is still loading; try again shortly.");
    }
    if (r->route == R_CHAT || r->route == R_COMPLETIONS) return handle_generate(h, c, r, url);
    return handle_get(h, c, r);
}

// The request is over (answered, failed, or the client went away).
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    srv_http *h = cls;
    conn_req *r = *con_cls;
    if (!r) return;
    atomic_fetch_sub(&h->active, 1);
    count_reply(r, 0); // no answer was queued
    if (r->task) {
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) srv_task_cancel(r->task);
        srv_task_release(r->task);
    }
    srv_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

// ---- the daemon ----

// libmicrohttpd's own messages (its lines end with a newline), marked as such.
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (!log_requests) return;
    fputs("vkphi serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

srv_http *srv_http_start(const srv_http_config *cfg) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        vkphi_fail(VKPHI_ERR_ARG, "cannot use host '%s': %s", cfg->host, gai_strerror(gai));
        return NULL;
    }
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory starting the server");
        return NULL;
    }
    atomic_init(&h->active, 0);
    atomic_init(&h->ready, false);
    for (int i = 0; i < R_COUNT; i++)
        for (int k = 0; k < C_COUNT; k++)
            atomic_init(&h->requests[i][k], 0);
    log_requests = !cfg->quiet;
    h->cfg = *cfg;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    errno = 0;
    h->d =
        MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_LIMIT, 256u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    int err = errno;
    freeaddrinfo(ai);
    if (!h->d) {
        vkphi_fail(VKPHI_ERR_IO, "cannot listen on %s port %u%s%s", cfg->host, cfg->port, err ? ": " : "",
                   err ? strerror(err) : "");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    return h;
}

uint16_t srv_http_port(srv_http *h) { return h->port; }

void srv_http_ready(srv_http *h, const srv_api *api, srv_engine *e) {
    h->api = api;
    h->e = e;
    atomic_store(&h->ready, true); // seq_cst: a thread that sees it sees api and e
}

void srv_http_quiesce(srv_http *h) {
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

bool srv_http_drain(srv_http *h, double timeout_s) {
    double end = vkphi_now() + timeout_s;
    while (atomic_load(&h->active) > 0) {
        if (vkphi_now() >= end) return false;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
