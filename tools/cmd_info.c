// SPDX-License-Identifier: MIT
// vkphi info: what a GGUF file holds and whether vkphi can run it.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "subcommands.h"
#include "common.h"
#include "gguf.h"
#include "model_config.h"
#include "quant_types.h"

static void usage(FILE *out) {
    fprintf(out, "usage: vkphi info -m FILE\n\n"
                 "Prints what a GGUF model file holds: architecture and hyperparameters, a\n"
                 "tokenizer summary, every tensor (name, type, shape, bytes; marked when vkphi does\n"
                 "not run its type), the tensors and bytes of each type with its bits per weight,\n"
                 "and whether vkphi can run the file (and if not, why).\n\n"
                 "  -m, --model FILE   the GGUF file\n"
                 "  -h, --help         this text\n");
}

// One metadata value on one line: scalars as values, strings quoted and cut at
// 60 bytes, arrays as their element type and count.
static void print_value(const gguf_file *f, int64_t i) {
    const char *key = gguf_key_name(f, i), *s;
    const enum gguf_type t = gguf_key_type(f, i);
    uint64_t u, n;
    int64_t v;
    double d;
    bool b;
    enum gguf_type et;
    if (t == GGUF_TYPE_STRING && gguf_get_str(f, key, &s)) {
        putchar('"');
        size_t len = strlen(s);
        for (size_t k = 0; k < len && k < 60; k++) {
            unsigned char c = (unsigned char)s[k];
            if (c == '\n') fputs("\\n", stdout);
            else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
            else putchar(c);
        }
        fputs(len > 60 ? "\"..." : "\"", stdout);
    } else if (t == GGUF_TYPE_ARRAY && gguf_get_arr(f, key, &et, &n)) {
        printf("[%s x %" PRIu64 "]", gguf_type_name(et), n);
    } else if (t == GGUF_TYPE_BOOL && gguf_get_bool(f, key, &b)) {
        fputs(b ? "true" : "false", stdout);
    } else if ((t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64) && gguf_get_f64(f, key, &d)) {
        printf("%g", d);
    } else if (gguf_get_u64(f, key, &u)) {
        printf("%" PRIu64, u);
    } else if (gguf_get_i64(f, key, &v)) {
        printf("%" PRId64, v);
    } else {
        printf("(%s)", gguf_type_name(t));
    }
}

static void print_size(uint64_t bytes) {
    if (bytes >= (1ull << 30)) printf("%.2f GiB", (double)bytes / (1ull << 30));
    else if (bytes >= (1ull << 20)) printf("%.2f MiB", (double)bytes / (1ull << 20));
    else if (bytes >= 1024) printf("%.1f KiB", (double)bytes / 1024);
    else printf("%" PRIu64 " bytes", bytes);
}

static void print_tokenizer(const gguf_file *f) {
    const char *model = "(none)", *pre = "(none)", *tmpl;
    uint64_t n_tokens = 0, n_merges = 0;
    enum gguf_type et;
    uint32_t bos, eos;
    gguf_get_str(f, "tokenizer.ggml.model", &model);
    gguf_get_str(f, "tokenizer.ggml.pre", &pre);
    printf("tokenizer: model %s, pre %s", model, pre);
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tokens)) printf(", vocabulary %" PRIu64, n_tokens);
    else printf(", no vocabulary");
    if (gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n_merges)) printf(", %" PRIu64 " merges", n_merges);
    if (gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos)) printf(", bos %u", bos);
    if (gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos)) printf(", eos %u", eos);
    if (gguf_get_str(f, "tokenizer.chat_template", &tmpl)) printf(", chat template: yes (%zu bytes)\n", strlen(tmpl));
    else printf(", chat template: no\n");
}

// The hyperparameters vkphi reads for phi3 (see ../shared/PHI4.md); any other
// architecture gets its own prefixed keys listed as they come.
static const char *const phi3_keys[] = {
    "phi3.block_count",          "phi3.embedding_length",       "phi3.feed_forward_length",
    "phi3.attention.head_count", "phi3.attention.head_count_kv", "phi3.rope.dimension_count",
    "phi3.rope.freq_base",       "phi3.attention.layer_norm_rms_epsilon", "phi3.context_length",
    "phi3.attention.sliding_window",
};

static void print_hparams(const gguf_file *f, const char *arch) {
    const size_t plen = strlen(arch);
    const bool phi3 = !strcmp(arch, "phi3");
    if (phi3) {
        for (size_t k = 0; k < sizeof phi3_keys / sizeof phi3_keys[0]; k++) {
            int64_t i = gguf_find_key(f, phi3_keys[k]);
            printf("  %-42s ", phi3_keys[k]);
            if (i >= 0) print_value(f, i);
            else fputs("(absent)", stdout);
            putchar('\n');
        }
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) { // the rest of the architecture's keys
        const char *key = gguf_key_name(f, i);
        if (strncmp(key, arch, plen) || key[plen] != '.') continue;
        bool listed = false;
        for (size_t k = 0; phi3 && k < sizeof phi3_keys / sizeof phi3_keys[0]; k++) listed |= !strcmp(key, phi3_keys[k]);
        if (listed) continue;
        printf("  %-42s ", key);
        print_value(f, i);
        putchar('\n');
    }
}

