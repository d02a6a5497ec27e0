// SPDX-License-Identifier: MIT
// vkphi run: one prompt in, the completion streamed to stdout as it is generated.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

#define RUN_DEFAULT_PROMPT "Once upon a time,"
#define RUN_DEFAULT_CHAT_PROMPT "Write a haiku about the sea."

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi run [-m MODEL] [-p PROMPT | -f FILE] [--chat [--system S]] [options]\n\n"
               "Generates a completion of the prompt and streams it to stdout as it is generated; at the\n"
               "end, prints the prompt and generation speed and the time to the first token on stderr.\n"
               "Without -m it runs the built-in default model, whose weights (and so text) are random.\n\n"
               "prompt:\n"
               "  -p, --prompt TEXT       the prompt (default: \"" RUN_DEFAULT_PROMPT "\", or with --chat\n"
               "                          \"" RUN_DEFAULT_CHAT_PROMPT "\")\n"
               "  -f, --file FILE         read the prompt from FILE ('-': standard input)\n"
               "  --chat                  wrap the prompt in the model's chat template as a user turn\n"
               "  --system S              with --chat: a system turn first\n"
               "  --special               read special tokens such as <|im_start|> in the prompt, and show\n"
               "                          the special tokens the model writes (end tokens always stop it)\n"
               "  -h, --help              this help\n");
    args_help(f, ARGS_MODEL | ARGS_SAMPLING | ARGS_TEMPLATE | ARGS_REASONING);
    fprintf(f, "  (default for run: -n 256)\n");
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL); // a second Ctrl-C ends the program at once
}

static bool on_text(const char *text, size_t len, void *user) {
    args_answer *o = user;
    return args_answer_put(o, text, len) && !interrupted;
}

typedef struct run_opts {
    cli_args a;
    const char *prompt, *file, *system;
    bool chat, special;
} run_opts;

// The command line into r: 0 to go on, 1 after an error line, 2 after the help.
static int parse_run_args(run_opts *r, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int k = args_parse(&r->a, ARGS_MODEL | ARGS_SAMPLING | ARGS_TEMPLATE | ARGS_REASONING, argc, argv, &i);
        if (k < 0) return 1;
        if (k > 0) continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 2;
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            if (i + 1 >= argc) return args_fail("option '%s' needs the prompt text", o);
            r->prompt = argv[++i];
        } else if (!strcmp(o, "-f") || !strcmp(o, "--file")) {
            if (i + 1 >= argc) return args_fail("option '%s' needs a file name", o);
            r->file = argv[++i];
        } else if (!strcmp(o, "--system")) {
            if (i + 1 >= argc) return args_fail("option '%s' needs the system prompt text", o);
            r->system = argv[++i];
        } else if (!strcmp(o, "--chat")) {
            r->chat = true;
        } else if (!strcmp(o, "--special")) {
            r->special = true;
        } else if (o[0] == '-') {
            return args_fail("unknown option '%s' for run (see vkphi run --help)", o);
        } else {
            return args_fail("unexpected argument '%s': give the prompt with -p (see vkphi run --help)", o);
        }
    }
    if (r->prompt && r->file) return args_fail("give either -p PROMPT or -f FILE, not both");
    if (r->system && !r->chat)
        return args_fail("--system needs --chat (a system turn only exists in the chat template)");
    return 0;
}

// The prompt's token ids: text as a user turn (after the system turn) in the chat
// format, or text as it is after the BOS token when the file asks for one. Prints
// one error line and returns 1 on failure.
static int prompt_ids(const run_opts *r, model *m, tokenizer *t, const char *text, int32_t **ids, size_t *n_ids) {
    if (r->chat) {
        chat_message msgs[2];
        size_t n = 0;
        if (r->system) msgs[n++] = (chat_message){"system", r->system};
        msgs[n++] = (chat_message){"user", text};
        enum chat_template tmpl;
        if (chat_template_choose(model_gguf(m), t, r->a.chat_template, &tmpl) != VKPHI_OK ||
            chat_render(t, tmpl, msgs, n, NULL, true, ids, n_ids) != VKPHI_OK)
            return args_fail("%s", vkphi_last_error());
    } else {
        bool add_bos = false;
        gguf_get_bool(model_gguf(m), "tokenizer.ggml.add_bos_token", &add_bos);
        int32_t bos = tokenizer_bos(t);
        if (add_bos && bos >= 0) {
            *ids = malloc(sizeof **ids);
            if (!*ids) return args_fail("out of memory");
            (*ids)[(*n_ids)++] = bos;
        }
        if (tokenizer_encode(t, text, strlen(text), r->special, ids, n_ids) != VKPHI_OK)
            return args_fail("%s", vkphi_last_error());
        if (*n_ids == 0) return args_fail("the prompt is empty: give some text with -p or -f");
    }
    if (*n_ids >= model_n_ctx(m))
        return args_fail("the prompt has %zu tokens, which leaves no room in the context of %u tokens (raise -c)",
                         *n_ids, model_n_ctx(m));
    return 0;
}

// Evaluates the prompt and streams the answer to stdout (Ctrl-C stops it), then the
// notes and timings on stderr. Prints one error line and returns 1 on failure.
static int run_answer(const cli_args *a, model *m, generate_session *s, const int32_t *ids, size_t n_ids) {
    signal(SIGINT, on_sigint);
    args_answer out;
    if (!args_answer_init(&out, a->reasoning, isatty(1))) return args_fail("out of memory");
    generate_result res;
    if (generate_prefill(s, ids, n_ids, NULL) != VKPHI_OK ||
        generate_run(s, &a->gen, on_text, &out, &res) != VKPHI_OK) {
        args_answer_end(&out);
        if (out.wrote) fputc('\n', stdout);
        return args_fail("%s", vkphi_last_error());
    }
    signal(SIGINT, SIG_DFL);
    if (!args_answer_end(&out)) return args_fail("cannot write the output");
    if (out.wrote && out.last != '\n' && isatty(1)) fputc('\n', stdout);
    fflush(stdout);
    if (!a->quiet) {
        if (res.finish == GENERATE_FINISH_ABORT)
            fprintf(stderr, "\n[interrupted]\n");
        else if (res.context_full)
            fprintf(stderr, "note: the context is full (%u tokens): generation stopped there (raise -c for more)\n",
                    model_n_ctx(m));
        args_print_stats(&res.stats);
    }
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_opts r = {0};
    args_init(&r.a, 256);
    int rc = parse_run_args(&r, argc, argv);
    if (rc) {
        args_free(&r.a);
        return rc == 2 ? 0 : 1;
    }
    args_finish(&r.a);
    r.a.gen.special = r.special;

    rc = 1;
    char *text = NULL;
    model *m = NULL;
    tokenizer *t = NULL;
    generate_session *s = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (r.file && !(text = args_read_file(r.file, NULL))) goto done;
    if (!r.file) text = strdup(r.prompt ? r.prompt : r.chat ? RUN_DEFAULT_CHAT_PROMPT : RUN_DEFAULT_PROMPT);
    if (!text) {
        args_fail("out of memory");
        goto done;
    }
    if (args_load_model(&r.a, 1, &m, &t) || prompt_ids(&r, m, t, text, &ids, &n_ids)) goto done;
    if (!(s = generate_session_create(m, t, 0))) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    rc = run_answer(&r.a, m, s, ids, n_ids);
done:
    generate_session_destroy(s);
    free(ids);
    tokenizer_destroy(t);
    model_free(m);
    free(text);
    args_free(&r.a);
    return rc;
}
