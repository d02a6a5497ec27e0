// SPDX-License-Identifier: MIT
// The forward pass on models this test writes: split attn_q/k/v and ffn_gate/up
// tensors, a tied output head (no output.weight), mixed weight types, GQA 4:1 with
// head dim 128 as in Phi-4; GPU against the CPU reference through prefill, decode
// and split ubatches. The same for Phi-4-mini's features (partial rotary, LongRoPE
// short and long factors, attn_factor, a window past the context) and for the llama
// layout (adjacent-pair RoPE). Then the files and inputs that must be refused.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "model.h"
#include "ref_model.h"
#include "quant.h"

#define E 512
#define FF 384
#define NL 2
#define NV 300

struct variant {
    const char *arch;
    uint32_t n_rot, window;
    int longrope; // 0: none; 1: only rope_factors_long (broken); 2: both factor tensors, attn_factor 1.19
    bool drop_ffn_down, bias, layernorm, experts;
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
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, v->arch), k)
    gguf_writer_set_u32(w, KEY("block_count"), NL);
    gguf_writer_set_u32(w, KEY("embedding_length"), E);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), FF);
    gguf_writer_set_u32(w, KEY("attention.head_count"), 4);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), 1);
    gguf_writer_set_u32(w, KEY("rope.dimension_count"), v->n_rot);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), 250000.0f);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (v->layernorm) gguf_writer_set_f32(w, KEY("attention.layer_norm_epsilon"), 1e-5f);
    if (v->experts) gguf_writer_set_u32(w, KEY("expert_count"), 8);
    gguf_writer_set_u32(w, KEY("context_length"), 256);
    gguf_writer_set_u32(w, KEY("attention.sliding_window"), v->window);
    if (v->longrope) {
        gguf_writer_set_u32(w, KEY("rope.scaling.original_context_length"), 32);
        gguf_writer_set_f32(w, KEY("rope.scaling.attn_factor"), 1.190238f);
    }
#undef KEY
    struct { char name[64]; enum ggml_type type; uint64_t ne0, ne1; float scale, base; } t[64];
    int n = 0;