static void shape(char *buf, size_t len, const gguf_tensor *t) {
    size_t at = 0;
    for (uint32_t d = 0; d < t->n_dims && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, "%s%" PRIu64, d ? " x " : "", t->ne[d]);
}

// The tensor list, then per type the tensors, weights and bytes. Returns how many
// tensors have a type vkphi does not run; the first is named in *first.
static uint64_t print_tensors(const gguf_file *f, const gguf_tensor **first) {
    struct { uint64_t tensors, elems, bytes; } by_type[GGML_TYPE_COUNT] = {{0}};
    uint64_t elems = 0, bytes = 0, n_unrun = 0;
    printf("tensors: %" PRId64 "\n", gguf_n_tensors(f));
    printf("  %-36s %-8s %-22s %14s\n", "name", "type", "shape", "bytes");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char s[96];
        shape(s, sizeof s, t);
        const bool run = quant_type_supported(t->type);
        printf("  %-36s %-8s %-22s %14" PRIu64 "%s\n", t->name, quant_type_name(t->type), s, t->size,
               run ? "" : "  (type not run by vkphi)");
        if (!run && !n_unrun++) *first = t;
        const uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; // checked at open: no overflow
        by_type[t->type].tensors++;
        by_type[t->type].elems += n;
        by_type[t->type].bytes += t->size;
        elems += n;
        bytes += t->size;
    }
    printf("by type:\n");
    for (int ty = 0; ty < GGML_TYPE_COUNT; ty++) {
        if (!by_type[ty].tensors) continue;
        printf("  %-8s %5" PRIu64 " tensors %14" PRIu64 " weights %14" PRIu64 " bytes  %5.2f bits/weight%s\n",
               quant_type_name((uint32_t)ty), by_type[ty].tensors, by_type[ty].elems, by_type[ty].bytes,
               quant_bits_per_weight((uint32_t)ty), quant_type_supported((uint32_t)ty) ? "" : "  (not supported by vkphi)");
    }
    printf("total: %" PRIu64 " weights (%.3f B), ", elems, (double)elems / 1e9);
    print_size(bytes);
    if (elems) printf(", %.2f bits per weight", 8.0 * (double)bytes / (double)elems);
    putchar('\n');
    return n_unrun;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (++i == argc) {
                fprintf(stderr, "vkphi: error: %s needs a file name\n", argv[i - 1]);
                return 1;
            }
            path = argv[i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "vkphi: error: unknown option '%s' for info (see vkphi info --help)\n", argv[i]);
            return 1;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vkphi: error: info takes one file, got '%s' and '%s'\n", path, argv[i]);
            return 1;
        }
    }
    if (!path) {
        fprintf(stderr, "vkphi: error: no model file given (vkphi info -m FILE)\n");
        return 1;
    }
    gguf_file *f = gguf_open(path);
    if (!f) {
        fprintf(stderr, "vkphi: error: %s\n", vkphi_last_error());
        return 1;
    }
    const char *arch = NULL, *name;
    gguf_get_str(f, "general.architecture", &arch);
    printf("file: %s: ", path);
    print_size(gguf_file_size(f));
    printf(", GGUF v%u, alignment %u, %" PRId64 " keys, %" PRId64 " tensors\n", gguf_version(f), gguf_alignment(f),
           gguf_n_kv(f), gguf_n_tensors(f));
    if (gguf_get_str(f, "general.name", &name)) printf("name: %s\n", name);
    printf("architecture: %s\n", arch ? arch : "(not set)");
    if (arch) print_hparams(f, arch);
    print_tokenizer(f);
    const gguf_tensor *unrun = NULL;
    const uint64_t n_unrun = print_tensors(f, &unrun);
    if (n_unrun) // named even when model_check stops at another reason first
        printf("types vkphi does not run: %" PRIu64 " tensor%s, the first %s (%s)\n", n_unrun, n_unrun == 1 ? "" : "s",
               unrun->name, quant_type_name(unrun->type));
    if (model_check(f) == VKPHI_OK) {
        printf("runnable: yes\n");
    } else {
        // Strip the leading "<path>: " the runtime puts on every message.
        const char *why = vkphi_last_error();
        const size_t plen = strlen(path);
        if (!strncmp(why, path, plen) && !strncmp(why + plen, ": ", 2)) why += plen + 2;
        printf("runnable: no: %s\n", why);
    }
    gguf_close(f);
    return 0;
}
