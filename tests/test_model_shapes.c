// SPDX-License-Identifier: MIT
// The forward pass on models this test writes: split attn_q/k/v and ffn_gate/up
// tensors, a tied output head (no output.weight), mixed weight types, GQA 4:1 with
// head dim 128 as in Phi-4; GPU against the CPU reference through prefill, decode
// and split ubatches. Then the files and inputs that must be refused.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "model.h"
#include "quant.h"

#define E 512
#define FF 384
#define NL 2
#define NV 300

struct variant {
    const char *arch;
    uint32_t n_rot, window;
    bool longrope, drop_ffn_down;
};

static void add(gguf_writer *w, const char *name, enum ggml_type type, uint64_t ne0, uint64_t ne1) {
    uint64_t ne[2] = {ne0, ne1};
    gguf_writer_add_tensor(w, name, type, ne1 ? 2 : 1, ne);
}

static void write_data(gguf_writer *w, enum ggml_type type, uint64_t ne0, uint64_t ne1, float scale, float base) {
    uint64_t rows = ne1 ? ne1 : 1;
    uint64_t rb = quant_row_bytes(type, ne0);
    float *row = malloc(ne0 * sizeof *row);
    uint8_t *q = malloc(rb * rows);
    for (uint64_t r = 0; r < rows; r++) {
        for (uint64_t i = 0; i < ne0; i++) row[i] = base + scale * test_rand_normal();
        quant_quantize_row(type, row, q + r * rb, ne0, NULL);
    }
    gguf_writer_write_data(w, q, rb * rows); // one call per tensor
    free(row), free(q);
}