#define T(nm, ty, a, b, s, bs) (snprintf(t[n].name, 64, "%s", nm), t[n].type = ty, t[n].ne0 = a, t[n].ne1 = b, t[n].scale = s, t[n].base = bs, n++)
    T("token_embd.weight", GGML_TYPE_F16, E, NV, 0.1f, 0); // tied output: logits of std ~2
    char nm[64];
    for (int l = 0; l < NL; l++) {
#define L(x) (snprintf(nm, 64, "blk.%d." x ".weight", l), nm)
        T(L("attn_norm"), GGML_TYPE_F32, E, 0, 0.1f, 1.0f);
        T(L("attn_q"), GGML_TYPE_F32, E, E, 0.05f, 0);
        if (v->bias) T((snprintf(nm, 64, "blk.%d.attn_q.bias", l), nm), GGML_TYPE_F32, E, 0, 0.05f, 0);
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
    // LongRoPE divisors: the long ones well above 1 (as in Phi-4-mini: about 1 to 50),
    // the short ones near 1, so picking the wrong set changes the logits.
    if (v->longrope) T("rope_factors_long.weight", GGML_TYPE_F32, v->n_rot / 2, 0, 2.0f, 12.0f);
    if (v->longrope == 2) T("rope_factors_short.weight", GGML_TYPE_F32, v->n_rot / 2, 0, 0.05f, 1.2f);
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

enum { N = 30 };
static int32_t toks[N];

// GPU against the CPU reference at a context of n_ctx (it picks LongRoPE's factors)
// through prefill, decode and split ubatches; the CPU logits go to cpu_out.
static void against_cpu(const char *path, const struct variant *v, uint32_t n_ctx, const char *what, float *cpu) {
    write_model(path, v);
    ref_model *r = ref_model_load(path, n_ctx);
    CHECK(r != NULL, "%s: ref_model_load: %s", what, vkphi_last_error());
    if (!r) return;
    float *gpu = malloc(sizeof(float) * N * NV);
    for (int i = 0; i < N; i++) ref_model_eval(r, toks[i], i, cpu + i * NV);
    ref_model_free(r);

    uint32_t ubatches[] = {512, 1, 8};
    for (int u = 0; u < 3; u++) {
        model_params p = {.device = -1, .n_ctx = n_ctx, .n_seq = 2, .n_ubatch = ubatches[u], .quiet = true};
        model *m;
        int rc = model_load(path, &p, &m);
        CHECK(rc == 0, "%s: model_load: %s", what, vkphi_last_error());
        if (rc) continue;
        // Sequence 1, so sequence offsets in the cache are exercised too.
        CHECK(model_eval(m, 1, toks, N, 0, NULL, gpu) == 0, "model_eval: %s", vkphi_last_error());
        double top1, kl = test_mean_kl(cpu, gpu, N, NV, &top1);
        printf("%s, ctx %u, ubatch %u: KL %.2e, top-1 %.3f\n", what, n_ctx, ubatches[u], kl, top1);
        CHECK(kl < 1e-4 && top1 >= 0.96, "%s ubatch %u: KL %.2e top-1 %.3f against the CPU reference", what, ubatches[u], kl,
              top1);
        // Bad input is refused with a sentence, and the model stays usable.
        int32_t bad = NV;
        CHECK(model_eval(m, 0, &bad, 1, 0, gpu, NULL) != 0 && strstr(vkphi_last_error(), "vocabulary"),
              "token id %d accepted", bad);
        CHECK(model_eval(m, 0, toks, 10, n_ctx - 4, gpu, NULL) != 0 && strstr(vkphi_last_error(), "context"),
              "tokens past the context accepted");
        CHECK(model_eval(m, 2, toks, 1, 0, gpu, NULL) != 0, "sequence 2 of 2 accepted");
        CHECK(model_eval(m, 1, toks, 1, 0, gpu, NULL) == 0, "model unusable after bad input: %s", vkphi_last_error());
        model_free(m);
    }
    free(gpu);
}

// Continuous batching: sequences of different prompt lengths evaluated alone,
// then together (prompts in one batch, then one decode token of each per step, a
// late prompt joining mid-way): every logit must be bitwise the same (batch
// invariance). Also: a replayed decode step equals a freshly recorded one (the
// profiled path records anew), and malformed batches are refused.
enum { NS = 5, STEPS = 6, MAXP = 20 };
static int32_t test_argmax(const float *l, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) best = l[i] > l[best] ? i : best;
    return (int32_t)best;
}
static void batching(const char *path, const struct variant *v) {
    write_model(path, v);
    static const uint32_t plen[NS] = {7, 1, 12, 3, 20};
    static const int join_step[NS] = {0, 0, 0, 0, 2}; // sequence 4's prompt arrives with step 2
    model_params p = {.device = -1, .n_ctx = 64, .n_seq = NS, .quiet = true};
    model *m;
    CHECK(model_load(path, &p, &m) == 0, "model_load: %s", vkphi_last_error());
    if (!m) return;
    float *alone = malloc(sizeof(float) * NS * (STEPS + 1) * NV), *got = malloc(sizeof(float) * NS * NV);
    int32_t gen[NS][STEPS + 1];
    for (uint32_t s = 0; s < NS; s++) { // alone: the prompt, then greedy decode, one token per call
        float *l = alone + (size_t)s * (STEPS + 1) * NV;
        CHECK(model_eval(m, s, toks + s, plen[s], 0, l, NULL) == 0, "model_eval: %s", vkphi_last_error());
        for (int i = 0; i < STEPS; i++) {
            gen[s][i] = test_argmax(l + (size_t)i * NV, NV);
            model_set_profiling(m, i == 2); // one step recorded afresh instead of replayed
            CHECK(model_eval(m, s, &gen[s][i], 1, plen[s] + i, l + (size_t)(i + 1) * NV, NULL) == 0, "model_eval: %s",
                  vkphi_last_error());
        }
        model_set_profiling(m, false);
    }
    // Together. Each step: the decode token of every running sequence, and the whole
    // prompt of those that join at this step.
    int step_of[NS] = {0};
    bool same = true;
    for (int st = 0; st <= STEPS + 2; st++) {
        model_token b[NS * MAXP];
        uint32_t n = 0, who[NS], nw = 0;
        for (uint32_t s = 0; s < NS; s++) {
            if (st < join_step[s] || step_of[s] > STEPS) continue;
            if (step_of[s] == 0)
                for (uint32_t i = 0; i < plen[s]; i++) b[n++] = (model_token){toks[s + i], s, i, i + 1 == plen[s]};
            else
                b[n++] = (model_token){gen[s][step_of[s] - 1], s, plen[s] + step_of[s] - 1, true};
            who[nw++] = s;
        }
        if (!n) break;
        CHECK(model_eval_batch(m, b, n, got) == 0, "model_eval_batch: %s", vkphi_last_error());
        for (uint32_t i = 0; i < nw; i++) {
            uint32_t s = who[i];
            const float *want = alone + ((size_t)s * (STEPS + 1) + step_of[s]) * NV;
            if (memcmp(want, got + (size_t)i * NV, sizeof(float) * NV)) {
                same = false;
                printf("sequence %u, step %d: batched logits differ from alone\n", s, step_of[s]);
            }
            step_of[s]++;
        }
    }
    CHECK(same, "batch invariance: a sequence's logits depend on the others in its batch");
    // Malformed batches.
    model_token split[] = {{toks[0], 0, 0, false}, {toks[1], 1, 0, false}, {toks[2], 0, 1, true}};
    CHECK(model_eval_batch(m, split, 3, got) != 0 && strstr(vkphi_last_error(), "side by side"),
          "a sequence split across a batch accepted");
    model_token gap[] = {{toks[0], 0, 0, false}, {toks[1], 0, 2, true}};
    CHECK(model_eval_batch(m, gap, 2, got) != 0 && strstr(vkphi_last_error(), "position"), "a gap in positions accepted");
    model_token none[] = {{toks[0], 0, 0, true}};
    CHECK(model_eval_batch(m, none, 1, NULL) != 0, "logits wanted without a buffer accepted");
    model_free(m);
    free(alone), free(got);
}

