// SPDX-License-Identifier: MIT
// Options shared by the commands that load a model and generate.
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkphi.h"

int args_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vkphi: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

bool args_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool args_parse_float(const char *s, float lo, float hi, float *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

void args_init(cli_args *a, int32_t max_tokens) {
    memset(a, 0, sizeof *a);
    a->mp.device = -1;
    a->mp.n_ubatch = 512;
    a->mp.kv = KV_F16;
    a->default_ctx = 0; // the trained context when it fits, else the most that fits
    a->gen = generate_default_params();
    a->gen.max_tokens = max_tokens;
}

void args_free(cli_args *a) {
    free(a->force);
    a->force = NULL;
    for (size_t i = 0; i < a->n_stop; i++)
        free(a->stop[i]);
    free(a->stop);
    a->stop = NULL;
    a->n_stop = 0;
}

// A copy of s with \n, \t, \r, \\ and \" turned into the characters.
static char *unescape(const char *s) {
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out) return NULL;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case 'n':
            *o++ = '\n';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '"':
            *o++ = '"';
            break;
        case '\'':
            *o++ = '\'';
            break;
        default:
            *o++ = '\\', *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

static bool is(const char *a, const char *s1, const char *s2) { return !strcmp(a, s1) || (s2 && !strcmp(a, s2)); }

// The options of one group: argv[*i] is o, v the next argument (NULL: none). Each
// returns 1 when it consumed o (and v, advancing *i), 0 when o is not one of its
// options, -1 after printing one error line when v is missing or bad.
#define NEED_VALUE(what)                                                                                               \
    do {                                                                                                               \
        if (!v) {                                                                                                      \
            args_fail("option '%s' needs %s", o, what);                                                                \
            return -1;                                                                                                 \
        }                                                                                                              \
        ++*i;                                                                                                          \
    } while (0)
#define BAD(what)                                                                                                      \
    do {                                                                                                               \
        args_fail("option '%s' wants %s, not '%s'", o, what, v);                                                       \
        return -1;                                                                                                     \
    } while (0)

static int parse_model_option(cli_args *a, const char *o, const char *v, int *i) {
    long n;
    if (is(o, "-m", "--model")) {
        NEED_VALUE("a GGUF file");
        a->model = v;
        return 1;
    }
    if (is(o, "--device", NULL)) {
        NEED_VALUE("a device number (see vkphi devices)");
        if (!args_parse_long(v, 0, 1000, &n)) BAD("a device number (see vkphi devices)");
        a->mp.device = (int)n;
        return 1;
    }
    if (is(o, "-c", "--ctx") || is(o, "--ctx-size", NULL)) {
        NEED_VALUE("a number of tokens");
        if (!args_parse_long(v, 0, 1 << 24, &n)) BAD("a number of tokens (0: the model's context)");
        a->mp.n_ctx = (uint32_t)n;
        a->ctx_given = true;
        return 1;
    }
    if (is(o, "--ubatch", "-ub") || is(o, "--ubatch-size", NULL)) {
        NEED_VALUE("a number of tokens");
        if (!args_parse_long(v, 1, 1 << 16, &n)) BAD("a number of tokens from 1 to 65536");
        a->mp.n_ubatch = (uint32_t)n;
        return 1;
    }
    if (is(o, "--kv", NULL)) {
        NEED_VALUE("f16 or q8_0");
        if (!strcmp(v, "f16"))
            a->mp.kv = KV_F16;
        else if (!strcmp(v, "q8_0"))
            a->mp.kv = KV_Q8_0;
        else
            BAD("f16 or q8_0");
        return 1;
    }
    if (is(o, "-q", "--quiet")) {
        a->quiet = true;
        return 1;
    }
    return 0;
}

static int parse_sampling_option(cli_args *a, const char *o, const char *v, int *i) {
    long n;
    float x;
    sampler_params *sp = &a->gen.sampling;
    if (is(o, "-n", "--n-predict") || is(o, "--max-tokens", NULL)) {
        NEED_VALUE("a number of tokens");
        if (!args_parse_long(v, -1, INT32_MAX, &n)) BAD("a number of tokens (-1: no limit)");
        a->gen.max_tokens = (int32_t)n;
        return 1;
    }
    if (is(o, "--temp", "--temperature")) {
        NEED_VALUE("a temperature");
        if (!args_parse_float(v, 0, 1e6f, &x)) BAD("a temperature >= 0");
        sp->temperature = x;
        return 1;
    }
    if (is(o, "--top-k", NULL)) {
        NEED_VALUE("a number of tokens");
        if (!args_parse_long(v, 0, INT32_MAX, &n)) BAD("a number of tokens >= 0 (0: off)");
        sp->top_k = (int32_t)n;
        return 1;
    }
    if (is(o, "--top-p", NULL)) {
        NEED_VALUE("a probability");
        if (!args_parse_float(v, 0, 1, &x)) BAD("a probability from 0 to 1 (1: off)");
        sp->top_p = x;
        return 1;
    }
    if (is(o, "--min-p", NULL)) {
        NEED_VALUE("a probability");
        if (!args_parse_float(v, 0, 1, &x)) BAD("a probability from 0 to 1 (0: off)");
        sp->min_p = x;
        return 1;
    }
    if (is(o, "--repeat-penalty", NULL)) {
        NEED_VALUE("a penalty");
        if (!args_parse_float(v, 1e-6f, 1e6f, &x)) BAD("a penalty > 0 (1: off)");
        sp->repeat_penalty = x;
        return 1;
    }
    if (is(o, "--presence-penalty", NULL)) {
        NEED_VALUE("a penalty");
        if (!args_parse_float(v, -1e6f, 1e6f, &x)) BAD("a number (0: off)");
        sp->presence_penalty = x;
        return 1;
    }
    if (is(o, "--frequency-penalty", NULL)) {
        NEED_VALUE("a penalty");
        if (!args_parse_float(v, -1e6f, 1e6f, &x)) BAD("a number (0: off)");
        sp->frequency_penalty = x;
        return 1;
    }
    if (is(o, "--repeat-last-n", NULL)) {
        NEED_VALUE("a number of tokens");
        if (!args_parse_long(v, 0, INT32_MAX, &n)) BAD("a number of tokens >= 0");
        sp->repeat_last_n = (int32_t)n;
        return 1;
    }
    return 0;
}

// --seed and --stop, the sampling options that are not one number.
static int parse_seed_stop_option(cli_args *a, const char *o, const char *v, int *i) {
    if (is(o, "--seed", "-s")) {
        NEED_VALUE("a number");
        char *end;
        errno = 0;
        if (!strcmp(v, "-1")) {
            a->seed_given = false;
            return 1;
        }
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || *end || !*v || *v == '-') BAD("a number >= 0 (-1: random)");
        a->gen.sampling.seed = s;
        a->seed_given = true;
        return 1;
    }
    if (is(o, "--stop", NULL)) {
        NEED_VALUE("a string");
        if (!*v) BAD("a string that is not empty");
        char **st = realloc(a->stop, (a->n_stop + 1) * sizeof *st);
        char *copy = st ? unescape(v) : NULL;
        if (st) a->stop = st;
        if (!copy) {
            args_fail("out of memory");
            return -1;
        }
        a->stop[a->n_stop++] = copy;
        a->gen.stop = (const char *const *)a->stop;
        a->gen.n_stop = a->n_stop;
        return 1;
    }
    return 0;
}

