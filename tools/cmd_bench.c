// SPDX-License-Identifier: MIT
// vkphi bench: prompt-processing and generation speed, the bytes a decode step
// reads against the memory bandwidth the device attains (measured here with a
// streaming-read kernel), a per-kernel GPU time breakdown, load time and time to
// first token. A table, Markdown, or one JSON object (bench/compare reads those).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

#define MAX_KERNELS 64
#define MAX_PARALLEL 8 // --parallel values in one run
#define MAX_SEQUENCES 64

typedef struct bench_opts {
    cli_args a;          // -m, --device, -c, --ubatch, --kv, -q
    long p, n, r, depth; // prompt tokens, generated tokens, repetitions, KV depth
    bool json, markdown, bandwidth_only;
    double peak_given;   // --peak GB/s (0: measure)
    long parallel[MAX_PARALLEL]; // --parallel: sequences decoding at once, one test each
    int n_parallel;
} bench_opts;

// CPU time of this thread: what recording and submitting cost the host (the GPU,
// or lavapipe's own threads, run the work).
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct test_result {
    char name[48];
    double tps, stdev;
    bool is_tg;
    double bytes_per_token, gbps, roofline;
    // Decode only: the host's side of a token (recording and submitting; the
    // thread's CPU time over the timed steps), and what it recorded.
    double host_us, recordings, dispatches, barriers, submits; // per token
} test_result;

// --parallel N: N sequences, each after its own prompt, decode together, one
// model_eval_batch of N tokens per step.
typedef struct parallel_result {
    long seqs, prompt, tokens;  // sequences, prompt tokens each, decode steps
    double tps, stdev;          // aggregate: N x steps per second
    double per_seq;             // one sequence's tokens per second (tps / N)
} parallel_result;

typedef struct kernel_time {
    const char *name;
    double ms, percent;
} kernel_time;

typedef struct bench_report {
    device_info dev;
    char driver[512], api[32];
    double peak;
    bandwidth_result bw;
    bool peak_measured;
    char model_name[256], model_path[1024], quant_mix[512], type_shares[512];
    uint64_t file_bytes;
    test_result tests[2];
    int n_tests;
    parallel_result par[MAX_PARALLEL];
    int n_par;
    kernel_time kernels[MAX_KERNELS];
    int n_kernels;
    const char *kernels_of; // "tg" or "pp"
    double load_s, ttft_ms;
    long ttft_tokens;
    uint64_t weights_in[MEM_N_PLACES]; // where the weights went (memory.h): device-local, host-visible
    char host_layers[64];              // "layers 28-39 and the output head", "none"
    char date[32];
} bench_report;

static void bench_usage(FILE *f) {
    fprintf(f, "usage: vkphi bench [-m MODEL] [-p 512] [-n 128] [-r 5] [-d DEPTH] [--json | --markdown]\n"
               "                   [--device N] [--bandwidth] [--peak GBPS] [--parallel N[,N...]]\n\n"
               "Measures prompt processing (ppN: N prompt tokens in one evaluation) and generation\n"
               "(tgN: N tokens one at a time) in tokens/s, mean and standard deviation over the\n"
               "repetitions after one warm-up, at a KV depth of DEPTH tokens already in the cache.\n"
               "For generation it reports the bytes each step reads (every weight once, plus the\n"
               "KV cache so far), the bandwidth that makes, and its fraction of the device's peak,\n"
               "which a streaming-read kernel measures first. Also the GPU time of each kernel in\n"
               "a decode step, the load time and the time to first token.\n\n"
               "  -m MODEL        GGUF file (default: the built-in default model)\n"
               "  -p N            prompt tokens for the pp test (default 512; 0 skips it)\n"
               "  -n N            generated tokens for the tg test (default 128; 0 skips it)\n"
               "  -r N            repetitions (default 5)\n"
               "  -d DEPTH        tokens already in the KV cache (default 0)\n"
               "  --json          one JSON object on stdout (for bench/compare)\n"
               "  --markdown      Markdown tables (for READMEs)\n"
               "  --bandwidth     only measure the device's memory bandwidth\n"
               "  --peak GBPS     take this as the peak bandwidth instead of measuring it\n"
               "  --parallel N    instead of pp and tg: N sequences (1 to 64), each after its own\n"
               "                  -p-token prompt, generate -n tokens together, one forward step\n"
               "                  (model_eval_batch) of N tokens per token; reports the aggregate\n"
               "                  and per-sequence tokens/s. A list (1,2,4,8) runs one test each\n"
               "  --device N      the Vulkan device (see vkphi devices)\n"
               "  -c N            context size (default: DEPTH + the larger of -p and -n)\n"
               "  --ubatch N      most tokens per prompt step (default 512)\n"
               "  --kv f16|q8_0   KV cache type (default f16)\n"
               "  -q              no progress notes on stderr\n");
}

