// SPDX-License-Identifier: MIT
// vkphi chat: an interactive multi-turn chat in the terminal. The conversation's
// tokens stay in the KV cache between turns, so each turn only evaluates itself.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi chat [-m MODEL] [--system S] [options]\n\n"
               "Chats with the model in the terminal: type a message and Enter (end a line with \\ to go\n"
               "on on the next one). The conversation stays in the KV cache, so each turn only reads\n"
               "the new message. Ctrl-C stops the answer being written; Ctrl-C twice at the prompt\n"
               "quits, and so does end of input (Ctrl-D). With standard input not a terminal, each line\n"
               "is one message and each answer is written as one line of output, with no decorations.\n"
               "Without -m it runs the built-in default model, whose weights (and so text) are random.\n\n"
               "commands:\n"
               "  /reset                  forget the conversation (the system prompt stays)\n"
               "  /exit, /quit            leave\n\n"
               "when the context is full: before a message that would leave less than a quarter of the\n"
               "context (or -n tokens, if fewer) for the answer, the oldest turns are dropped, the system\n"
               "prompt is kept, and the rest is read again; chat says how many turns it dropped. A\n"
               "message too long to fit even alone is refused. An answer that fills the context is cut\n"
               "off there.\n\n"
               "  --system S              a system prompt that starts the conversation\n"
               "  -h, --help              this help\n");
    args_help(f, ARGS_MODEL | ARGS_SAMPLING | ARGS_TEMPLATE | ARGS_REASONING);
    fprintf(f, "  (default for chat: -n 1024 tokens per answer)\n");
}

static volatile sig_atomic_t interrupts;
static void on_sigint(int sig) {
    (void)sig;
    interrupts++;
}

typedef struct chat_turn {
    int32_t *ids; // the user message and the answer, as the model saw them
    size_t n;
} chat_turn;

typedef struct chat_state {
    tokenizer *t;
    generate_session *s;
    enum chat_template tmpl;
    int32_t im_end; // the token that closes a turn: <|im_end|> or <|end|>
    args_answer out;
    int32_t *system;
    size_t n_system;
    chat_turn *turns;
    size_t n_turns, first; // turns[first..n_turns) are the conversation
    bool tty;
} chat_state;

static bool on_text(const char *text, size_t len, void *user) {
    chat_state *c = user;
    return args_answer_put(&c->out, text, len) && interrupts == 0;
}

static size_t conversation_len(const chat_state *c) {
    size_t n = c->n_system;
    for (size_t i = c->first; i < c->n_turns; i++)
        n += c->turns[i].n;
    return n;
}

static void forget_turns(chat_state *c) {
    for (size_t i = 0; i < c->n_turns; i++)
        free(c->turns[i].ids);
    c->n_turns = c->first = 0;
}

// Appends src[0..n) to dst (grown with realloc); NULL (dst freed) when out of memory.
static int32_t *append(int32_t *dst, size_t *len, const int32_t *src, size_t n) {
    int32_t *p = realloc(dst, (*len + n + 1) * sizeof *p);
    if (!p) {
        free(dst);
        return NULL;
    }
    memcpy(p + *len, src, n * sizeof *p);
    *len += n;
    return p;
}

