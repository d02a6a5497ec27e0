// SPDX-License-Identifier: MIT
// vkphi serve: an OpenAI-compatible HTTP server (chat completions, completions,
// models, health) with parallel slots, a fair queue, and prompt-prefix reuse.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../args.h"
#include "../subcommands.h"
#include "api.h"
#include "engine.h"
#include "http.h"
#include "vkphi.h"

#define SRV_MAX_BODY (4u << 20) // request bodies above 4 MiB get 413
#define SRV_MAX_PARALLEL 64

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi serve [-m MODEL] [--host ADDR] [--port N] [--api-key KEY] [--parallel N] [-c N]\n"
               "                   [--device N]\n\n"
               "Serves MODEL over HTTP with OpenAI's API, so that OpenAI SDKs and the apps built on\n"
               "them can use it (base URL http://HOST:PORT/v1):\n"
               "  POST /v1/chat/completions   messages -> chat.completion (\"stream\": true for SSE)\n"
               "  POST /v1/completions        prompt -> text_completion (streams too)\n"
               "  GET  /v1/models             the loaded model; its id is the file name without .gguf\n"
               "  GET  /health                {\"status\":\"ok\", ...}; 503 {\"status\":\"loading\"} while the\n"
               "                              model loads (the server listens first). No API key needed\n"
               "  GET  /metrics               Prometheus text format: requests, tokens, slots, queue and\n"
               "                              KV-cache use. No API key needed\n\n"
               "server:\n"
               "  --host ADDR             address to listen on (default 127.0.0.1: this machine only;\n"
               "                          0.0.0.0 listens on every interface)\n"
               "  --port N                TCP port (default 8080; 0 picks a free one)\n"
               "  --api-key KEY           require 'Authorization: Bearer KEY' (default: the environment\n"
               "                          variable VKPHI_API_KEY if set, else no key)\n"
               "  --parallel N            requests generated at once, one KV-cache slot of -c tokens each\n"
               "                          (default 4), all in one forward step per token; more wait in a\n"
               "                          first-come-first-served queue\n");
    args_help(f, ARGS_MODEL | ARGS_TEMPLATE);
    fprintf(f,
            "\nEach slot holds -c tokens: a prompt must leave room for the answer in one slot.\n"
            "Sampling follows OpenAI's defaults (temperature 1, top_p 1); requests may also set\n"
            "top_k, min_p and repeat_penalty. A request whose prompt starts like an earlier one (the\n"
            "next turn of a conversation) goes to the slot that holds that start and only the rest is\n"
            "evaluated; usage.prompt_tokens_details.cached_tokens says how many tokens were reused.\n"
            "Request bodies are limited to %u MiB. Ctrl-C (SIGINT) or SIGTERM stops the server.\n",
            SRV_MAX_BODY >> 20);
}

// ---- signals: the handler only writes a byte that the main thread waits for ----

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(stop_pipe[1], &b, 1);
    (void)ignored;
    errno = saved;
}

static int install_signals(void) {
    if (pipe(stop_pipe) != 0) return -1;
    fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return 0;
}

