// SPDX-License-Identifier: MIT
// Command-line options shared by the commands that load a model and generate
// (run, chat, logits, the server): the model and device options, the sampling
// options named as llama.cpp names them, their help text, and loading the model
// (or the built-in default) with its tokenizer.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vkphi.h"

enum args_group {
    ARGS_MODEL = 1,     // -m, --device, -c, --ubatch, --kv, -q
    ARGS_SAMPLING = 2,  // -n, --temp, --top-k, --top-p, --min-p, penalties, --seed, --stop
    ARGS_TEMPLATE = 4,  // --chat-template
    ARGS_REASONING = 8, // --reasoning
};

// What run and chat do with a <think>…</think> section of the answer.
enum args_reasoning {
    ARGS_REASONING_SHOW = 0, // written without the tags (dimmed on a terminal), then the answer
    ARGS_REASONING_HIDE,     // not written
    ARGS_REASONING_RAW,      // the text as generated, tags included
};

typedef struct cli_args {
    const char *model;    // -m; NULL: the built-in default model
    model_params mp;      // device, n_ctx, n_ubatch, kv, quiet
    bool ctx_given;       // -c was given (else n_ctx is min(default_ctx, the model's))
    uint32_t default_ctx; // 0 (the model's own if it fits, else the most that fits) unless the command sets one
    bool quiet;           // -q: nothing on stderr but errors
    generate_params gen;  // sampling, max_tokens (-n), stop strings
    bool seed_given;
    char **stop; // --stop strings with escapes resolved (owned)
    size_t n_stop;
    const char *chat_template;     // --chat-template NAME: the format when the file's is unknown (NULL: none)
    enum args_reasoning reasoning; // --reasoning
    int32_t *force;                // VKPHI_TEST_OUTPUT's tokens (owned), in gen.force
} cli_args;

// Defaults: the sampler's defaults, -n max_tokens, context default_ctx.
void args_init(cli_args *a, int32_t max_tokens);
void args_free(cli_args *a);

// Looks at argv[*i]: when it is an option of the groups, consumes it (and its
// value, advancing *i) and returns 1; returns 0 when it is not one of them; prints
// one error line and returns -1 when its value is missing or bad.
int args_parse(cli_args *a, unsigned groups, int argc, char **argv, int *i);
// After parsing: picks a random seed unless --seed was given.
void args_finish(cli_args *a);
// The help lines of the groups' options.
void args_help(FILE *f, unsigned groups);

// For tests, the environment variable VKPHI_TEST_OUTPUT holds text (special tokens
// read as such) that every answer then begins with instead of sampled tokens: it lets
// the tests of reasoning and tool-call output run on a model with random weights.

// Loads the model (-m, or the built-in default, generated on first use, with a note on
// stderr that its text is random) with n_seq sequences, and its tokenizer (t NULL: no
// tokenizer, for commands that take token ids, so that a file whose tokenizer we do
// not implement still runs there). Prints one error line and returns 1 on failure; 0
// on success.
int args_load_model(cli_args *a, uint32_t n_seq, model **m, tokenizer **t);

// The answer of run and chat written to stdout with its reasoning shown, hidden or
// raw (--reasoning). put returns false when stdout cannot be written.
typedef struct args_answer {
    enum args_reasoning mode;
    bool tty, dimmed, write_failed, wrote;
    char last; // the last byte written
    struct chat_splitter *split;
} args_answer;
bool args_answer_init(args_answer *o, enum args_reasoning mode, bool tty); // false: out of memory
bool args_answer_put(args_answer *o, const char *text, size_t len);
bool args_answer_end(args_answer *o); // hands out what was held back; frees the splitter

// Writes s as a JSON string (quoted, escaped).
void args_json_str(FILE *f, const char *s);
// Prints "vkphi: error: ..." and a newline on stderr; returns 1 (the exit code).
int args_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Strict number parsing of a whole string: false when s is not a number in [lo, hi].
bool args_parse_long(const char *s, long lo, long hi, long *out);
bool args_parse_float(const char *s, float lo, float hi, float *out);
// Reads a whole file ("-": standard input) into a NUL-terminated malloc'd buffer;
// prints one error line and returns NULL on failure.
char *args_read_file(const char *path, size_t *len);
// Prints the timing line of a generation on stderr ("prompt ... | generation ... | ...").
void args_print_stats(const generate_stats *st);