// ---- statistics ----

static void mean_stdev(const double *x, int n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(s2 / (n - 1)) : 0;
}

static int cmp_kernel(const void *a, const void *b) {
    double x = ((const kernel_time *)a)->ms, y = ((const kernel_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

// ---- the model side ----

static void describe_model(bench_report *rep, const gguf_file *f, const char *path) {
    const char *name = NULL;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(rep->model_name, sizeof rep->model_name, "%.200s", gguf_get_str(f, "general.name", &name) ? name : base);
    snprintf(rep->model_path, sizeof rep->model_path, "%.1000s", path);
    rep->file_bytes = gguf_file_size(f);
    // Bytes per tensor type, largest share first.
    uint64_t by_type[GGML_TYPE_COUNT] = {0}, total = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->type < GGML_TYPE_COUNT) by_type[t->type] += t->size;
        total += t->size;
    }
    char *o = rep->type_shares;
    size_t left = sizeof rep->type_shares;
    o[0] = 0;
    for (;;) {
        int best = -1;
        for (int t = 0; t < GGML_TYPE_COUNT; t++)
            if (by_type[t] && (best < 0 || by_type[t] > by_type[best])) best = t;
        if (best < 0 || left < 32) break;
        int w = snprintf(o, left, "%s%s %.1f%%", o == rep->type_shares ? "" : ", ", quant_type_name((uint32_t)best),
                         100.0 * by_type[best] / (total ? total : 1));
        o += w;
        left -= (size_t)w;
        by_type[best] = 0;
    }
    uint32_t ft;
    const char *mix = gguf_get_u32(f, "general.file_type", &ft) ? quant_recipe_from_file_type(ft) : NULL;
    snprintf(rep->quant_mix, sizeof rep->quant_mix, "%s", mix ? mix : rep->type_shares);
}

static void random_tokens(int32_t *t, long n, uint32_t n_vocab, uint64_t *s) {
    for (long i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((*s >> 33) % n_vocab);
    }
}

static void note(const bench_opts *o, const char *fmt, const char *what) {
    if (!o->a.quiet && isatty(2)) fprintf(stderr, fmt, what);
}

// --parallel: for each N, sequences 0..N-1 each take a -p-token prompt of their own
// (untimed), then -n steps of one model_eval_batch with one token of each sequence
// (logits for all), timed over -r repetitions after a warm-up. Tokens are random, as
// in tg: what is measured is the forward step, not the sampler.
static int run_parallel(const bench_opts *o, model *m, bench_report *rep) {
    const uint32_t V = model_get_config(m)->n_vocab;
    long most = 0;
    for (int k = 0; k < o->n_parallel; k++)
        if (o->parallel[k] > most) most = o->parallel[k];
    const long per_seq = o->p + o->n;
    int32_t *tok = malloc(sizeof *tok * (size_t)(per_seq * most + 1));
    model_token *batch = malloc(sizeof *batch * (size_t)most);
    float *logits = malloc(sizeof *logits * (size_t)V * (size_t)most);
    double *tps = malloc(sizeof *tps * (size_t)(o->r + 1));
    int rc = tok && batch && logits && tps ? 0 : args_fail("out of host memory");
    uint64_t seed = 7;
    if (!rc) random_tokens(tok, per_seq * most, V, &seed);
    for (int k = 0; k < o->n_parallel && !rc; k++) {
        const long n_seq = o->parallel[k];
        char what[64];
        snprintf(what, sizeof what, "%ld sequences", n_seq);
        note(o, "running parallel decode with %s\n", what);
        // Sequence s's tokens: tok[s * per_seq ..], its prompt then its decode tokens.
        for (long s = 0; s < n_seq && !rc && o->p > 0; s++)
            if (model_eval(m, (uint32_t)s, tok + s * per_seq, (uint32_t)o->p, 0, logits, NULL) != VKPHI_OK)
                rc = args_fail("%s", vkphi_last_error());
        for (long r = 0; r <= o->r && !rc; r++) {
            double t0 = vkphi_now();
            for (long i = 0; i < o->n && !rc; i++) {
                for (long s = 0; s < n_seq; s++)
                    batch[s] = (model_token){tok[s * per_seq + o->p + i], (uint32_t)s, (uint32_t)(o->p + i), true};
                if (model_eval_batch(m, batch, (uint32_t)n_seq, logits) != VKPHI_OK)
                    rc = args_fail("%s", vkphi_last_error());
            }
            if (r > 0) tps[r - 1] = (double)n_seq * o->n / (vkphi_now() - t0);
        }
        parallel_result *pr = &rep->par[rep->n_par++];
        pr->seqs = n_seq;
        pr->prompt = o->p;
        pr->tokens = o->n;
        if (!rc) mean_stdev(tps, (int)o->r, &pr->tps, &pr->stdev);
        pr->per_seq = pr->tps / (double)n_seq;
    }
    free(tok);
    free(batch);
    free(logits);
    free(tps);
    return rc;
}

// One evaluation of n tokens at pos in sequence 0, the logits of the last: 0, or 1
// after an error line.
static int eval(model *m, const int32_t *toks, long n, long pos, float *logits) {
    if (model_eval(m, 0, toks, (uint32_t)n, (uint32_t)pos, logits, NULL) != VKPHI_OK)
        return args_fail("%s", vkphi_last_error());
    return 0;
}

// Describes the file, sizes the context for the tests and loads the model (timed);
// notes where its weights went. 0, or 1 after an error line.
static int load_model(const bench_opts *o, const char *path, bench_report *rep, model **m) {
    gguf_file *f = gguf_open(path);
    if (!f) return args_fail("%s", vkphi_last_error());
    model_config cfg;
    if (model_config_read(f, &cfg) != VKPHI_OK) {
        gguf_close(f);
        return args_fail("%s", vkphi_last_error());
    }
    describe_model(rep, f, path);
    gguf_close(f);

    model_params mp = o->a.mp;
    long need = o->depth + (o->p > o->n ? o->p : o->n);
    if (o->n_parallel) { // each sequence: its prompt, then the decode steps
        need = o->p + o->n;
        mp.n_seq = 1;
        for (int i = 0; i < o->n_parallel; i++)
            if ((uint32_t)o->parallel[i] > mp.n_seq) mp.n_seq = (uint32_t)o->parallel[i];
    } else {
        mp.n_seq = 1;
    }
    if (!o->a.ctx_given) mp.n_ctx = (uint32_t)((need + 255) / 256 * 256);
    else if (mp.n_ctx == 0) mp.n_ctx = cfg.n_ctx_train;
    if ((long)mp.n_ctx < need)
        return o->n_parallel ? args_fail("context %u is too small for a %ld-token prompt plus %ld tokens per sequence",
                                         mp.n_ctx, o->p, o->n)
                             : args_fail("context %u is too small for a depth of %ld plus %ld tokens", mp.n_ctx,
                                         o->depth, need - o->depth);
    mp.quiet = true;
    note(o, "loading %s\n", path);
    double t0 = vkphi_now();
    if (model_load(path, &mp, m) != VKPHI_OK) return args_fail("%s", vkphi_last_error());
    rep->load_s = vkphi_now() - t0;
    const mem_plan *plan = model_memory_plan(*m);
    for (int i = 0; i < MEM_N_PLACES; i++) rep->weights_in[i] = plan->weights[i];
    memory_plan_layers(plan, MEM_HOST, rep->host_layers, sizeof rep->host_layers);
    return 0;
}

// What the pp and tg tests work with: the model, random tokens (the depth's first,
// then the test's), a row of logits and a time per repetition.
typedef struct bench_run {
    const bench_opts *o;
    model *m;
    const int32_t *tok;
    float *logits;
    double *tps;
    char suffix[32]; // "@dDEPTH" when the depth is not 0
} bench_run;

// Prompt processing: p tokens in one evaluation, at the depth.
static int run_pp(const bench_run *b, bench_report *rep) {
    const bench_opts *o = b->o;
    int rc = 0;
    note(o, "running pp%s\n", "");
    for (long r = 0; r <= o->r && !rc; r++) {
        double t0 = vkphi_now();
        rc = eval(b->m, b->tok + o->depth, o->p, o->depth, b->logits);
        if (r > 0) b->tps[r - 1] = o->p / (vkphi_now() - t0);
    }
    test_result *t = &rep->tests[rep->n_tests++];
    snprintf(t->name, sizeof t->name, "pp%ld%s", o->p, b->suffix);
    if (!rc) mean_stdev(b->tps, (int)o->r, &t->tps, &t->stdev);
    return rc;
}

// Generation: n single-token steps from the depth, with the host's side of a step
// (CPU time, recordings, dispatches, barriers, submits) and the bytes it reads.
static int run_tg(const bench_run *b, bench_report *rep) {
    const bench_opts *o = b->o;
    int rc = 0;
    note(o, "running tg%s\n", "");
    model_counters c0 = {0}, c1 = {0};
    double cpu0 = 0;
    for (long r = 0; r <= o->r && !rc; r++) {
        if (r == 1) model_get_counters(&c0), cpu0 = thread_cpu_s();
        double t0 = vkphi_now();
        for (long i = 0; i < o->n && !rc; i++) rc = eval(b->m, b->tok + o->depth + i, 1, o->depth + i, b->logits);
        if (r > 0) b->tps[r - 1] = o->n / (vkphi_now() - t0);
    }
    model_get_counters(&c1);
    double steps = (double)o->n * (double)o->r;
    test_result *t = &rep->tests[rep->n_tests++];
    if (steps > 0) {
        t->host_us = (thread_cpu_s() - cpu0) * 1e6 / steps;
        t->recordings = (double)(c1.recordings - c0.recordings) / steps;
        t->dispatches = (double)(c1.dispatches - c0.dispatches) / steps;
        t->barriers = (double)(c1.barriers - c0.barriers) / steps;
        t->submits = (double)(c1.submits - c0.submits) / steps;
    }
    snprintf(t->name, sizeof t->name, "tg%ld%s", o->n, b->suffix);
    t->is_tg = true;
    if (!rc) mean_stdev(b->tps, (int)o->r, &t->tps, &t->stdev);
    // Step i (at position depth + i) reads every weight once and the keys and
    // values of depth + i + 1 tokens: on average depth + (n + 1) / 2.
    t->bytes_per_token = (double)model_weight_bytes(b->m) +
                         (double)model_kv_bytes_per_token(b->m) * ((double)o->depth + (o->n + 1) / 2.0);
    t->gbps = t->tps * t->bytes_per_token / 1e9;
    t->roofline = rep->peak > 0 ? t->gbps / rep->peak : 0;
    return rc;
}

// Per-kernel GPU time: decode steps when there are any, else one prompt; largest
// first. The names point into the model until run_model copies them.
static int run_kernels(const bench_run *b, bench_report *rep) {
    const bench_opts *o = b->o;
    int rc = 0;
    model_set_profiling(b->m, true);
    const char *names[MAX_KERNELS];
    double ms[MAX_KERNELS];
    long steps = o->n > 0 ? (o->n < 16 ? o->n : 16) : 1;
    rep->kernels_of = o->n > 0 ? "tg" : "pp";
    for (long s = 0; s < steps && !rc; s++) {
        if (o->n > 0) rc = eval(b->m, b->tok + o->depth + s, 1, o->depth + s, b->logits);
        else rc = eval(b->m, b->tok + o->depth, o->p, o->depth, b->logits);
        uint32_t k = rc ? 0 : model_kernel_times(b->m, names, ms, MAX_KERNELS);
        for (uint32_t i = 0; i < k; i++) {
            int j = 0;
            while (j < rep->n_kernels && strcmp(rep->kernels[j].name, names[i])) j++;
            if (j == rep->n_kernels) {
                if (j == MAX_KERNELS) continue;
                rep->kernels[rep->n_kernels++] = (kernel_time){names[i], 0, 0};
            }
            rep->kernels[j].ms += ms[i] / steps;
        }
    }
    model_set_profiling(b->m, false);
    double total = 0;
    for (int i = 0; i < rep->n_kernels; i++) total += rep->kernels[i].ms;
    for (int i = 0; i < rep->n_kernels; i++) rep->kernels[i].percent = total > 0 ? 100 * rep->kernels[i].ms / total : 0;
    qsort(rep->kernels, (size_t)rep->n_kernels, sizeof rep->kernels[0], cmp_kernel);
    return rc;
}

static int run_model(const bench_opts *o, const char *path, bench_report *rep) {
    model *m = NULL;
    if (load_model(o, path, rep, &m)) return 1;

    const uint32_t V = model_get_config(m)->n_vocab;
    const long n_tok = o->depth + o->p + o->n + 16;
    int32_t *tok = malloc((size_t)n_tok * sizeof *tok);
    float *logits = malloc((size_t)V * sizeof *logits);
    double *tps = malloc((size_t)(o->r + 1) * sizeof *tps);
    int rc = tok && logits && tps ? 0 : args_fail("out of host memory");
    uint64_t seed = 42;
    if (!rc) random_tokens(tok, n_tok, V, &seed);
    bench_run b = {o, m, tok, logits, tps, ""};

    // Time to first token: the first prompt after loading, cold (pipelines made on
    // first use are part of what a user waits for).
    rep->ttft_tokens = o->p > 0 ? o->p : 1;
    double t0 = vkphi_now();
    if (!rc) rc = eval(m, tok, rep->ttft_tokens, 0, logits);
    rep->ttft_ms = (vkphi_now() - t0) * 1e3;
    // The depth, once.
    if (o->depth > 0) note(o, "filling the KV cache to depth %s\n", "");
    for (long done = 0; done < o->depth && !rc; done += 512) {
        long k = o->depth - done < 512 ? o->depth - done : 512;
        rc = eval(m, tok + done, k, done, logits);
    }
    if (o->depth > 0) snprintf(b.suffix, sizeof b.suffix, "@d%ld", o->depth);
    if (o->n_parallel && !rc) rc = run_parallel(o, m, rep);
    if (o->p > 0 && !rc && !o->n_parallel) rc = run_pp(&b, rep);
    if (o->n > 0 && !rc && !o->n_parallel) rc = run_tg(&b, rep);
    if (!rc && !o->n_parallel) rc = run_kernels(&b, rep);

    // The kernel names point into the model: copy them before it goes.
    static char kernel_names[MAX_KERNELS][48];
    for (int i = 0; i < rep->n_kernels; i++) {
        snprintf(kernel_names[i], sizeof kernel_names[i], "%s", rep->kernels[i].name);
        rep->kernels[i].name = kernel_names[i];
    }
    model_free(m);
    free(tok);
    free(logits);
    free(tps);
    return rc;
}

// ---- output ----

static void print_json(const bench_report *r, bool with_model) {
    FILE *f = stdout;
    fprintf(f, "{\n  \"device\": {\"name\": ");
    args_json_str(f, r->dev.name);
    fprintf(f, ", \"vendor_id\": %u, \"driver\": ", r->dev.vendor_id);
    args_json_str(f, r->driver);
    fprintf(f, ", \"api_version\": \"%s\"},\n", r->api);
    fprintf(f, "  \"peak_gb_per_s\": %.3f,\n", r->peak);
    fprintf(f, "  \"peak_measured\": %s,\n", r->peak_measured ? "true" : "false");
    fprintf(f, "  \"date\": \"%s\",\n  \"vkphi_version\": \"%s\"", r->date, VKPHI_VERSION);
    if (!with_model) {
        fprintf(f, "\n}\n");
        return;
    }
    fprintf(f, ",\n  \"model\": {\"name\": ");
    args_json_str(f, r->model_name);
    fprintf(f, ", \"file_bytes\": %llu, \"quant_mix\": ", (unsigned long long)r->file_bytes);
    args_json_str(f, r->quant_mix);
    fprintf(f, ", \"tensor_types\": ");
    args_json_str(f, r->type_shares);
    fprintf(f, "},\n  \"results\": [");
    for (int i = 0; i < r->n_tests; i++) {
        const test_result *t = &r->tests[i];
        fprintf(f, "%s\n    {\"test\": \"%s\", \"tokens_per_s\": %.3f, \"stdev\": %.3f", i ? "," : "", t->name, t->tps,
                t->stdev);
        if (t->is_tg)
            fprintf(f, ", \"bytes_per_token\": %.0f, \"gb_per_s\": %.4f, \"roofline_fraction\": %.4f, "
                    "\"host_us_per_token\": %.1f, \"recordings_per_token\": %.2f, \"dispatches_per_token\": %.2f, "
                    "\"barriers_per_token\": %.2f, \"submits_per_token\": %.2f",
                    t->bytes_per_token, t->gbps, t->roofline, t->host_us, t->recordings, t->dispatches, t->barriers,
                    t->submits);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"parallel\": [");
    for (int i = 0; i < r->n_par; i++) {
        const parallel_result *p = &r->par[i];
        fprintf(f, "%s\n    {\"sequences\": %ld, \"prompt_tokens\": %ld, \"tokens\": %ld, "
                   "\"aggregate_tokens_per_s\": %.3f, \"stdev\": %.3f, \"per_sequence_tokens_per_s\": %.3f}",
                i ? "," : "", p->seqs, p->prompt, p->tokens, p->tps, p->stdev, p->per_seq);
    }
    fprintf(f, "\n  ],\n  \"kernels_of\": \"%s\",\n  \"kernels\": [", r->kernels_of ? r->kernels_of : "");
    for (int i = 0; i < r->n_kernels; i++) {
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        args_json_str(f, r->kernels[i].name);
        fprintf(f, ", \"ms\": %.4f, \"percent\": %.2f}", r->kernels[i].ms, r->kernels[i].percent);
    }
    fprintf(f, "\n  ],\n  \"weights_device_bytes\": %llu,\n  \"weights_host_bytes\": %llu,\n  \"host_layers\": ",
            (unsigned long long)r->weights_in[MEM_DEVICE], (unsigned long long)r->weights_in[MEM_HOST]);
    args_json_str(f, r->host_layers);
    fprintf(f, ",\n  \"heaps_simulated\": %s,\n  \"load_s\": %.3f,\n  \"ttft_ms\": %.2f\n}\n",
            r->dev.heaps_simulated ? "true" : "false", r->load_s, r->ttft_ms);
}

// The --parallel table: aggregate and per-sequence tokens/s, and the aggregate's gain
// over one sequence when the run has N = 1.
static void print_parallel(const bench_report *r, bool md) {
    FILE *f = stdout;
    double one = 0;
    for (int i = 0; i < r->n_par; i++)
        if (r->par[i].seqs == 1) one = r->par[i].tps;
    const parallel_result *p0 = &r->par[0];
    if (md) {
        fprintf(f, "Parallel decode: N sequences, each after a %ld-token prompt, %ld steps of one forward pass over "
                   "N tokens.\n\n| N | aggregate tokens/s | per sequence | vs N = 1 |\n|---:|---:|---:|---:|\n",
                p0->prompt, p0->tokens);
        for (int i = 0; i < r->n_par; i++) {
            const parallel_result *p = &r->par[i];
            fprintf(f, "| %ld | %.2f ± %.2f | %.2f |", p->seqs, p->tps, p->stdev, p->per_seq);
            if (one > 0) fprintf(f, " %.2fx |\n", p->tps / one);
            else fprintf(f, " |\n");
        }
        fputc('\n', f);
        return;
    }
    fprintf(f, "parallel decode: N sequences, each after a %ld-token prompt, %ld steps of one forward pass over N "
               "tokens\n", p0->prompt, p0->tokens);
    fprintf(f, "%-10s %24s %14s %10s\n", "sequences", "aggregate tokens/s", "per sequence", "vs N = 1");
    for (int i = 0; i < r->n_par; i++) {
        const parallel_result *p = &r->par[i];
        char tps[40];
        snprintf(tps, sizeof tps, "%.2f ± %.2f", p->tps, p->stdev);
        fprintf(f, "%-10ld %25s %14.2f", p->seqs, tps, p->per_seq); // ± is two bytes, one column
        if (one > 0) fprintf(f, " %9.2fx", p->tps / one);
        fputc('\n', f);
    }
    fputc('\n', f);
}

static void print_text(const bench_report *r, bool with_model, bool md) {
    FILE *f = stdout;
    const char *peak_how = r->peak_measured ? "measured by a streaming-read kernel" : "given with --peak";
    if (md) {
        fprintf(f, "**Device:** %s (%s, Vulkan %s)  \n", r->dev.name, r->driver, r->api);
        fprintf(f, "**Peak bandwidth:** %.1f GB/s (%s)  \n", r->peak, peak_how);
    } else {
        fprintf(f, "device:  %s (%s, Vulkan %s)\n", r->dev.name, r->driver, r->api);
        fprintf(f, "peak:    %.2f GB/s (%s", r->peak, peak_how);
        if (r->peak_measured)
            fprintf(f, ", best of %u passes over %.0f MiB; median %.2f", r->bw.passes, r->bw.bytes / 1048576.0,
                    r->bw.median_gb_per_s);
        fprintf(f, ")\n");
    }
    if (!with_model) return;
    if (md) {
        fprintf(f, "**Model:** %s, %.1f MiB, %s (%s)  \n", r->model_name, r->file_bytes / 1048576.0, r->quant_mix,
                r->type_shares);
        fprintf(f, "**Load:** %.2f s, **time to first token:** %.1f ms (%ld-token prompt, cold)\n\n", r->load_s,
                r->ttft_ms, r->ttft_tokens);
        if (r->n_par) print_parallel(r, true);
        if (r->n_tests) fprintf(f, "| test | tokens/s | bytes/token | GB/s | roofline |\n|---|---:|---:|---:|---:|\n");
        for (int i = 0; i < r->n_tests; i++) {
            const test_result *t = &r->tests[i];
            fprintf(f, "| %s | %.2f ± %.2f |", t->name, t->tps, t->stdev);
            if (t->is_tg) fprintf(f, " %.1f MB | %.2f | %.1f%% |\n", t->bytes_per_token / 1e6, t->gbps, 100 * t->roofline);
            else fprintf(f, " | | |\n");
        }
        for (int i = 0; i < r->n_tests; i++) {
            const test_result *t = &r->tests[i];
            if (t->is_tg)
                fprintf(f, "\n**Host per %s token:** %.0f µs of CPU, %.1f command buffers recorded, %.1f dispatches, "
                           "%.1f barriers, %.1f submits\n", t->name, t->host_us, t->recordings, t->dispatches,
                        t->barriers, t->submits);
        }
        if (r->n_kernels) {
            fprintf(f, "\n| kernel (%s step) | ms | share |\n|---|---:|---:|\n",
                    !strcmp(r->kernels_of, "tg") ? "decode" : "prompt");
            for (int i = 0; i < r->n_kernels; i++)
                fprintf(f, "| %s | %.3f | %.1f%% |\n", r->kernels[i].name, r->kernels[i].ms, r->kernels[i].percent);
        }
        return;
    }
    fprintf(f, "model:   %s (%.1f MiB, %s: %s)\n", r->model_name, r->file_bytes / 1048576.0, r->quant_mix, r->type_shares);
    fprintf(f, "load:    %.2f s    time to first token: %.1f ms (%ld-token prompt, cold)\n", r->load_s, r->ttft_ms,
            r->ttft_tokens);
    fprintf(f, "weights: %.1f MiB in device-local memory, %.1f MiB in host-visible memory (%s)%s\n\n",
            r->weights_in[MEM_DEVICE] / 1048576.0, r->weights_in[MEM_HOST] / 1048576.0, r->host_layers,
            r->dev.heaps_simulated ? ", heaps simulated by VKPHI_HEAPS" : "");
    if (r->n_par) print_parallel(r, false);
    if (r->n_tests) fprintf(f, "%-14s %18s %14s %10s %9s\n", "test", "tokens/s", "bytes/token", "GB/s", "roofline");
    for (int i = 0; i < r->n_tests; i++) {
        const test_result *t = &r->tests[i];
        char tps[40];
        snprintf(tps, sizeof tps, "%.2f ± %.2f", t->tps, t->stdev);
        fprintf(f, "%-14s %19s", t->name, tps); // ± is two bytes, one column
        if (t->is_tg) fprintf(f, " %11.1f MB %10.2f %8.1f%%", t->bytes_per_token / 1e6, t->gbps, 100 * t->roofline);
        fputc('\n', f);
    }
    for (int i = 0; i < r->n_tests; i++) {
        const test_result *t = &r->tests[i];
        if (t->is_tg)
            fprintf(f, "host per %s token: %.0f us of CPU; %.1f command buffers, %.1f dispatches, %.1f barriers, "
                       "%.1f submits\n", t->name, t->host_us, t->recordings, t->dispatches, t->barriers, t->submits);
    }
    if (r->n_kernels) {
        fprintf(f, "\nGPU time per %s step, by kernel:\n", !strcmp(r->kernels_of, "tg") ? "decode" : "prompt");
        for (int i = 0; i < r->n_kernels; i++)
            fprintf(f, "  %-24s %10.3f ms %6.1f%%\n", r->kernels[i].name, r->kernels[i].ms, r->kernels[i].percent);
    } else if (!r->n_par) { // --parallel measures no kernels
        fprintf(f, "\n(no per-kernel times: the device has no timestamp queries)\n");
    }
}

// ---- the command ----

// --parallel's value: a list, 4 or 1,2,4,8. 0, or 1 after an error line.
static int parse_parallel(bench_opts *o, const char *v) {
    const char *p = v;
    int rc = 0;
    o->n_parallel = 0;
    while (!rc && p && *p) {
        char item[32];
        size_t len = strcspn(p, ",");
        snprintf(item, sizeof item, "%.*s", (int)(len < 31 ? len : 31), p);
        if (o->n_parallel == MAX_PARALLEL)
            rc = args_fail("option '--parallel' takes at most %d values", MAX_PARALLEL);
        else if (!args_parse_long(item, 1, MAX_SEQUENCES, &o->parallel[o->n_parallel++]))
            rc = args_fail("option '--parallel' wants numbers of sequences from 1 to %d, like 4 or 1,2,4,8; "
                           "not '%s'", MAX_SEQUENCES, v);
        p += len + (p[len] == ',');
    }
    if (!rc && o->n_parallel == 0) rc = args_fail("option '--parallel' needs a number of sequences, like 4");
    return rc;
}

// The command line into o: 0 to go on, 1 after an error line, 2 after the help.
static int parse_bench_args(bench_opts *o, int argc, char **argv) {
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *target = !strcmp(a, "-p") ? &o->p : !strcmp(a, "-n") ? &o->n : !strcmp(a, "-r") ? &o->r : !strcmp(a, "-d") ? &o->depth : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            return 2;
        } else if (target) {
            const long lo = target == &o->r ? 1 : 0, hi = target == &o->r ? 1000 : 1 << 20;
            if (!v) rc = args_fail("option '%s' needs a number", a);
            else if (!args_parse_long(v, lo, hi, target)) rc = args_fail("option '%s' wants a number from %ld to %ld, not '%s'", a, lo, hi, v);
            i++;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--markdown")) {
            o->markdown = true;
        } else if (!strcmp(a, "--bandwidth")) {
            o->bandwidth_only = true;
        } else if (!strcmp(a, "--parallel")) {
            rc = parse_parallel(o, v);
            i++;
        } else if (!strcmp(a, "--peak")) {
            float x;
            if (!v || !args_parse_float(v, 1e-3f, 1e6f, &x)) rc = args_fail("option '--peak' wants a bandwidth in GB/s");
            o->peak_given = x;
            i++;
        } else {
            int k = args_parse(&o->a, ARGS_MODEL, argc, argv, &i);
            if (k < 0) rc = 1;
            else if (k == 0) rc = args_fail("unknown option '%s' for bench (see vkphi bench --help)", a);
        }
    }
    if (!rc && o->json && o->markdown) rc = args_fail("--json and --markdown exclude each other");
    if (!rc && !o->bandwidth_only && o->p == 0 && o->n == 0) rc = args_fail("nothing to measure: -p and -n are both 0");
    if (!rc && o->n_parallel && o->n == 0) rc = args_fail("nothing to measure: --parallel needs -n > 0");
    if (!rc && o->n_parallel && o->depth)
        rc = args_fail("-d does not apply to --parallel (each sequence starts from its -p-token prompt)");
    return rc ? 1 : 0;
}

