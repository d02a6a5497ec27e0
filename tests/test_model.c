// SPDX-License-Identifier: MIT
// The forward pass: conformance with the reference runtime's logits for every
// ../shared/reference model (mean KL and top-1 agreement), closeness to the exact
// logits, and GPU against the CPU reference forward pass, through the prefill path
// (ubatch 512), the decode path (ubatch 1) and ubatches that split the prompt.
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "harness.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"

static int32_t tokens[1024];
static uint32_t n_tokens;

static bool read_tokens(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    n_tokens = 0;
    while (n_tokens < 1024 && fscanf(f, "%d", &tokens[n_tokens]) == 1) n_tokens++;
    fclose(f);
    return n_tokens > 0;
}

static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *v = malloc(n * sizeof *v);
    size_t got = fread(v, sizeof *v, n, f);
    fclose(f);
    if (got != n) { free(v); return NULL; }
    return v;
}

static float *run(const char *path, uint32_t ubatch, enum kv_type kv, uint32_t n) {
    model_params p = {.device = -1, .n_ctx = 512, .n_ubatch = ubatch, .kv = kv, .quiet = true};
    model *m;
    if (model_load(path, &p, &m)) {
        fprintf(stderr, "model_load %s: %s\n", path, vkphi_last_error());
        return NULL;
    }
    uint32_t V = model_get_config(m)->n_vocab;
    float *all = malloc(sizeof(float) * n * V), *last = malloc(sizeof(float) * V);
    int rc = model_eval(m, 0, tokens, n, 0, last, all);
    CHECK(rc == 0, "model_eval: %s", vkphi_last_error());
    CHECK(rc || memcmp(last, all + (size_t)(n - 1) * V, sizeof(float) * V) == 0, "last-row logits differ from logits_all");
    free(last);
    model_free(m);
    return all;
}

static void conformance(const char *dir, const char *name) {
    char path[1024], ref_path[1024], exact_path[1024];
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", dir, name);
    snprintf(ref_path, sizeof ref_path, "%s/reference/tiny-phi4-%s.logits.f32", dir, name);
    snprintf(exact_path, sizeof exact_path, "%s/reference/tiny-phi4-%s.exact.f32", dir, name);
    const uint32_t V = 4192;
    float *ref = read_f32(ref_path, (size_t)n_tokens * V), *exact = read_f32(exact_path, (size_t)n_tokens * V);
    CHECK(ref && exact, "cannot read %s or %s", ref_path, exact_path);
    if (!ref || !exact) return;
    uint32_t ubatches[] = {512, 1, 37};
    for (int u = 0; u < 3; u++) {
        float *ours = run(path, ubatches[u], KV_F16, n_tokens);
        CHECK(ours != NULL, "%s did not run", path);
        if (!ours) continue;
        double kl, top1, kl_exact, top1_exact;
        kl = test_mean_kl(ref, ours, n_tokens, V, &top1);
        kl_exact = test_mean_kl(exact, ours, n_tokens, V, &top1_exact);
        printf("%-7s ubatch %3u: vs reference KL %.6f top-1 %.3f; vs exact KL %.2e top-1 %.3f\n", name, ubatches[u], kl,
               top1, kl_exact, top1_exact);
        CHECK(kl <= 0.005 && top1 >= 0.90, "%s ubatch %u: KL %.5f top-1 %.3f vs the reference", name, ubatches[u], kl, top1);
        CHECK(kl_exact <= 1e-4, "%s ubatch %u: KL %.2e vs exact math (aim: 1e-4)", name, ubatches[u], kl_exact);
        free(ours);
    }
    free(ref), free(exact);
}

// The files with exact logits only (the newer block types): mean KL <= 1e-4 to
// them at ubatch 512, 1 and 37. `needs` (may be 0) is a type the file also holds
// that another branch adds: while it is unsupported the file is skipped, saying so.
static void conformance_exact(const char *dir, const char *name, uint32_t needs) {
    if (needs && !quant_type_supported(needs)) {
        printf("%s: skipped until vkphi runs %s\n", name, quant_type_name(needs));
        return;
    }
    char path[1024], exact_path[1024];
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", dir, name);
    snprintf(exact_path, sizeof exact_path, "%s/reference/tiny-phi4-%s.exact.f32", dir, name);
    const uint32_t V = 4192;
    float *exact = read_f32(exact_path, (size_t)n_tokens * V);
    CHECK(exact != NULL, "cannot read %s", exact_path);
    if (!exact) return;
    uint32_t ubatches[] = {512, 1, 37};
    for (int u = 0; u < 3; u++) {
        float *ours = run(path, ubatches[u], KV_F16, n_tokens);
        CHECK(ours != NULL, "%s did not run", path);
        if (!ours) continue;
        double top1, kl = test_mean_kl(exact, ours, n_tokens, V, &top1);
        printf("%-10s ubatch %3u: vs exact KL %.2e top-1 %.3f\n", name, ubatches[u], kl, top1);
        CHECK(kl <= 1e-4, "%s ubatch %u: KL %.2e vs exact math (bound 1e-4)", name, ubatches[u], kl);
        free(ours);
    }
    free(exact);
}

// GPU vs the CPU reference forward pass, f16 and q8_0 KV caches.
static void against_cpu(const char *path, uint32_t n, uint32_t ubatch, enum kv_type kv, double max_kl) {
    ref_model *r = ref_model_load(path);
    CHECK(r != NULL, "ref_model_load %s: %s", path, vkphi_last_error());
    if (!r) return;
    uint32_t V = ref_model_config(r)->n_vocab;
    float *cpu = malloc(sizeof(float) * n * V);
    for (uint32_t i = 0; i < n; i++) ref_model_eval(r, tokens[i], i, cpu + (size_t)i * V);
    ref_model_free(r);
    float *gpu = run(path, ubatch, kv, n);
    CHECK(gpu != NULL, "GPU run failed");
    if (!gpu) { free(cpu); return; }
    double kl, top1;
    kl = test_mean_kl(cpu, gpu, n, V, &top1);
    printf("GPU vs CPU reference, ubatch %u, kv %s: KL %.2e top-1 %.3f\n", ubatch, kv == KV_Q8_0 ? "q8_0" : "f16", kl, top1);
    CHECK(kl <= max_kl && top1 >= 0.95, "GPU vs CPU ubatch %u: KL %.2e top-1 %.3f", ubatch, kl, top1);
    free(cpu), free(gpu);
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return test_skip("../shared is absent: no reference models");
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/tokens.txt", dir);
    if (!read_tokens(path)) return test_skip("no reference/tokens.txt");
    const char *names[] = {"F16", "Q8_0", "Q4_0", "Q4_K_M"};
    for (int i = 0; i < 4; i++) conformance(dir, names[i]);
    conformance_exact(dir, "IQ3_M-mix", 0); // IQ3_S, IQ3_XXS, Q4_K, Q6_K
    conformance_exact(dir, "IQ2_M-mix", 0); // IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, Q5_K
    conformance_exact(dir, "IQ1_M-mix", GGML_TYPE_Q2_K); // IQ1_M, IQ1_S, IQ2_XXS, Q2_K, Q4_K, Q5_K
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-F16.gguf", dir);
    against_cpu(path, 40, 512, KV_F16, 1e-4);
    against_cpu(path, 40, 1, KV_F16, 1e-4);
    against_cpu(path, 40, 7, KV_Q8_0, 2e-3); // ubatches that split the prompt; 8-bit KV
    return test_finish();
}