static void write_model(const char *path, const struct variant *v) {
    test_seed(42);
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", v->arch);
    gguf_writer_set_u32(w, "phi3.block_count", NL);
    gguf_writer_set_u32(w, "phi3.embedding_length", E);
    gguf_writer_set_u32(w, "phi3.feed_forward_length", FF);
    gguf_writer_set_u32(w, "phi3.attention.head_count", 4);
    gguf_writer_set_u32(w, "phi3.attention.head_count_kv", 1);
    gguf_writer_set_u32(w, "phi3.rope.dimension_count", v->n_rot);
    gguf_writer_set_f32(w, "phi3.rope.freq_base", 250000.0f);
    gguf_writer_set_f32(w, "phi3.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_u32(w, "phi3.context_length", 256);
    gguf_writer_set_u32(w, "phi3.attention.sliding_window", v->window);
    struct { char name[64]; enum ggml_type type; uint64_t ne0, ne1; float scale, base; } t[64];
    int n = 0;
#define T(nm, ty, a, b, s, bs) (snprintf(t[n].name, 64, "%s", nm), t[n].type = ty, t[n].ne0 = a, t[n].ne1 = b, t[n].scale = s, t[n].base = bs, n++)
    T("token_embd.weight", GGML_TYPE_F16, E, NV, 0.1f, 0); // tied output: logits of std ~2
    char nm[64];
    for (int l = 0; l < NL; l++) {
#define L(x) (snprintf(nm, 64, "blk.%d." x ".weight", l), nm)
        T(L("attn_norm"), GGML_TYPE_F32, E, 0, 0.1f, 1.0f);
        T(L("attn_q"), GGML_TYPE_F32, E, E, 0.05f, 0);
        T(L("attn_k"), GGML_TYPE_F16, E, 128, 0.05f, 0);
        T(L("attn_v"), GGML_TYPE_F32, E, 128, 0.05f, 0);
        T(L("attn_output"), GGML_TYPE_BF16, E, E, 0.05f, 0);
        T(L("ffn_norm"), GGML_TYPE_F32, E, 0, 0.1f, 1.0f);
        T(L("ffn_gate"), GGML_TYPE_F32, E, FF, 0.05f, 0);
        T(L("ffn_up"), GGML_TYPE_F16, E, FF, 0.05f, 0);
        if (!v->drop_ffn_down || l == 0) T(L("ffn_down"), GGML_TYPE_F32, FF, E, 0.05f, 0);
#undef L
    }
    T("output_norm.weight", GGML_TYPE_F32, E, 0, 0.1f, 1.0f);
    if (v->longrope) T("rope_factors_long.weight", GGML_TYPE_F32, 64, 0, 0.0f, 1.0f);
#undef T
    for (int i = 0; i < n; i++) add(w, t[i].name, t[i].type, t[i].ne0, t[i].ne1);
    if (gguf_writer_begin(w, path)) { fprintf(stderr, "%s\n", vkphi_last_error()); abort(); }
    for (int i = 0; i < n; i++) write_data(w, t[i].type, t[i].ne0, t[i].ne1, t[i].scale, t[i].base);
    if (gguf_writer_finish(w)) { fprintf(stderr, "%s\n", vkphi_last_error()); abort(); }
    gguf_writer_free(w);
}

static void expect_refused(const char *path, const struct variant *v, const char *words) {
    write_model(path, v);
    model_params p = {.device = -1, .n_ctx = 64, .quiet = true};
    model *m = NULL;
    int rc = model_load(path, &p, &m);
    CHECK(rc != 0 && m == NULL, "%s: a model that should be refused loaded", words);
    CHECK(strstr(vkphi_last_error(), words) != NULL, "refusal message '%s' does not say '%s'", vkphi_last_error(), words);
    model_free(m);
}

int main(void) {
    char dir[] = "/tmp/vkphi-test-XXXXXX", path[64];
    if (!mkdtemp(dir)) return test_skip("no temp dir");
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    struct variant ok = {"phi3", 128, 0, false, false};
    write_model(path, &ok);

    enum { N = 30 };
    int32_t toks[N];
    for (int i = 0; i < N; i++) toks[i] = (i * 37 + 11) % NV;
    ref_model *r = ref_model_load(path);
    CHECK(r != NULL, "ref_model_load: %s", vkphi_last_error());
    if (!r) return test_finish();
    float *cpu = malloc(sizeof(float) * N * NV), *gpu = malloc(sizeof(float) * N * NV);
    for (int i = 0; i < N; i++) ref_model_eval(r, toks[i], i, cpu + i * NV);
    ref_model_free(r);

    uint32_t ubatches[] = {512, 1, 8};
    for (int u = 0; u < 3; u++) {
        model_params p = {.device = -1, .n_ctx = 64, .n_seq = 2, .n_ubatch = ubatches[u], .quiet = true};
        model *m;
        int rc = model_load(path, &p, &m);
        CHECK(rc == 0, "model_load: %s", vkphi_last_error());
        if (rc) continue;
        // Sequence 1, so sequence offsets in the cache are exercised too.
        CHECK(model_eval(m, 1, toks, N, 0, NULL, gpu) == 0, "model_eval: %s", vkphi_last_error());
        double top1, kl = test_mean_kl(cpu, gpu, N, NV, &top1);
        printf("split tensors, tied output, ubatch %u: KL %.2e, top-1 %.3f\n", ubatches[u], kl, top1);
        CHECK(kl < 1e-4 && top1 >= 0.96, "ubatch %u: KL %.2e top-1 %.3f against the CPU reference", ubatches[u], kl, top1);
        // Bad input is refused with a sentence, and the model stays usable.
        int32_t bad = NV;
        CHECK(model_eval(m, 0, &bad, 1, 0, gpu, NULL) != 0 && strstr(vkphi_last_error(), "vocabulary"),
              "token id %d accepted", bad);
        CHECK(model_eval(m, 0, toks, 10, 60, gpu, NULL) != 0 && strstr(vkphi_last_error(), "context"),
              "tokens past the context accepted");
        CHECK(model_eval(m, 2, toks, 1, 0, gpu, NULL) != 0, "sequence 2 of 2 accepted");
        CHECK(model_eval(m, 1, toks, 1, 0, gpu, NULL) == 0, "model unusable after bad input: %s", vkphi_last_error());
        model_free(m);
    }

    struct variant partial = {"phi3", 64, 0, false, false}, window = {"phi3", 128, 2047, false, false};
    struct variant longrope = {"phi3", 128, 0, true, false}, llama = {"llama", 128, 0, false, false};
    struct variant missing = {"phi3", 128, 0, false, true};
    expect_refused(path, &partial, "partial rotary");
    expect_refused(path, &window, "sliding-window");
    expect_refused(path, &longrope, "LongRoPE");
    expect_refused(path, &llama, "architecture");
    expect_refused(path, &missing, "blk.1.ffn_down.weight");
    model_params big = {.device = -1, .n_ctx = 100000, .quiet = true};
    model *m = NULL;
    write_model(path, &ok);
    CHECK(model_load(path, &big, &m) != 0 && strstr(vkphi_last_error(), "context"), "a context beyond training accepted");
    unlink(path);
    rmdir(dir);
    free(cpu), free(gpu);
    return test_finish();
}
