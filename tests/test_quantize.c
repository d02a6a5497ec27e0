// SPDX-License-Identifier: MIT
// vkphi quantize on the reference F16 model: every tensor gets the type the
// reference quantizer chose for the same mix, every metadata key survives, and the
// logits of our files are no further from the F16 model's than the reference
// quantizer's files are (mean KL over reference/tokens.txt).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "model.h"
#include "quantize.h"

static int32_t tokens[256];
static uint32_t n_tokens;

static float *logits(const char *path) {
    model_params p = {.device = -1, .n_ctx = 256, .quiet = true};
    model *m;
    if (model_load(path, &p, &m)) {
        fprintf(stderr, "%s: %s\n", path, vkphi_last_error());
        return NULL;
    }
    uint32_t V = model_get_config(m)->n_vocab;
    float *all = malloc(sizeof(float) * n_tokens * V);
    if (model_eval(m, 0, tokens, n_tokens, 0, NULL, all)) free(all), all = NULL;
    model_free(m);
    return all;
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return test_skip("../shared is absent: no reference models");
    char f16[1024], path[1024], ours[] = "/tmp/vkphi-quantize-XXXXXX.gguf";
    snprintf(f16, sizeof f16, "%s/reference/tiny-phi4-F16.gguf", dir);
    snprintf(path, sizeof path, "%s/reference/tokens.txt", dir);
    FILE *tf = fopen(path, "r");
    while (tf && n_tokens < 256 && fscanf(tf, "%d", &tokens[n_tokens]) == 1) n_tokens++;
    if (tf) fclose(tf);
    int fd = mkstemps(ours, 5);
    if (fd < 0) return test_skip("no temp file");
    close(fd);

    float *base = logits(f16);
    CHECK(base != NULL, "the F16 model did not run");
    const char *mixes[] = {"Q8_0", "Q4_0", "Q4_K_M"};
    for (int i = 0; i < 3 && base; i++) {
        snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", dir, mixes[i]);
        CHECK(quantize_file(f16, ours, mixes[i], NULL, 0, NULL, NULL) == 0, "quantize %s: %s", mixes[i], vkphi_last_error());
        gguf_file *a = gguf_open(ours), *b = gguf_open(path), *src = gguf_open(f16);
        CHECK(a && b && src, "cannot open the files");
        if (!a || !b || !src) continue;
        CHECK(gguf_n_tensors(a) == gguf_n_tensors(b), "%s: %lld tensors, reference %lld", mixes[i],
              (long long)gguf_n_tensors(a), (long long)gguf_n_tensors(b));
        for (int64_t t = 0; t < gguf_n_tensors(b); t++) {
            const gguf_tensor *tb = gguf_tensor_at(b, t), *ta = gguf_find_tensor(a, tb->name);
            CHECK(ta && ta->type == tb->type, "%s: tensor %s is type %u, the reference quantizer chose %u", mixes[i],
                  tb->name, ta ? ta->type : 0, tb->type);
        }
        for (int64_t k = 0; k < gguf_n_kv(src); k++)
            CHECK(gguf_find_key(a, gguf_key_name(src, k)) >= 0, "key %s was dropped", gguf_key_name(src, k));
        float *la = logits(ours), *lb = logits(path);
        CHECK(la && lb, "%s files did not run", mixes[i]);
        if (la && lb) {
            double ka = test_mean_kl(base, la, n_tokens, 4192, NULL), kb = test_mean_kl(base, lb, n_tokens, 4192, NULL);
            printf("%-7s KL from the F16 logits: ours %.6f, reference quantizer %.6f\n", mixes[i], ka, kb);
            // Q4_K_M must be no further than the reference (issue 3); Q8_0 and Q4_0 use the
            // same closed-form scale as the reference, so they may differ only by noise.
            double slack = strcmp(mixes[i], "Q4_K_M") ? 1.02 : 1.0;
            CHECK(ka <= kb * slack + 1e-9, "%s: ours is further from F16 (KL %.6f) than the reference (%.6f)", mixes[i], ka, kb);
        }
        free(la), free(lb);
        gguf_close(a), gguf_close(b), gguf_close(src);
    }
    // The other mixes (Q3_K and Q5_K kernels in the forward pass): each runs, and more
    // bits land closer to the F16 logits.
    const char *more[] = {"Q3_K_M", "Q5_K_M", "Q6_K"};
    double prev = INFINITY;
    for (int i = 0; i < 3 && base; i++) {
        CHECK(quantize_file(f16, ours, more[i], NULL, 0, NULL, NULL) == 0, "quantize %s: %s", more[i], vkphi_last_error());
        float *l = logits(ours);
        CHECK(l != NULL, "%s did not run", more[i]);
        if (!l) continue;
        double k = test_mean_kl(base, l, n_tokens, 4192, NULL);
        printf("%-7s KL from the F16 logits: %.6f\n", more[i], k);
        CHECK(k < prev && k < 1.0, "%s: KL %.6f, not below the mix with fewer bits (%.6f)", more[i], k, prev);
        prev = k;
        free(l);
    }
    // Quantized input is refused with a sentence naming the tensor.
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-Q8_0.gguf", dir);
    CHECK(quantize_file(path, ours, "Q4_K_M", NULL, 0, NULL, NULL) != 0 && strstr(vkphi_last_error(), "already"),
          "quantizing a Q8_0 file was not refused: %s", vkphi_last_error());
    CHECK(quantize_file(f16, ours, "Q9_Z", NULL, 0, NULL, NULL) != 0 && strstr(vkphi_last_error(), "unknown"),
          "an unknown type was not refused");
    unlink(ours);
    free(base);
    return test_finish();
}
