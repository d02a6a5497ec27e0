// SPDX-License-Identifier: MIT
// vkphi logits: the logits after every token of a token list, through the normal
// forward path, as raw float32 rows (for comparison with reference runtimes).
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi logits -m MODEL --tokens FILE --out OUT [--ubatch N] [--ctx N] [--kv f16|q8_0]\n\n"
               "Runs the token ids in FILE (whitespace-separated integers; the JSON array that vkphi\n"
               "tokenize prints also works) through the model from position 0 and writes to OUT one\n"
               "row of n_vocab float32 values (little-endian) per token: row i holds the logits after\n"
               "token i. The tokens go through the forward pass in steps of --ubatch tokens (1 runs\n"
               "the single-token decode path for every token).\n\n"
               "  --tokens FILE           the token ids ('-': standard input)\n"
               "  --out OUT               where to write the logits\n"
               "  -h, --help              this help\n");
    args_help(f, ARGS_MODEL);
    fprintf(f, "  (default for logits: --ctx is the number of tokens in FILE)\n");
}

// Parses whitespace-separated ids ('[', ']' and ',' count as whitespace too).
// Prints one error line and returns -1 on bad input.
static long parse_tokens(const char *path, const char *text, int32_t **out) {
    size_t n = 0, cap = 256;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return args_fail("out of memory"), -1;
    const char *p = text;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',' || *p == '[' || *p == ']'))
            p++;
        if (!*p) break;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p) && *p != ',' && *p != ']')
            p++;
        char word[32];
        size_t len = (size_t)(p - start);
        long v;
        snprintf(word, sizeof word, "%.*s", (int)(len < sizeof word - 1 ? len : sizeof word - 1), start);
        if (len >= sizeof word || !args_parse_long(word, -(1L << 40), 1L << 40, &v)) {
            free(ids);
            args_fail("%s: token %zu is '%.*s', not a token id (FILE holds whitespace-separated integers)", path, n + 1,
                      (int)(len < 40 ? len : 40), start);
            return -1;
        }
        if (v < 0 || v > INT32_MAX) {
            free(ids);
            args_fail("%s: token %zu is %ld, not a token id (ids are 0 or more)", path, n + 1, v);
            return -1;
        }
        if (n == cap) {
            int32_t *g = realloc(ids, (cap *= 2) * sizeof *g);
            if (!g) {
                free(ids);
                return args_fail("out of memory"), -1;
            }
            ids = g;
        }
        ids[n++] = (int32_t)v;
    }
    if (n == 0) {
        free(ids);
        args_fail("%s holds no token ids", path);
        return -1;
    }
    *out = ids;
    return (long)n;
}

// Writes n floats as little-endian float32, whatever the host's byte order.
static bool write_f32le(FILE *fp, const float *x, size_t n) {
    const uint32_t one = 1;
    if (*(const unsigned char *)&one) return fwrite(x, sizeof(float), n, fp) == n;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        if (fwrite(b, 1, 4, fp) != 4) return false;
    }
    return true;
}

// The command line: 0 to go on, 1 after an error line, 2 after the help.
static int parse_logits_args(cli_args *a, const char **tokens_path, const char **out_path, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int r = args_parse(a, ARGS_MODEL, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return 2;
        } else if (!strcmp(o, "--tokens") || !strcmp(o, "--out")) {
            if (i + 1 >= argc) return args_fail("option '%s' needs a file name", o);
            *(o[2] == 't' ? tokens_path : out_path) = argv[++i];
        } else {
            return args_fail("%s '%s' for logits (see vkphi logits --help)",
                             o[0] == '-' ? "unknown option" : "unexpected argument", o);
        }
    }
    if (!a->model) return args_fail("logits needs a model: -m MODEL (see vkphi logits --help)");
    if (!*tokens_path) return args_fail("logits needs the token ids: --tokens FILE");
    if (!*out_path) return args_fail("logits needs an output file: --out OUT");
    return 0;
}