// The model's path (-m, or the built-in default, generated on first use), checked to
// open as GGUF. 0, or 1 after an error line.
static int model_path(const bench_opts *o, char *path, size_t size) {
    int rc = 0;
    if (o->a.model) {
        snprintf(path, size, "%s", o->a.model);
    } else {
        int generated = 0;
        if (!o->a.quiet) vkphi_set_log_level(VKPHI_LOG_INFO); // "generating ..." on first use
        if (mkmodel_default_path(path, size, &generated) != VKPHI_OK)
            rc = args_fail("cannot prepare the built-in default model: %s", vkphi_last_error());
        vkphi_set_log_level(VKPHI_LOG_WARN);
    }
    gguf_file *f = rc ? NULL : gguf_open(path);
    if (!rc && !f) rc = args_fail("%s", vkphi_last_error());
    gguf_close(f);
    return rc;
}

// The device: its description, and its bandwidth unless --peak gives it. 0, or 1
// after an error line.
static int measure_device(const bench_opts *o, bench_report *rep) {
    device *d = NULL;
    int rc = 0;
    if (device_create(o->a.mp.device, &d) != VKPHI_OK) return args_fail("%s", vkphi_last_error());
    rep->dev = *device_get_info(d);
    char ver[64];
    device_driver_version_str(&rep->dev, ver, sizeof ver);
    snprintf(rep->driver, sizeof rep->driver, "%s %s", rep->dev.driver_name,
             rep->dev.driver_info[0] ? rep->dev.driver_info : ver);
    snprintf(rep->api, sizeof rep->api, "%u.%u.%u", VK_API_VERSION_MAJOR(rep->dev.api_version),
             VK_API_VERSION_MINOR(rep->dev.api_version), VK_API_VERSION_PATCH(rep->dev.api_version));
    if (o->peak_given > 0) {
        rep->peak = o->peak_given;
    } else {
        note(o, "measuring the memory bandwidth%s\n", "");
        bandwidth_result bw;
        if (bandwidth_measure(d, &bw) != VKPHI_OK) rc = args_fail("bandwidth test: %s", vkphi_last_error());
        rep->peak = bw.gb_per_s;
        rep->bw = bw;
        rep->peak_measured = true;
    }
    device_destroy(d);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {.p = 512, .n = 128, .r = 5, .depth = 0};
    args_init(&o.a, 0);
    int rc = parse_bench_args(&o, argc, argv);
    if (rc) {
        args_free(&o.a);
        return rc == 2 ? 0 : 1;
    }

    bench_report *rep = calloc(1, sizeof *rep);
    if (!rep) return args_fail("out of host memory");
    time_t now = time(NULL);
    strftime(rep->date, sizeof rep->date, "%Y-%m-%d", gmtime(&now));

    // The model first, so that a bad path fails before anything is measured.
    char path[4096] = "";
    if (!o.bandwidth_only) rc = model_path(&o, path, sizeof path);
    if (!rc) rc = measure_device(&o, rep);
    if (!rc && !o.bandwidth_only) rc = run_model(&o, path, rep);
    if (!rc) {
        if (o.json) print_json(rep, !o.bandwidth_only);
        else print_text(rep, !o.bandwidth_only, o.markdown);
    }
    free(rep);
    args_free(&o.a);
    return rc ? 1 : 0;
}
