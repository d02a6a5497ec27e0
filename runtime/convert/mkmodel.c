// SPDX-License-Identifier: MIT
// Phi-4-shaped GGUF files with seeded random weights (see mkmodel.h).
//
// Weights follow the statistics of the reference tiny models: matrices are normal
// with mean 0 and std k/sqrt(n_in) (k = 1, sqrt(2) for attn_qkv, 3 for output so
// that logits have a std of about 3), token embeddings std 1, norms 1 ± 0.1.
// Every row draws from its own stream, seeded by (seed, tensor, row), so the file
// does not depend on how rows are split among threads.
#include "mkmodel.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "memory_plan.h"
#include "model.h"
#include "quant.h"
#include "quant_recipe.h"

// ---- presets ----

static const mkmodel_preset presets[] = {
    // Microsoft's Phi-4: 14.7B parameters (PHI4.md).
    {"phi-4", 40, 5120, 17920, 40, 10, 16384, 0},
    // The built-in default: small enough to stream tokens on a CPU Vulkan driver.
    {"mini", 4, 1024, 2816, 8, 2, 4096, 0},
    // The shape of ../shared/reference/tiny-phi4-*, with the whole vocabulary.
    {"tiny", 3, 512, 1536, 4, 1, 16384, 0},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

const mkmodel_preset *mkmodel_find_preset(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i];
    return NULL;
}

const char *mkmodel_preset_names(void) { return "phi-4, mini, tiny"; }

// ---- the embedded tokenizer (tokenizer_blob.S) ----

extern const unsigned char vkphi_tokenizer_gguf_start[];
extern const unsigned char vkphi_tokenizer_gguf_end[];

const void *mkmodel_tokenizer_gguf(uint64_t *size) {
    if (size) *size = (uint64_t)(vkphi_tokenizer_gguf_end - vkphi_tokenizer_gguf_start);
    return vkphi_tokenizer_gguf_start;
}

// ---- random numbers ----

// splitmix64: a 64-bit counter through a strong mixer; one stream per row.
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t next64(uint64_t *s) { return mix64(*s += 0x9e3779b97f4a7c15ull); }

// Normal quantiles at the midpoints of 65536 equal-probability bins: four 16-bit
// draws from each 64-bit number turn into four normal values with a table lookup,
// fast enough that quantization, not sampling, bounds the generation time.
#define NORMAL_BITS 16
static float normal_table[1 << NORMAL_BITS];
static pthread_once_t normal_once = PTHREAD_ONCE_INIT;

static void normal_init(void) {
    const int n = 1 << NORMAL_BITS;
    for (int i = 0; i < n / 2; i++) {
        const double p = (i + 0.5) / n; // below 0.5: the quantile is negative
        double lo = -10, hi = 0;         // bisection on the normal CDF
        for (int it = 0; it < 60; it++) {
            const double mid = 0.5 * (lo + hi);
            if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid;
            else hi = mid;
        }
        normal_table[i] = (float)(0.5 * (lo + hi));
        normal_table[n - 1 - i] = -normal_table[i];
    }
}

// ---- tensors ----

enum { MAX_NAME = 64 };

typedef struct tensor_spec {
    char name[MAX_NAME];
    uint32_t n_dims;
    uint64_t ne[2];  // ne[0] = row length
    uint32_t type;
    float mean, std; // of the values drawn
} tensor_spec;

typedef struct model_plan {
    tensor_spec *t;
    uint32_t n;
} model_plan;

