// SPDX-License-Identifier: MIT
// vkphi mkmodel: a Phi-4-shaped GGUF with seeded random weights (no download).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "subcommands.h"
#include "vkphi.h"

static void mkmodel_usage(FILE *f) {
    fprintf(f,
            "usage: vkphi mkmodel --preset NAME --type TYPE -o FILE [--seed N] [--threads N] [--tokenizer FILE]\n\n"
            "Writes a GGUF file with Phi-4's architecture, tensor names and layout, the\n"
            "quantization mix TYPE, Phi-4's tokenizer, and seeded random weights: a model to\n"
            "benchmark or test with, no download needed. Its text is meaningless.\n\n"
            "  --preset NAME   shape: %s\n"
            "                  (phi-4: the full 14.7B model, 8.4 GiB at Q4_K_M)\n"
            "  --type TYPE     quantization mix, as the reference quantizer means it:\n"
            "                  %s\n"
            "  -o FILE         output path (written under a temporary name, then renamed)\n"
            "  --seed N        random seed (default 1): the same seed gives the same file\n"
            "  --threads N     quantization threads (default 0: all cores)\n"
            "  --tokenizer F   take the tokenizer (every tokenizer.* key) from the GGUF file F instead\n"
            "                  of Phi-4's, e.g. Phi-4-mini's; the vocabulary sets the model's\n",
            mkmodel_preset_names(), quant_recipe_names());
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

struct progress_state {
    double t0, last;
    bool tty;
};

static void on_progress(const char *tensor, uint64_t done, uint64_t total, void *user) {
    struct progress_state *ps = user;
    double now = vkphi_now();
    if (!ps->tty || (now - ps->last < 0.2 && done < total)) return;
    ps->last = now;
    fprintf(stderr, "\r  %5.1f%%  %8.1f / %.1f MiB  %-28s", 100.0 * done / (total ? total : 1), done / 1048576.0,
            total / 1048576.0, tensor);
    if (done == total) fputc('\n', stderr);
}

int cmd_mkmodel(int argc, char **argv) {
    const char *preset_name = NULL, *type = NULL, *out = NULL, *tokenizer = NULL;
    uint64_t seed = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            mkmodel_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--preset") && has_val) {
            preset_name = argv[++i];
        } else if (!strcmp(a, "--type") && has_val) {
            type = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            out = argv[++i];
        } else if (!strcmp(a, "--tokenizer") && has_val) {
            tokenizer = argv[++i];
        } else if (!strcmp(a, "--seed") && has_val) {
            if (!parse_u64(argv[++i], &seed)) {
                fprintf(stderr, "vkphi: error: --seed wants a non-negative integer, not '%s'\n", argv[i]);
                return 1;
            }
        } else if (!strcmp(a, "--threads") && has_val) {
            if (!parse_u64(argv[++i], &threads) || threads > 1024) {
                fprintf(stderr, "vkphi: error: --threads wants a number from 0 to 1024, not '%s'\n", argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr, "vkphi: error: %s '%s' for mkmodel (see vkphi mkmodel --help)\n",
                    a[0] == '-' && !has_val ? "missing value or unknown option" : "unknown option", a);
            return 1;
        }
    }
    if (!preset_name || !type || !out) {
        fprintf(stderr, "vkphi: error: mkmodel needs --preset, --type and -o (see vkphi mkmodel --help)\n");
        return 1;
    }
    const mkmodel_preset *p = mkmodel_find_preset(preset_name);
    if (!p) {
        fprintf(stderr, "vkphi: error: unknown preset '%s' (known: %s)\n", preset_name, mkmodel_preset_names());
        return 1;
    }
    if (!quant_recipe_known(type)) {
        fprintf(stderr, "vkphi: error: unknown type '%s' (known: %s)\n", type, quant_recipe_names());
        return 1;
    }
    uint64_t bytes = mkmodel_data_bytes(p, type); // with Phi-4's vocabulary; --tokenizer: see below
    struct progress_state ps = {vkphi_now(), 0, isatty(2)};
    if (ps.tty && !tokenizer)
        fprintf(stderr, "writing %s: preset %s, %s, seed %llu, %.2f GiB of weights\n", out, p->name,
                quant_recipe_canonical(type), (unsigned long long)seed, bytes / 1073741824.0);
    else if (ps.tty)
        fprintf(stderr, "writing %s: preset %s, %s, seed %llu, the tokenizer of %s\n", out, p->name,
                quant_recipe_canonical(type), (unsigned long long)seed, tokenizer);
    int rc = mkmodel_write_tokenizer(p, type, seed, (int)threads, tokenizer, out, on_progress, &ps);
    if (rc) {
        if (ps.tty && ps.last > 0) fputc('\n', stderr);
        fprintf(stderr, "vkphi: error: %s\n", vkphi_last_error());
        return 1;
    }
    struct stat st;
    if (tokenizer && stat(out, &st) == 0) bytes = (uint64_t)st.st_size; // another vocabulary: the file's size
    fprintf(stderr, "wrote %s (%s %s, %.2f GiB of %s) in %.1f s\n", out, p->name, quant_recipe_canonical(type),
            bytes / 1073741824.0, tokenizer ? "file" : "weights", vkphi_now() - ps.t0);
    return 0;
}