int main(void) {
    char dir[] = "/tmp/vkphi-test-XXXXXX", path[64];
    if (!mkdtemp(dir)) return test_skip("no temp dir");
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    for (int i = 0; i < N; i++) toks[i] = (i * 37 + 11) % NV;
    float *cpu = malloc(sizeof(float) * N * NV), *cpu_long = malloc(sizeof(float) * N * NV);

    struct variant ok = {.arch = "phi3", .n_rot = 128};
    against_cpu(path, &ok, 64, "split tensors, tied output", cpu);
    // Phi-4-mini's features: 64 of 128 dims rotate, LongRoPE with an original context
    // of 32 (so 32 picks the short factors, 64 the long), a window past the context.
    struct variant mini = {.arch = "phi3", .n_rot = 64, .window = 262144, .longrope = 2};
    against_cpu(path, &mini, 32, "partial rotary, LongRoPE short", cpu);
    against_cpu(path, &mini, 64, "partial rotary, LongRoPE long", cpu_long);
    double top1, kl = test_mean_kl(cpu, cpu_long, N, NV, &top1);
    CHECK(kl > 1e-3, "the short and long LongRoPE factors give the same logits (KL %.2e): the choice has no effect", kl);
    struct variant llama = {.arch = "llama", .n_rot = 128};
    against_cpu(path, &llama, 64, "llama layout (adjacent-pair RoPE)", cpu);

    batching(path, &ok);
    batching(path, &llama); // split tensors: the decode step's unfused gate/up

    struct variant window = {.arch = "phi3", .n_rot = 128, .window = 128};
    struct variant half_longrope = {.arch = "phi3", .n_rot = 64, .longrope = 1};
    struct variant odd_rot = {.arch = "phi3", .n_rot = 63}, gemma = {.arch = "gemma", .n_rot = 128};
    struct variant bias = {.arch = "llama", .n_rot = 128, .bias = true};
    struct variant layernorm = {.arch = "llama", .n_rot = 128, .layernorm = true};
    struct variant moe = {.arch = "llama", .n_rot = 128, .experts = true};
    struct variant llama_rope = {.arch = "llama", .n_rot = 128, .longrope = 2};
    struct variant missing = {.arch = "phi3", .n_rot = 128, .drop_ffn_down = true};
    expect_refused(path, &window, "sliding-window attention (window 128)");
    expect_refused(path, &half_longrope, "'rope_factors_short.weight' is missing");
    expect_refused(path, &odd_rot, "must be even");
    expect_refused(path, &gemma, "architecture 'gemma'");
    expect_refused(path, &bias, "blk.0.attn_q.bias' is a bias");
    expect_refused(path, &layernorm, "LayerNorm");
    expect_refused(path, &moe, "mixture of experts");
    expect_refused(path, &llama_rope, "LongRoPE tensors in a llama file");
    expect_refused(path, &missing, "blk.1.ffn_down.weight");
    model_params big = {.device = -1, .n_ctx = 100000, .quiet = true};
    model *m = NULL;
    write_model(path, &ok);
    CHECK(model_load(path, &big, &m) != 0 && strstr(vkphi_last_error(), "context"), "a context beyond training accepted");
    unlink(path);
    rmdir(dir);
    free(cpu), free(cpu_long);
    return test_finish();
}