static void add_spec(model_plan *pl, const char *name, uint64_t ne0, uint64_t ne1, float mean, float std,
                     const char *recipe, int layer, const mkmodel_preset *p) {
    tensor_spec *s = &pl->t[pl->n++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = ne1 ? 2 : 1;
    s->ne[0] = ne0;
    s->ne[1] = ne1 ? ne1 : 1;
    s->mean = mean;
    s->std = std;
    s->type = s->n_dims == 1 ? GGML_TYPE_F32 : quant_recipe_type(recipe, name, layer, (int)p->n_layer, (uint32_t)ne0,
                                                                              p->n_head / p->n_head_kv, false);
}

// Tensors in file order, with their types under `recipe`. pl->t has room for
// 3 + 6 * n_layer entries.
static void plan_tensors(const mkmodel_preset *p, uint32_t n_vocab, const char *recipe, model_plan *pl) {
    const uint64_t E = p->n_embd, F = p->n_ff, hd = p->n_embd / p->n_head;
    const uint64_t n_qkv = E + 2 * p->n_head_kv * hd; // Q rows, then K, then V
    const float sE = 1.0f / sqrtf((float)E), sF = 1.0f / sqrtf((float)F);
    const int L = (int)p->n_layer;
    char name[MAX_NAME];
    pl->n = 0;
    add_spec(pl, "token_embd.weight", E, n_vocab, 0, 1.0f, recipe, -1, p);
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        add_spec(pl, name, E, 0, 1.0f, 0.1f, recipe, l, p);
        snprintf(name, sizeof name, "blk.%d.attn_qkv.weight", l);
        add_spec(pl, name, E, n_qkv, 0, sqrtf(2.0f) * sE, recipe, l, p);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        add_spec(pl, name, E, E, 0, sE, recipe, l, p);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        add_spec(pl, name, E, 0, 1.0f, 0.1f, recipe, l, p);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l); // gate rows, then up rows
        add_spec(pl, name, E, 2 * F, 0, sE, recipe, l, p);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        add_spec(pl, name, F, E, 0, sF, recipe, l, p);
    }
    add_spec(pl, "output_norm.weight", E, 0, 1.0f, 0.1f, recipe, -1, p);
    add_spec(pl, "output.weight", E, n_vocab, 0, 3.0f * sE, recipe, -1, p);
}

static uint64_t spec_bytes(const tensor_spec *s) { return quant_row_bytes(s->type, s->ne[0]) * s->ne[1]; }

static int check_preset(const mkmodel_preset *p, const char *type_name) {
    if (!p) return vkphi_fail(VKPHI_ERR_ARG, "no preset given");
    if (!quant_recipe_known(type_name))
        return vkphi_fail(VKPHI_ERR_ARG, "unknown type '%s' (known: %s)", type_name ? type_name : "", quant_recipe_names());
    if (!p->n_layer || !p->n_embd || !p->n_ff || !p->n_head || !p->n_head_kv || p->n_embd % p->n_head ||
        p->n_head % p->n_head_kv || (p->n_embd / p->n_head) % 2 || p->n_embd % 32 || p->n_ff % 32 || p->n_layer > 1000)
        return vkphi_fail(VKPHI_ERR_ARG, "preset '%s' has an impossible shape", p->name ? p->name : "");
    return VKPHI_OK;
}

// The vocabulary of a preset: its own, else the embedded tokenizer's (0 on failure).
static uint32_t preset_vocab(const mkmodel_preset *p) {
    if (p->n_vocab) return p->n_vocab;
    uint64_t size, count = 0;
    const void *data = mkmodel_tokenizer_gguf(&size);
    gguf_file *tok = gguf_open_memory(data, size, "the embedded tokenizer");
    if (!tok) return 0;
    enum gguf_type et;
    gguf_get_arr(tok, "tokenizer.ggml.tokens", &et, &count);
    gguf_close(tok);
    return (uint32_t)count;
}

uint64_t mkmodel_data_bytes(const mkmodel_preset *p, const char *type_name) {
    if (check_preset(p, type_name)) return 0;
    uint32_t n_vocab = preset_vocab(p);
    model_plan pl = {calloc(3 + 6 * (size_t)p->n_layer, sizeof(tensor_spec)), 0};
    if (!n_vocab || !pl.t) {
        free(pl.t);
        return 0;
    }
    plan_tensors(p, n_vocab, type_name, &pl);
    uint64_t total = 0;
    for (uint32_t i = 0; i < pl.n; i++) total += spec_bytes(&pl.t[i]);
    free(pl.t);
    return total;
}