static int parse_template_option(cli_args *a, const char *o, const char *v, int *i) {
    if (is(o, "--chat-template", NULL)) {
        NEED_VALUE("a chat format name (" CHAT_TEMPLATE_NAMES ")");
        if (chat_template_by_name(v) == CHAT_TEMPLATE_NONE) BAD("one of " CHAT_TEMPLATE_NAMES);
        a->chat_template = v;
        return 1;
    }
    return 0;
}

static int parse_reasoning_option(cli_args *a, const char *o, const char *v, int *i) {
    if (is(o, "--reasoning", NULL)) {
        NEED_VALUE("hide, show or raw");
        if (!strcmp(v, "show"))
            a->reasoning = ARGS_REASONING_SHOW;
        else if (!strcmp(v, "hide"))
            a->reasoning = ARGS_REASONING_HIDE;
        else if (!strcmp(v, "raw"))
            a->reasoning = ARGS_REASONING_RAW;
        else
            BAD("hide, show or raw");
        return 1;
    }
    return 0;
}
#undef NEED_VALUE
#undef BAD

int args_parse(cli_args *a, unsigned groups, int argc, char **argv, int *i) {
    const char *o = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int k = 0;
    if (!k && (groups & ARGS_MODEL)) k = parse_model_option(a, o, v, i);
    if (!k && (groups & ARGS_SAMPLING)) k = parse_sampling_option(a, o, v, i);
    if (!k && (groups & ARGS_SAMPLING)) k = parse_seed_stop_option(a, o, v, i);
    if (!k && (groups & ARGS_TEMPLATE)) k = parse_template_option(a, o, v, i);
    if (!k && (groups & ARGS_REASONING)) k = parse_reasoning_option(a, o, v, i);
    return k;
}

void args_finish(cli_args *a) {
    a->mp.quiet = a->quiet;
    if (!a->seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        a->gen.sampling.seed = s & 0x7fffffffffffffffull;
    }
}