// Checks the ids and the context against the file's hyperparameters before the
// weights are loaded, and sets the context (the number of tokens unless --ctx).
// Prints one error line and returns 1 on failure.
static int check_tokens(cli_args *a, const char *tokens_path, const int32_t *ids, long n) {
    model_config cfg;
    gguf_file *f = gguf_open(a->model);
    if (!f) return args_fail("%s", vkphi_last_error());
    int crc = model_config_read(f, &cfg);
    gguf_close(f);
    if (crc != VKPHI_OK) return args_fail("%s", vkphi_last_error());
    for (long i = 0; i < n; i++)
        if ((uint32_t)ids[i] >= cfg.n_vocab)
            return args_fail("%s: token %ld is id %d, but the model's vocabulary has %u tokens (0 to %u)", tokens_path,
                             i + 1, ids[i], cfg.n_vocab, cfg.n_vocab - 1);
    uint32_t n_ctx = a->ctx_given ? (a->mp.n_ctx ? a->mp.n_ctx : cfg.n_ctx_train) : (uint32_t)n;
    if ((unsigned long)n > n_ctx) {
        if (a->ctx_given)
            return args_fail("%s holds %ld tokens, more than the context of %u (--ctx)", tokens_path, n, n_ctx);
        return args_fail("%s holds %ld tokens, more than the model's context of %u", tokens_path, n, cfg.n_ctx_train);
    }
    a->mp.n_ctx = n_ctx;
    a->ctx_given = true;
    return 0;
}

// Evaluates the n ids one ubatch at a time (so memory stays at ubatch rows of
// logits) and writes every row to out_path; on failure removes the file (no partial
// output), prints one error line and returns 1.
static int write_logits(model *m, uint32_t ub, const int32_t *ids, long n, const char *out_path, bool quiet) {
    int rc = 1;
    uint32_t n_vocab = model_get_config(m)->n_vocab;
    float *rows = malloc((size_t)ub * n_vocab * sizeof(float));
    float *last = malloc((size_t)n_vocab * sizeof(float));
    FILE *fp = NULL;
    bool created = false;
    if (!rows || !last) {
        args_fail("out of memory for %u rows of %u logits", ub, n_vocab);
        goto done;
    }
    fp = fopen(out_path, "wb");
    if (!fp) {
        args_fail("cannot create '%s': %s", out_path, strerror(errno));
        goto done;
    }
    created = true;
    double t0 = vkphi_now();
    for (long pos = 0; pos < n; pos += ub) {
        uint32_t k = (uint32_t)(n - pos < (long)ub ? n - pos : (long)ub);
        if (model_eval(m, 0, ids + pos, k, (uint32_t)pos, last, rows) != VKPHI_OK) {
            args_fail("%s", vkphi_last_error());
            goto done;
        }
        if (!write_f32le(fp, rows, (size_t)k * n_vocab)) {
            args_fail("cannot write '%s': %s", out_path, strerror(errno));
            goto done;
        }
    }
    double secs = vkphi_now() - t0;
    if (fclose(fp) != 0) {
        fp = NULL;
        args_fail("cannot write '%s': %s", out_path, strerror(errno));
        goto done;
    }
    fp = NULL;
    if (!quiet)
        fprintf(stderr, "%ld tokens in %.3f s (%.1f tokens/s, ubatch %u): %ld rows of %u logits written to %s\n", n,
                secs, n / secs, ub, n, n_vocab, out_path);
    rc = 0;
done:
    if (fp) fclose(fp);
    if (rc != 0 && created) unlink(out_path);
    free(rows);
    free(last);
    return rc;
}

int cmd_logits(int argc, char **argv) {
    cli_args a;
    args_init(&a, 0);
    const char *tokens_path = NULL, *out_path = NULL;
    int rc = parse_logits_args(&a, &tokens_path, &out_path, argc, argv);
    if (rc) return rc == 2 ? 0 : 1;
    args_finish(&a);

    char *text = args_read_file(tokens_path, NULL);
    if (!text) return 1;
    int32_t *ids = NULL;
    long n = parse_tokens(tokens_path, text, &ids);
    free(text);
    if (n < 0) return 1;

    rc = 1;
    model *m = NULL;
    if (check_tokens(&a, tokens_path, ids, n)) goto done;
    if (args_load_model(&a, 1, &m, NULL)) goto done; // ids in, logits out: no tokenizer needed
    if (model_n_ctx(m) < (uint32_t)n) {
        args_fail("%s holds %ld tokens, more than the context of %u", tokens_path, n, model_n_ctx(m));
        goto done;
    }
    rc = write_logits(m, a.mp.n_ubatch, ids, n, out_path, a.quiet);
done:
    free(ids);
    model_free(m);
    args_free(&a);
    return rc;
}