int mkmodel_memory_needs(const mkmodel_preset *p, const char *type_name, double file_bytes, uint32_t n_seq,
                         uint32_t n_ubatch, mem_model *out) {
    memset(out, 0, sizeof *out);
    bool known = type_name && quant_recipe_known(type_name);
    if (!known && !(file_bytes > 0))
        return vkphi_fail(VKPHI_ERR_ARG, "unknown type '%s' and no file size to spread", type_name ? type_name : "");
    int rc = check_preset(p, known ? type_name : "F16");
    if (rc) return rc;
    uint32_t n_vocab = preset_vocab(p);
    model_plan pl = {calloc(3 + 6 * (size_t)p->n_layer, sizeof(tensor_spec)), 0};
    uint64_t *layer = calloc(p->n_layer, sizeof *layer);
    if (!n_vocab || !pl.t || !layer) {
        free(pl.t);
        free(layer);
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    }
    plan_tensors(p, n_vocab, known ? type_name : "F16", &pl);
    // A mix we do not make: the file's bytes spread over the matrices by their sizes.
    double n_weights = 0;
    for (uint32_t i = 0; i < pl.n; i++)
        if (pl.t[i].n_dims == 2) n_weights += (double)pl.t[i].ne[0] * pl.t[i].ne[1];
    const double bpw = known ? 0 : file_bytes * 8 / n_weights;
    for (uint32_t i = 0; i < pl.n; i++) {
        const tensor_spec *t = &pl.t[i];
        uint64_t bytes = known || t->n_dims == 1 ? spec_bytes(t) : (uint64_t)((double)t->ne[0] * t->ne[1] * bpw / 8);
        bytes = (bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; // as model_memory_needs counts a file's
        int l;
        if (sscanf(t->name, "blk.%d.", &l) == 1) layer[l] += bytes;
        else if (strcmp(t->name, "token_embd.weight") != 0) out->head_bytes += bytes; // the embedding stays on the host
    }
    free(pl.t);
    const uint32_t hd = p->n_embd / p->n_head;
    const model_config c = {.n_layer = p->n_layer, .n_embd = p->n_embd, .n_ff = p->n_ff, .n_head = p->n_head,
                            .n_head_kv = p->n_head_kv, .head_dim = hd, .n_rot = hd, .n_vocab = n_vocab,
                            .n_ctx_train = p->n_ctx};
    out->n_layer = p->n_layer;
    out->layer_bytes = layer;
    out->kv_dim = p->n_head_kv * hd;
    out->n_seq = n_seq ? n_seq : 1;
    out->n_ctx_train = p->n_ctx;
    model_scratch_needs(&c, n_ubatch, out);
    return VKPHI_OK;
}

// ---- parallel generation of one tensor ----

typedef struct gen_job {
    const tensor_spec *s;
    uint64_t seed, tensor_index;
    uint64_t row0, row1;
    uint8_t *out;
    int rc;
    char err[256];
} gen_job;

static void *gen_rows(void *arg) {
    gen_job *j = arg;
    const tensor_spec *s = j->s;
    const uint64_t n = s->ne[0], row_bytes = quant_row_bytes(s->type, n);
    float *row = malloc((n + 3) * sizeof *row);
    if (!row) {
        j->rc = VKPHI_ERR_NOMEM;
        snprintf(j->err, sizeof j->err, "out of memory generating %s", s->name);
        return NULL;
    }
    const uint64_t stream = mix64(j->seed ^ mix64(j->tensor_index + 1));
    for (uint64_t r = j->row0; r < j->row1 && !j->rc; r++) {
        uint64_t st = mix64(stream + r);
        for (uint64_t i = 0; i < n; i += 4) {
            const uint64_t x = next64(&st);
            row[i + 0] = s->mean + s->std * normal_table[x & 0xffff];
            row[i + 1] = s->mean + s->std * normal_table[(x >> 16) & 0xffff];
            row[i + 2] = s->mean + s->std * normal_table[(x >> 32) & 0xffff];
            row[i + 3] = s->mean + s->std * normal_table[x >> 48];
        }
        int rc = quant_quantize_row(s->type, row, j->out + r * row_bytes, n, NULL);
        if (rc) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "%s", vkphi_last_error());
        }
    }
    free(row);
    return NULL;
}