void args_help(FILE *f, unsigned groups) {
    if (groups & ARGS_MODEL)
        fprintf(f, "model:\n"
                   "  -m, --model FILE        a Phi-4 GGUF file (default: the built-in model with random weights)\n"
                   "  -c, --ctx N             context in tokens (default and 0: the model's own when it fits in\n"
                   "                          memory, else the most that fits)\n"
                   "  --device N              the Vulkan device to use (see vkphi devices; default: VKPHI_DEVICE\n"
                   "                          or the best one)\n"
                   "  --ubatch N              most prompt tokens evaluated in one step (default 512)\n"
                   "  --kv f16|q8_0           KV cache type (default f16; q8_0 takes half the memory)\n"
                   "  -q, --quiet             print nothing on stderr but errors (no memory plan, progress, notes\n"
                   "                          or timings)\n");
    if (groups & ARGS_SAMPLING)
        fprintf(f, "sampling:\n"
                   "  -n, --n-predict N       most tokens to generate (-1: until the end token or a full context)\n"
                   "  --temp T                temperature (default 0.8; 0: greedy, the seed does not matter)\n"
                   "  --top-k N               keep the N most likely tokens (default 40; 0: off)\n"
                   "  --top-p P               keep the smallest set of tokens with probability >= P (default\n"
                   "                          0.95; 1: off)\n"
                   "  --min-p P               drop tokens less likely than P times the most likely (default\n"
                   "                          0.05; 0: off)\n"
                   "  --repeat-penalty X      divide the logits of recent tokens by X (default 1: off)\n"
                   "  --presence-penalty X    subtract X from the logits of recent tokens (default 0: off)\n"
                   "  --frequency-penalty X   subtract X times their count from recent tokens' logits (default 0)\n"
                   "  --repeat-last-n N       how many recent tokens the penalties look at (default 64)\n"
                   "  --seed N                random seed: the same seed and settings give the same text\n"
                   "                          (default: random)\n"
                   "  --stop S                stop before the text S (repeatable; \\n and \\t are understood)\n");
    if (groups & (ARGS_TEMPLATE | ARGS_REASONING)) fprintf(f, "chat format:\n");
    if (groups & ARGS_TEMPLATE)
        fprintf(f, "  --chat-template NAME    the chat format to use when the model's tokenizer.chat_template is\n"
                   "                          not one vkphi knows: " CHAT_TEMPLATE_NAMES "\n");
    if (groups & ARGS_REASONING)
        fprintf(f, "  --reasoning MODE        a <think>...</think> section of the answer: show (without the\n"
                   "                          tags, dimmed on a terminal; default), hide, or raw (as generated)\n");
}

// ---- the answer on stdout ----

static void answer_write(args_answer *o, const char *text, size_t len) {
    if (!len || o->write_failed) return;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) o->write_failed = true;
    o->wrote = true;
    o->last = text[len - 1];
}

static void answer_part(enum chat_part part, const char *text, size_t len, void *user) {
    args_answer *o = user;
    bool reasoning = part == CHAT_PART_REASONING;
    if (reasoning && o->mode == ARGS_REASONING_HIDE) return;
    if (reasoning != o->dimmed) {
        if (!reasoning && o->wrote && o->last != '\n') answer_write(o, "\n", 1); // the answer on its own line
        if (o->tty) answer_write(o, reasoning ? "\x1b[2m" : "\x1b[0m", 4);
        o->dimmed = reasoning;
    }
    answer_write(o, text, len);
}

bool args_answer_init(args_answer *o, enum args_reasoning mode, bool tty) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->tty = tty;
    o->split = chat_splitter_create(mode != ARGS_REASONING_RAW, false);
    return o->split != NULL;
}

bool args_answer_put(args_answer *o, const char *text, size_t len) {
    if (chat_splitter_put(o->split, text, len, answer_part, o) != VKPHI_OK) o->write_failed = true;
    return !o->write_failed;
}

bool args_answer_end(args_answer *o) {
    if (o->split) chat_splitter_flush(o->split, answer_part, o, NULL);
    if (o->dimmed && o->tty) answer_write(o, "\x1b[0m", 4);
    o->dimmed = false;
    chat_splitter_destroy(o->split);
    o->split = NULL;
    return !o->write_failed;
}

// A progress bar on stderr while the weights upload.
static void draw_progress(double fraction, void *user) {
    int *last = user, pct = (int)(fraction * 100 + 0.5), filled = pct * 30 / 100;
    if (pct == *last) return;
    *last = pct;
    fprintf(stderr, "\rloading weights [%.*s%*s] %3d%%", filled, "##############################", 30 - filled, "",
            pct);
    if (pct >= 100) fputc('\n', stderr);
    fflush(stderr);
}