// Test-only: VKPHI_TEST_LOAD_DELAY_MS=N waits N ms (at most a minute) before the model
// loads, so that tests/cli_serve.sh can see /health's 503 with a model that loads in
// an instant.
static void test_load_delay(void) {
    const char *v = getenv("VKPHI_TEST_LOAD_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms <= 0) return;
    if (ms > 60000) ms = 60000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int wait_for_signal(void) {
    unsigned char b = 0;
    for (;;) {
        ssize_t n = read(stop_pipe[0], &b, 1);
        if (n == 1) return b;
        if (n < 0 && errno == EINTR) continue;
        return 0;
    }
}

// The model's name for clients: its file name without the directory and ".gguf".
static void model_names(const char *path, char *id, size_t id_size, char *file, size_t file_size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(file, file_size, "%s", base);
    snprintf(id, id_size, "%s", base);
    size_t n = strlen(id);
    if (n > 5 && !strcasecmp(id + n - 5, ".gguf")) id[n - 5] = 0;
    if (!id[0]) snprintf(id, id_size, "vkphi");
}

typedef struct serve_opts {
    cli_args a;
    const char *host, *api_key; // api_key NULL: none
    long port, parallel;
} serve_opts;

// The command line into o: 0 to go on, 1 after an error line, 2 after the help.
static int parse_serve_args(serve_opts *o, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = args_parse(&o->a, ARGS_MODEL | ARGS_TEMPLATE, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            usage(stdout);
            return 2;
        } else if (!strcmp(opt, "--host")) {
            if (!v || !*v) return args_fail("option '--host' needs an address such as 127.0.0.1");
            o->host = argv[++i];
        } else if (!strcmp(opt, "--port")) {
            if (!args_parse_long(v, 0, 65535, &o->port))
                return args_fail("option '--port' needs a port number from 0 to 65535");
            i++;
        } else if (!strcmp(opt, "--api-key")) {
            if (!v || !*v) return args_fail("option '--api-key' needs a key");
            o->api_key = argv[++i];
        } else if (!strcmp(opt, "--parallel") || !strcmp(opt, "-np")) {
            if (!args_parse_long(v, 1, SRV_MAX_PARALLEL, &o->parallel))
                return args_fail("option '%s' needs a number of slots from 1 to %d", opt, SRV_MAX_PARALLEL);
            i++;
        } else {
            return args_fail("unknown option '%s' for serve (see vkphi serve --help)", opt);
        }
    }
    if (o->api_key && !*o->api_key) o->api_key = NULL;
    return 0;
}

// One prompt step and one decode step before the server is ready: drivers that compile
// shaders on first use (Mesa's, with a cold cache) do so now, not in the first request.
// 0, or 1 after an error line.
static int warm_up(model *m, const char *model_path) {
    if (model_n_ctx(m) < 3) return 0;
    int32_t warm[3] = {0, 0, 0};
    float *logits = malloc(sizeof(float) * model_get_config(m)->n_vocab);
    int wrc = logits ? model_eval(m, 0, warm, 2, 0, logits, NULL) : VKPHI_ERR_NOMEM;
    if (wrc == VKPHI_OK) wrc = model_eval(m, 0, warm + 2, 1, 2, logits, NULL);
    free(logits);
    if (wrc != VKPHI_OK)
        return args_fail("%s: the first evaluation failed: %s", model_path,
                         wrc == VKPHI_ERR_NOMEM ? "out of memory" : vkphi_last_error());
    return 0;
}

// What the API tells clients about the model, and the strings it points to.
typedef struct serve_api {
    srv_api api;
    char id[256], file[256], tmpl_error[512];
} serve_api;

static void api_describe(serve_api *s, const cli_args *a, model *m, const tokenizer *tok, const char *model_path) {
    model_names(model_path, s->id, sizeof s->id, s->file, sizeof s->file);
    struct stat st;
    // The chat format: a file whose template we do not render still serves
    // /v1/completions; its chat requests get the reason.
    enum chat_template tmpl = CHAT_TEMPLATE_NONE;
    s->tmpl_error[0] = 0;
    if (chat_template_choose(model_gguf(m), tok, a->chat_template, &tmpl) != VKPHI_OK) {
        snprintf(s->tmpl_error, sizeof s->tmpl_error, "%s", vkphi_last_error());
        fprintf(stderr, "vkphi serve: warning: %s; /v1/chat/completions is refused\n", s->tmpl_error);
    }
    s->api = (srv_api){
        .t = tok,
        .tmpl = tmpl,
        .tmpl_error = s->tmpl_error[0] ? s->tmpl_error : NULL,
        .force = a->gen.force,
        .n_force = a->gen.n_force,
        .model_id = s->id,
        .model_file = s->file,
        .created = stat(model_path, &st) == 0 ? (long long)st.st_mtime : 0,
        .n_vocab = model_get_config(m)->n_vocab,
        .n_ctx = model_n_ctx(m),
    };
}

// Serves until SIGINT or SIGTERM, then shuts down in order; h is stopped after.
static void serve_until_signal(srv_http *h, srv_engine *e) {
    int sig = wait_for_signal();
    // A second Ctrl-C ends the process at once.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    fprintf(stderr, "vkphi serve: %s, shutting down\n", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "stop");
    srv_http_quiesce(h);    // no new connections
    srv_engine_shutdown(e); // queued and running requests end now (their clients get an error)
    srv_http_drain(h, 3.0); // let those errors reach the clients
    srv_http_stop(h);       // close the connections, join their threads
}

int cmd_serve(int argc, char **argv) {
    serve_opts o = {.host = "127.0.0.1", .api_key = getenv("VKPHI_API_KEY"), .port = 8080, .parallel = 4};
    args_init(&o.a, -1);
    int ret = parse_serve_args(&o, argc, argv);
    if (ret) {
        args_free(&o.a);
        return ret == 2 ? 0 : 1;
    }

    // Listen first, then load: a load balancer's health check gets 503 ("loading") at
    // once instead of a refused connection, and the API answers 503 with an error
    // until srv_http_ready. The model loads here on the main thread, which has
    // nothing else to do meanwhile; SIGINT and SIGTERM keep their default action
    // (end the process) until the model is up, as there is nothing to drain yet.
    signal(SIGPIPE, SIG_IGN);
    model *m = NULL;
    tokenizer *tok = NULL;
    ret = 1;
    srv_engine *e = NULL;
    srv_http *h = NULL;
    srv_http_config hc = {o.host, (uint16_t)o.port, o.api_key, SRV_MAX_BODY, o.a.quiet};
    if (!(h = srv_http_start(&hc))) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    bool v6 = strchr(o.host, ':') != NULL;
    fprintf(stderr,
            "vkphi serve: listening on http://%s%s%s:%u (OpenAI base URL http://%s%s%s:%u/v1); loading the model\n",
            v6 ? "[" : "", o.host, v6 ? "]" : "", srv_http_port(h), v6 ? "[" : "", o.host, v6 ? "]" : "",
            srv_http_port(h));
    test_load_delay();
    if (args_load_model(&o.a, (uint32_t)o.parallel, &m, &tok) != 0) goto done;
    const char *model_path = gguf_name(model_gguf(m)); // -m, or the built-in model's file
    if (warm_up(m, model_path)) goto done;
    if (!(e = srv_engine_create(m, tok, (uint32_t)o.parallel, o.a.mp.n_ubatch ? o.a.mp.n_ubatch : 512))) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    serve_api sa;
    api_describe(&sa, &o.a, m, tok, model_path);
    if (install_signals() != 0) {
        args_fail("cannot set up signal handling: %s", strerror(errno));
        goto done;
    }
    srv_http_ready(h, &sa.api, e);
    fprintf(stderr, "vkphi serve: ready: model '%s' on %s, %ld slot%s of %u tokens%s\n", sa.id, model_device_name(m),
            o.parallel, o.parallel == 1 ? "" : "s", model_n_ctx(m), o.api_key ? ", API key required" : "");
    serve_until_signal(h, e);
    h = NULL;
    ret = 0;
done:
    srv_http_stop(h);
    for (int i = 0; i < 2; i++)
        if (stop_pipe[i] >= 0) close(stop_pipe[i]);
    srv_engine_destroy(e);
    tokenizer_destroy(tok);
    model_free(m);
    args_free(&o.a);
    return ret;
}