static int gen_tensor(const tensor_spec *s, uint64_t tensor_index, uint64_t seed, int n_threads, uint8_t *out) {
    enum { MAX_THREADS = 256 };
    gen_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    const uint64_t rows = s->ne[1];
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if ((uint64_t)n_threads > rows) n_threads = (int)rows;
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = (gen_job){s, seed, tensor_index, rows * t / n_threads, rows * (t + 1) / n_threads, out, 0, ""};
        // The last slice runs on this thread; the others on their own.
        if (t + 1 < n_threads) started[t] = pthread_create(&tid[t], NULL, gen_rows, &jobs[t]) == 0;
        if (!started[t]) gen_rows(&jobs[t]);
    }
    int rc = VKPHI_OK;
    for (int t = 0; t < n_threads; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        if (jobs[t].rc && !rc) rc = vkphi_fail(jobs[t].rc, "%s", jobs[t].err);
    }
    return rc;
}

// ---- the file ----

int mkmodel_write(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads, const char *out_path) {
    return mkmodel_write_progress(p, type_name, seed, n_threads, out_path, NULL, NULL);
}

static void set_metadata(gguf_writer *w, const mkmodel_preset *p, const char *recipe, uint64_t seed,
                         const gguf_file *tok) {
    char name[160];
    snprintf(name, sizeof name, "vkphi random %s (%s, seed %llu)", p->name ? p->name : "model", recipe,
             (unsigned long long)seed);
    gguf_writer_set_str(w, "general.architecture", "phi3");
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "general.file_type", quant_recipe_file_type(recipe));
    gguf_writer_set_u32(w, "general.quantization_version", 2);
    gguf_writer_set_u32(w, "phi3.context_length", p->n_ctx);
    gguf_writer_set_u32(w, "phi3.embedding_length", p->n_embd);
    gguf_writer_set_u32(w, "phi3.feed_forward_length", p->n_ff);
    gguf_writer_set_u32(w, "phi3.block_count", p->n_layer);
    gguf_writer_set_u32(w, "phi3.attention.head_count", p->n_head);
    gguf_writer_set_u32(w, "phi3.attention.head_count_kv", p->n_head_kv);
    gguf_writer_set_f32(w, "phi3.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_u32(w, "phi3.rope.dimension_count", p->n_embd / p->n_head);
    gguf_writer_set_f32(w, "phi3.rope.freq_base", 250000.0f);
    gguf_writer_set_u32(w, "phi3.rope.scaling.original_context_length", p->n_ctx);
    gguf_writer_set_u32(w, "phi3.attention.sliding_window", 0);
    for (int64_t i = 0; i < gguf_n_kv(tok); i++)
        if (!strncmp(gguf_key_name(tok, i), "tokenizer.", 10)) gguf_writer_copy_kv(w, tok, i);
}

int mkmodel_write_progress(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads,
                           const char *out_path, mkmodel_progress_fn progress, void *user) {
    return mkmodel_write_tokenizer(p, type_name, seed, n_threads, NULL, out_path, progress, user);
}