int args_load_model(cli_args *a, uint32_t n_seq, model **m, tokenizer **t) {
    *m = NULL;
    if (t) *t = NULL;
    char path[4096];
    if (!a->model) {
        int generated = 0;
        if (!a->quiet)
            fprintf(stderr, "note: no model given (-m): using the built-in default model. Its weights are random, so\n"
                            "      the text it writes is random too. To run Phi-4 itself, download a Phi-4 GGUF\n"
                            "      and give it with -m, e.g.  vkphi run -m phi-4-Q4_K_M.gguf -p \"Hello\" --chat\n");
        if (!a->quiet) vkphi_set_log_level(VKPHI_LOG_INFO); // "generating ..." on first use
        int rc = mkmodel_default_path(path, sizeof path, &generated);
        vkphi_set_log_level(VKPHI_LOG_WARN);
        if (rc != VKPHI_OK) return args_fail("cannot prepare the built-in default model: %s", vkphi_last_error());
    } else {
        snprintf(path, sizeof path, "%s", a->model);
    }

    // The context: -c N; else (and with -c 0) default_ctx when a command sets one,
    // never more than the model was trained for; else 0, which model_load resolves
    // to the trained context when it fits and to the most that fits otherwise.
    gguf_file *f = gguf_open(path);
    if (!f) return args_fail("%s", vkphi_last_error());
    model_config cfg;
    int rc = model_config_read(f, &cfg);
    gguf_close(f);
    if (rc != VKPHI_OK) return args_fail("%s", vkphi_last_error());
    model_params mp = a->mp;
    if (!a->ctx_given || mp.n_ctx == 0)
        mp.n_ctx = a->default_ctx < cfg.n_ctx_train ? a->default_ctx : cfg.n_ctx_train;
    mp.n_seq = n_seq;

    // The memory plan is logged at INFO level: shown unless -q.
    int last_pct = -1;
    if (!a->quiet) vkphi_set_log_level(VKPHI_LOG_INFO);
    if (!a->quiet && isatty(2)) {
        mp.on_progress = draw_progress;
        mp.progress_user = &last_pct;
    }
    rc = model_load(path, &mp, m);
    vkphi_set_log_level(VKPHI_LOG_WARN);
    if (last_pct >= 0 && last_pct < 100) {
        if (rc == VKPHI_OK)
            draw_progress(1.0, &last_pct); // the bar ends full
        else
            fputc('\n', stderr);
    }
    if (rc != VKPHI_OK) return args_fail("%s", vkphi_last_error());
    a->mp.n_ctx = model_n_ctx(*m);
    if (!t) return 0; // the caller works on token ids only
    *t = tokenizer_create(model_gguf(*m));
    if (!*t) {
        args_fail("%s", vkphi_last_error()); // tokenizer_create names the file
        model_free(*m);
        *m = NULL;
        return 1;
    }
    const char *force = getenv("VKPHI_TEST_OUTPUT");
    if (force && *force) {
        size_t n = 0;
        if (tokenizer_encode(*t, force, strlen(force), true, &a->force, &n) != VKPHI_OK) {
            args_fail("VKPHI_TEST_OUTPUT: %s", vkphi_last_error());
            tokenizer_destroy(*t);
            model_free(*m);
            *t = NULL;
            *m = NULL;
            return 1;
        }
        a->gen.force = a->force;
        a->gen.n_force = n;
        if (!a->quiet) fprintf(stderr, "note: VKPHI_TEST_OUTPUT is set: answers begin with its %zu tokens\n", n);
    }
    return 0;
}

char *args_read_file(const char *path, size_t *len) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) {
        args_fail("cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, fp);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    bool bad = ferror(fp);
    if (fp != stdin) fclose(fp);
    if (!buf) {
        args_fail("out of memory reading '%s'", path);
        return NULL;
    }
    if (bad) {
        args_fail("cannot read '%s'", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

void args_print_stats(const generate_stats *st) {
    uint32_t n_eval = st->n_prompt - st->n_reused;
    fprintf(stderr, "prompt: %u tokens", st->n_prompt);
    if (st->n_reused) fprintf(stderr, " (%u reused from the cache)", st->n_reused);
    if (n_eval && st->prompt_s > 0) fprintf(stderr, " in %.3f s, %.1f tokens/s", st->prompt_s, n_eval / st->prompt_s);
    fprintf(stderr, " | generation: %u tokens", st->n_gen);
    // The first token comes with the prompt; the rest each cost one decode step.
    if (st->n_gen > 1 && st->gen_s > 0)
        fprintf(stderr, " in %.3f s, %.1f tokens/s", st->gen_s, (st->n_gen - 1) / st->gen_s);
    if (st->n_gen) fprintf(stderr, " | time to first token %.3f s", st->ttft_s);
    fputc('\n', stderr);
}

void args_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