// Reads one message (lines ending in '\' go on). Returns 1 with *line set, 0 at the
// end of input, -1 when Ctrl-C interrupted the reading.
static int read_message(bool tty, char **line, size_t *cap, char **msg, size_t *msg_len) {
    *msg_len = 0;
    for (;;) {
        if (tty) {
            fputs(*msg_len ? ". " : "> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        ssize_t n = getline(line, cap, stdin);
        if (n < 0) {
            bool intr = errno == EINTR || interrupts;
            clearerr(stdin);
            if (intr) return -1;
            return *msg_len ? 1 : 0;
        }
        while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
            n--;
        bool more = n > 0 && (*line)[n - 1] == '\\';
        if (more) (*line)[--n] = '\n', n++;
        char *m = realloc(*msg, *msg_len + (size_t)n + 1);
        if (!m) {
            args_fail("out of memory reading the message");
            return 0;
        }
        *msg = m;
        memcpy(m + *msg_len, *line, (size_t)n);
        *msg_len += (size_t)n;
        m[*msg_len] = 0;
        if (!more) return 1;
    }
}

// One turn: fits the message into the context, prefills, streams the answer.
// Returns 0, or 1 on an error that ends the chat.
static int chat_turn_run(chat_state *c, cli_args *a, const char *msg) {
    uint32_t n_ctx = generate_n_ctx(c->s);
    int32_t *user = NULL, *ids = NULL;
    size_t n_user = 0, n_ids = 0;
    chat_message m = {"user", msg};
    if (chat_render(c->t, c->tmpl, &m, 1, NULL, true, &user, &n_user) != VKPHI_OK)
        return args_fail("%s", vkphi_last_error());

    // Room for the answer: a quarter of the context, or -n if less (at least one token).
    size_t reserve = n_ctx / 4;
    if (a->gen.max_tokens >= 0 && (size_t)a->gen.max_tokens < reserve) reserve = (size_t)a->gen.max_tokens;
    if (reserve == 0) reserve = 1;
    if (c->n_system + n_user + reserve > n_ctx) {
        fprintf(stderr,
                "[this message is %zu tokens: with the system prompt and room for an answer it does not fit the "
                "context of %u tokens (raise -c); not sent]\n",
                n_user, n_ctx);
        free(user);
        return 0;
    }
    size_t dropped = 0;
    while (conversation_len(c) + n_user + reserve > n_ctx) {
        free(c->turns[c->first].ids);
        c->turns[c->first++].ids = NULL;
        dropped++;
    }
    if (dropped)
        fprintf(stderr,
                "[context full: dropped the %zu oldest turn%s (the system prompt stays) and re-reading the rest]\n",
                dropped, dropped > 1 ? "s" : "");

    int rc = 1;
    ids = append(NULL, &n_ids, c->system, c->n_system);
    for (size_t i = c->first; ids && i < c->n_turns; i++)
        ids = append(ids, &n_ids, c->turns[i].ids, c->turns[i].n);
    if (ids) ids = append(ids, &n_ids, user, n_user);
    chat_turn *turns = realloc(c->turns, (c->n_turns + 1) * sizeof *turns);
    if (turns) c->turns = turns;
    if (!ids || !turns) {
        args_fail("out of memory");
        goto done;
    }

    generate_result res;
    interrupts = 0;
    if (!args_answer_init(&c->out, a->reasoning, c->tty)) {
        args_fail("out of memory");
        goto done;
    }
    if (generate_prefill(c->s, ids, n_ids, NULL) != VKPHI_OK ||
        generate_run(c->s, &a->gen, on_text, c, &res) != VKPHI_OK) {
        args_answer_end(&c->out);
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    if (!args_answer_end(&c->out)) {
        args_fail("cannot write the output");
        goto done;
    }
    if (c->out.last != '\n' || !c->out.wrote || !c->tty) fputc('\n', stdout);
    fflush(stdout);

    // The turn as the model saw it: the message, the answer's tokens, and the turn's end
    // (also when the answer was cut short, so the next turn starts cleanly).
    chat_turn *turn = &c->turns[c->n_turns];
    turn->n = 0;
    turn->ids = append(NULL, &turn->n, user, n_user);
    if (turn->ids) turn->ids = append(turn->ids, &turn->n, res.tokens, res.n_tokens);
    if (turn->ids) turn->ids = append(turn->ids, &turn->n, &c->im_end, 1);
    if (!turn->ids) {
        args_fail("out of memory");
        goto done;
    }
    c->n_turns++;

    if (c->tty && !a->quiet) {
        if (res.finish == GENERATE_FINISH_ABORT) fprintf(stderr, "[stopped]\n");
        if (res.context_full)
            fprintf(stderr, "[context full: the answer was cut off; the oldest turns will be dropped next turn]\n");
        const generate_stats *st = &res.stats;
        fprintf(stderr, "[context %zu/%u | prompt %u new tokens", conversation_len(c), n_ctx,
                st->n_prompt - st->n_reused);
        if (st->n_gen > 1 && st->gen_s > 0) fprintf(stderr, " | %.1f tokens/s", (st->n_gen - 1) / st->gen_s);
        fprintf(stderr, "]\n");
    } else if (res.context_full && !a->quiet) {
        fprintf(stderr, "[context full: the answer was cut off]\n");
    }
    rc = 0;
done:
    free(user);
    free(ids);
    return rc;
}

int cmd_chat(int argc, char **argv) {
    cli_args a;
    args_init(&a, 1024);
    const char *system = NULL;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = args_parse(&a, ARGS_MODEL | ARGS_SAMPLING | ARGS_TEMPLATE | ARGS_REASONING, argc, argv, &i);
        if (r < 0) {
            args_free(&a);
            return 1;
        }
        if (r > 0) continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            args_free(&a);
            return 0;
        } else if (!strcmp(o, "--system")) {
            if (i + 1 >= argc) {
                args_free(&a);
                return args_fail("option '%s' needs the system prompt text", o);
            }
            system = argv[++i];
        } else {
            args_free(&a);
            return args_fail("%s '%s' for chat (see vkphi chat --help)",
                             o[0] == '-' ? "unknown option" : "unexpected argument", o);
        }
    }
    args_finish(&a);

    int rc = 1;
    model *m = NULL;
    chat_state c = {0};
    c.tty = isatty(0) && isatty(1);
    char *line = NULL, *msg = NULL;
    size_t cap = 0, msg_len = 0;
    if (args_load_model(&a, 1, &m, &c.t)) goto done;
    if (chat_template_choose(model_gguf(m), c.t, a.chat_template, &c.tmpl) != VKPHI_OK) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    c.im_end = tokenizer_token_id(c.t, c.tmpl == CHAT_TEMPLATE_PHI4 ? "<|im_end|>" : "<|end|>");
    if (system) {
        chat_message sm = {"system", system};
        if (chat_render(c.t, c.tmpl, &sm, 1, NULL, false, &c.system, &c.n_system) != VKPHI_OK) {
            args_fail("%s", vkphi_last_error());
            goto done;
        }
    }
    if (!(c.s = generate_session_create(m, c.t, 0))) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; // no SA_RESTART: Ctrl-C interrupts the read at the prompt
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (c.tty && !a.quiet)
        fprintf(stderr, "chatting with %s (context %u tokens). /reset forgets, /exit leaves, Ctrl-C stops an answer.\n",
                a.model ? a.model : "the built-in default model", generate_n_ctx(c.s));

    bool interrupted_at_prompt = false;
    for (;;) {
        interrupts = 0;
        int r = read_message(c.tty, &line, &cap, &msg, &msg_len);
        if (r < 0) {
            if (interrupted_at_prompt) {
                fputc('\n', stdout);
                break;
            }
            interrupted_at_prompt = true;
            fprintf(stderr, "\n[Ctrl-C again or /exit to quit]\n");
            continue;
        }
        if (r == 0) {
            if (c.tty) fputc('\n', stdout);
            break;
        }
        interrupted_at_prompt = false;
        if (!strcmp(msg, "/exit") || !strcmp(msg, "/quit")) break;
        if (!strcmp(msg, "/reset")) {
            forget_turns(&c);
            if (c.tty) fprintf(stderr, "[conversation forgotten]\n");
            continue;
        }
        if (msg_len == 0) continue;
        if (chat_turn_run(&c, &a, msg)) goto done;
    }
    rc = 0;
done:
    signal(SIGINT, SIG_DFL);
    fflush(stdout);
    forget_turns(&c);
    free(c.turns);
    free(c.system);
    free(line);
    free(msg);
    generate_session_destroy(c.s);
    tokenizer_destroy(c.t);
    model_free(m);
    args_free(&a);
    return rc;
}