int mkmodel_write_tokenizer(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads,
                            const char *tokenizer_path, const char *out_path, mkmodel_progress_fn progress,
                            void *user) {
    int rc = check_preset(p, type_name);
    if (rc) return rc;
    if (!out_path || !*out_path) return vkphi_fail(VKPHI_ERR_ARG, "no output file given");
    const char *recipe = quant_recipe_canonical(type_name);
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    pthread_once(&normal_once, normal_init);

    uint64_t tok_size;
    const void *tok_data = mkmodel_tokenizer_gguf(&tok_size);
    gguf_file *tok =
        tokenizer_path ? gguf_open(tokenizer_path) : gguf_open_memory(tok_data, tok_size, "the embedded tokenizer");
    if (!tok) return vkphi_last_error()[0] ? VKPHI_ERR_FORMAT : vkphi_fail(VKPHI_ERR_FORMAT, "bad embedded tokenizer");
    enum gguf_type et;
    uint64_t n_tokens = 0;
    if (!gguf_get_arr(tok, "tokenizer.ggml.tokens", &et, &n_tokens) || et != GGUF_TYPE_STRING || !n_tokens) {
        gguf_close(tok);
        return vkphi_fail(VKPHI_ERR_FORMAT, "the embedded tokenizer has no token list");
    }
    if (p->n_vocab && p->n_vocab != n_tokens) {
        gguf_close(tok);
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "preset '%s' asks for %u tokens but the tokenizer has %llu",
                          p->name ? p->name : "", p->n_vocab, (unsigned long long)n_tokens);
    }

    model_plan pl = {calloc(3 + 6 * (size_t)p->n_layer, sizeof(tensor_spec)), 0};
    gguf_writer *w = gguf_writer_create();
    char *tmp = malloc(strlen(out_path) + 32);
    uint8_t *buf = NULL;
    if (!pl.t || !w || !tmp) {
        rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of memory");
        goto done;
    }
    plan_tensors(p, (uint32_t)n_tokens, recipe, &pl);
    set_metadata(w, p, recipe, seed, tok);
    uint64_t total = 0, biggest = 0;
    for (uint32_t i = 0; i < pl.n; i++) {
        const tensor_spec *s = &pl.t[i];
        gguf_writer_add_tensor(w, s->name, (enum ggml_type)s->type, s->n_dims, s->ne);
        total += spec_bytes(s);
        if (spec_bytes(s) > biggest) biggest = spec_bytes(s);
    }
    if (!(buf = malloc(biggest))) {
        rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of memory: %llu MiB for the largest tensor",
                        (unsigned long long)(biggest >> 20));
        goto done;
    }
    // Write beside the target, rename when complete.
    sprintf(tmp, "%s.partial-%ld", out_path, (long)getpid());
    FILE *probe = fopen(tmp, "wb");
    if (!probe) {
        rc = vkphi_fail(VKPHI_ERR_IO, "%s: cannot create: %s", out_path, strerror(errno));
        goto done;
    }
    fclose(probe);
    if ((rc = gguf_writer_begin(w, tmp))) goto fail;
    uint64_t done_bytes = 0;
    for (uint32_t i = 0; i < pl.n; i++) {
        const tensor_spec *s = &pl.t[i];
        if ((rc = gen_tensor(s, i, seed, n_threads, buf))) goto fail;
        if ((rc = gguf_writer_write_data(w, buf, spec_bytes(s)))) goto fail;
        done_bytes += spec_bytes(s);
        if (progress) progress(s->name, done_bytes, total, user);
    }
    if ((rc = gguf_writer_finish(w))) goto fail;
    if (rename(tmp, out_path) != 0) {
        rc = vkphi_fail(VKPHI_ERR_IO, "%s: cannot rename the finished file into place: %s", out_path, strerror(errno));
        goto fail;
    }
    goto done;
fail:
    gguf_writer_free(w); // closes the file before it goes
    w = NULL;
    unlink(tmp);
done:
    gguf_writer_free(w);
    gguf_close(tok);
    free(buf);
    free(tmp);
    free(pl.t);
    return rc;
}

// ---- the built-in default model ----

int mkmodel_default_path(char *buf, unsigned long len, int *generated) {
    if (generated) *generated = 0;
    char dir[900];
    int rc = vkphi_cache_dir(dir, sizeof dir);
    if (rc) return rc;
    if (!buf || (unsigned long)snprintf(buf, len, "%s/default-%s-%s-v1.gguf", dir, MKMODEL_DEFAULT_PRESET,
                                        MKMODEL_DEFAULT_TYPE) >= len)
        return vkphi_fail(VKPHI_ERR_ARG, "mkmodel_default_path: buffer too small");
    if (access(buf, R_OK) == 0) return VKPHI_OK;
    vkphi_log(VKPHI_LOG_INFO, "generating the built-in default model %s", buf);
    rc = mkmodel_write(mkmodel_find_preset(MKMODEL_DEFAULT_PRESET), MKMODEL_DEFAULT_TYPE, 1, 0, buf);
    if (rc) return rc;
    if (generated) *generated = 1;
    return VKPHI_OK;
}
