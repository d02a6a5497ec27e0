// SPDX-License-Identifier: MIT
// vkphi quantize on the reference F16 model: every tensor gets the type the
// reference quantizer chose for the same mix, every metadata key survives, and the
// logits of our files are no further from the F16 model's than the reference
// quantizer's files are (mean KL over reference/tokens.txt). The remaining types'
// mixes run and land in the order of their bits per weight; importance matrices
// in both of the reference tools' formats are read alike.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "model.h"
#include "quant.h"
#include "quantize.h"

static int32_t tokens[256];
static uint32_t n_tokens;
static char ours[] = "/tmp/vkphi-quantize-XXXXXX.gguf";

// Bits per weight of a file's matrices (2-D tensors).
static double file_bpw(const char *path) {
    gguf_file *f = gguf_open(path);
    if (!f) return 0;
    double bytes = 0, weights = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->n_dims < 2) continue;
        bytes += (double)t->size;
        weights += (double)t->ne[0] * (double)t->ne[1];
    }
    gguf_close(f);
    return weights ? 8 * bytes / weights : 0;
}

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

// The synthetic importance of column j of every matrix: every seventh column ten
// times as important as the others.
static float importance(uint64_t j) { return j % 7 == 0 ? 10.0f : 1.0f; }

// Writes an importance matrix for every matrix of `src` in the legacy binary
// format (sums scaled to ncall = 10 calls) or the GGUF format (sums over count = 5
// tokens), both meaning importance() above.
static bool write_imatrix(const gguf_file *src, const char *path, bool gguf) {
    int64_t n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) n += gguf_tensor_at(src, i)->n_dims == 2;
    if (gguf) {
        gguf_writer *w = gguf_writer_create();
        gguf_writer_set_str(w, "general.type", "imatrix");
        char name[256];
        for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
            const gguf_tensor *t = gguf_tensor_at(src, i);
            if (t->n_dims != 2) continue;
            uint64_t ne_s[2] = {t->ne[0], 1}, ne_c[2] = {1, 1};
            snprintf(name, sizeof name, "%s.in_sum2", t->name);
            gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 2, ne_s);
            snprintf(name, sizeof name, "%s.counts", t->name);
            gguf_writer_add_tensor(w, name, GGML_TYPE_F32, 2, ne_c);
        }
        bool ok = gguf_writer_begin(w, path) == 0;
        for (int64_t i = 0; ok && i < gguf_n_tensors(src); i++) {
            const gguf_tensor *t = gguf_tensor_at(src, i);
            if (t->n_dims != 2) continue;
            float *v = malloc(t->ne[0] * sizeof *v), count = 5;
            for (uint64_t j = 0; j < t->ne[0]; j++) v[j] = importance(j) * count;
            ok = gguf_writer_write_data(w, v, t->ne[0] * sizeof *v) == 0 && gguf_writer_write_data(w, &count, 4) == 0;
            free(v);
        }
        ok = ok && gguf_writer_finish(w) == 0;
        gguf_writer_free(w);
        return ok;
    }
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    int32_t n32 = (int32_t)n, ncall = 10;
    fwrite(&n32, 4, 1, f);
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        if (t->n_dims != 2) continue;
        int32_t len = (int32_t)strlen(t->name), nval = (int32_t)t->ne[0];
        fwrite(&len, 4, 1, f);
        fwrite(t->name, 1, (size_t)len, f);
        fwrite(&ncall, 4, 1, f);
        fwrite(&nval, 4, 1, f);
        for (uint64_t j = 0; j < t->ne[0]; j++) {
            float v = importance(j) * (float)ncall;
            fwrite(&v, 4, 1, f);
        }
    }
    int32_t chunks = 10, dlen = 4; // the optional trailer: chunk count, dataset name
    fwrite(&chunks, 4, 1, f);
    fwrite(&dlen, 4, 1, f);
    fwrite("test", 1, 4, f);
    return fclose(f) == 0;
}

// The importance-weighted squared error of tensor `name` of the quantized file
// against the F16 file.
static double weighted_error(const char *quantized, const char *f16, const char *name) {
    gguf_file *a = gguf_open(quantized), *b = gguf_open(f16);
    const gguf_tensor *ta = a ? gguf_find_tensor(a, name) : NULL, *tb = b ? gguf_find_tensor(b, name) : NULL;
    double e = -1;
    if (ta && tb) {
        const uint64_t n = ta->ne[0], rba = quant_row_bytes(ta->type, n), rbb = quant_row_bytes(tb->type, n);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        e = 0;
        for (uint64_t r = 0; r < ta->ne[1]; r++) {
            quant_dequantize_row(ta->type, (const uint8_t *)ta->data + r * rba, x, n);
            quant_dequantize_row(tb->type, (const uint8_t *)tb->data + r * rbb, y, n);
            for (uint64_t j = 0; j < n; j++) e += importance(j) * ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        }
        free(x), free(y);
    }
    if (a) gguf_close(a);
    if (b) gguf_close(b);
    return e;
}

// Files are equal byte for byte.
static bool same_file(const char *p, const char *q) {
    FILE *a = fopen(p, "rb"), *b = fopen(q, "rb");
    bool same = a && b;
    while (same) {
        int ca = fgetc(a), cb = fgetc(b);
        if (ca != cb) same = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (a) fclose(a);
    if (b) fclose(b);
    return same;
}

static void test_imatrix(const char *f16) {
    char dat[] = "/tmp/vkphi-imatrix-XXXXXX.dat", gg[] = "/tmp/vkphi-imatrix-XXXXXX.gguf";
    char q_dat[] = "/tmp/vkphi-quantize-dat-XXXXXX.gguf", q_gg[] = "/tmp/vkphi-quantize-gg-XXXXXX.gguf";
    char *tmp[] = {dat, gg, q_dat, q_gg};
    const int sfx[] = {4, 5, 5, 5};
    for (int i = 0; i < 4; i++) {
        int fd = mkstemps(tmp[i], sfx[i]);
        if (fd >= 0) close(fd);
    }
    gguf_file *src = gguf_open(f16);
    CHECK(src && write_imatrix(src, dat, false) && write_imatrix(src, gg, true), "writing the importance matrices");
    if (src) gguf_close(src);
    const char *types[] = {"Q2_K", "IQ4_XS", "Q4_1", "Q5_0", "Q4_K_M"};
    for (int i = 0; i < 5; i++) {
        CHECK(quantize_file(f16, ours, types[i], NULL, 0, NULL, NULL) == 0 &&
                  quantize_file(f16, q_dat, types[i], dat, 0, NULL, NULL) == 0 &&
                  quantize_file(f16, q_gg, types[i], gg, 0, NULL, NULL) == 0,
              "quantize %s with an importance matrix: %s", types[i], vkphi_last_error());
        CHECK(same_file(q_dat, q_gg), "%s: the legacy and GGUF importance matrices give different files", types[i]);
        const char *t = "blk.1.ffn_up.weight";
        double without = weighted_error(ours, f16, t), with = weighted_error(q_dat, f16, t);
        printf("%-7s %s importance-weighted error: %.6g without the importance matrix, %.6g with\n", types[i], t,
               without, with);
        CHECK(with > 0 && with < 0.97 * without, "%s: the importance matrix does not lower the weighted error", types[i]);
    }
    // Bad importance matrices are refused with a sentence; IQ1/IQ2/IQ3 are not made.
    FILE *f = fopen(dat, "wb");
    if (f) fputs("not an importance matrix", f), fclose(f);
    CHECK(quantize_file(f16, q_dat, "Q4_K_M", dat, 0, NULL, NULL) != 0 && strstr(vkphi_last_error(), dat),
          "a malformed importance matrix is refused by name: %s", vkphi_last_error());
    CHECK(quantize_file(f16, q_dat, "Q4_K_M", "/nonexistent/imatrix.dat", 0, NULL, NULL) != 0 &&
              strstr(vkphi_last_error(), "/nonexistent/imatrix.dat"),
          "a missing importance matrix is refused: %s", vkphi_last_error());
    CHECK(quantize_file(f16, q_dat, "IQ2_XXS", gg, 0, NULL, NULL) == VKPHI_ERR_UNSUPPORTED &&
              strstr(vkphi_last_error(), "does not implement"),
          "IQ2_XXS is refused with the reason: %s", vkphi_last_error());
    for (int i = 0; i < 4; i++) unlink(tmp[i]);
}

int main(void) {
    const char *dir = test_shared_dir("quantizing the reference models");
    if (!dir) return test_finish();
    char f16[1024], path[1024];
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
    // The remaining types' mixes: each runs through the forward pass, and the further a
    // file is from the F16 logits, the fewer its bits per weight. Two families, each in
    // its own order: the K and IQ4 mixes (which search their scales), and the plain
    // 32-value types (one closed-form scale per block: Q4_1 at 5.25 bits lands
    // further from F16 than Q4_K_S at 4.92, KL 0.34 against 0.22).
    // The first three come from the comparison with the reference files below. Q4_K_M
    // stays out of the order (family 2): on these 3 layers its extra bits go to layer
    // 2's attn_qkv and ffn_down only, and it lands at KL 0.26, further than Q4_K_S (4.92
    // bits, 0.22, which lifts attn_qkv in all three); it is held to the reference
    // quantizer's own Q4_K_M file instead.
    struct { const char *recipe; double bpw, kl; int family; } mix[] = {
        {"Q8_0", 0, 0, 1},   {"Q4_0", 0, 0, 1},   {"Q4_K_M", 0, 0, 2}, {"Q2_K", 0, 0, 0},   {"Q3_K_S", 0, 0, 0},
        {"Q3_K_M", 0, 0, 0}, {"Q3_K_L", 0, 0, 0}, {"Q4_K_S", 0, 0, 0}, {"Q5_K_S", 0, 0, 0}, {"IQ4_XS", 0, 0, 0},
        {"IQ4_NL", 0, 0, 0}, {"Q5_K_M", 0, 0, 0}, {"Q6_K", 0, 0, 0},   {"Q4_1", 0, 0, 1},   {"Q5_0", 0, 0, 1},
        {"Q5_1", 0, 0, 1},
    };
    for (int i = 0; i < 3 && base; i++) {
        snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", dir, mix[i].recipe);
        CHECK(quantize_file(f16, ours, mix[i].recipe, NULL, 0, NULL, NULL) == 0, "quantize %s: %s", mix[i].recipe, vkphi_last_error());
        gguf_file *a = gguf_open(ours), *b = gguf_open(path), *src = gguf_open(f16);
        CHECK(a && b && src, "cannot open the files");
        if (!a || !b || !src) continue;
        CHECK(gguf_n_tensors(a) == gguf_n_tensors(b), "%s: %lld tensors, reference %lld", mix[i].recipe,
              (long long)gguf_n_tensors(a), (long long)gguf_n_tensors(b));
        for (int64_t t = 0; t < gguf_n_tensors(b); t++) {
            const gguf_tensor *tb = gguf_tensor_at(b, t), *ta = gguf_find_tensor(a, tb->name);
            CHECK(ta && ta->type == tb->type, "%s: tensor %s is type %u, the reference quantizer chose %u", mix[i].recipe,
                  tb->name, ta ? ta->type : 0, tb->type);
        }
        for (int64_t k = 0; k < gguf_n_kv(src); k++)
            CHECK(gguf_find_key(a, gguf_key_name(src, k)) >= 0, "key %s was dropped", gguf_key_name(src, k));
        float *la = logits(ours), *lb = logits(path);
        CHECK(la && lb, "%s files did not run", mix[i].recipe);
        if (la && lb) {
            double ka = test_mean_kl(base, la, n_tokens, 4192, NULL), kb = test_mean_kl(base, lb, n_tokens, 4192, NULL);
            mix[i].kl = ka;
            mix[i].bpw = file_bpw(ours);
            printf("%-7s KL from the F16 logits: ours %.6f, reference quantizer %.6f\n", mix[i].recipe, ka, kb);
            // Q4_K_M must be no further than the reference (issue 3); Q8_0 and Q4_0 use the
            // same closed-form scale as the reference, so they may differ only by noise.
            double slack = strcmp(mix[i].recipe, "Q4_K_M") ? 1.02 : 1.0;
            CHECK(ka <= kb * slack + 1e-9, "%s: ours is further from F16 (KL %.6f) than the reference (%.6f)", mix[i].recipe, ka, kb);
        }
        free(la), free(lb);
        gguf_close(a), gguf_close(b), gguf_close(src);
    }
    const int n_mix = (int)(sizeof mix / sizeof mix[0]);
    for (int i = 3; i < n_mix && base; i++) {
        CHECK(quantize_file(f16, ours, mix[i].recipe, NULL, 0, NULL, NULL) == 0, "quantize %s: %s", mix[i].recipe,
              vkphi_last_error());
        float *l = logits(ours);
        CHECK(l != NULL, "%s did not run", mix[i].recipe);
        if (!l) continue;
        mix[i].bpw = file_bpw(ours);
        mix[i].kl = test_mean_kl(base, l, n_tokens, 4192, NULL);
        free(l);
    }
    for (int i = 0; i < n_mix; i++)
        printf("%-7s %.3f bits per weight, KL from the F16 logits: %.6f\n", mix[i].recipe, mix[i].bpw, mix[i].kl);
    for (int i = 0; i < n_mix; i++)
        for (int j = 0; j < n_mix; j++)
            if (mix[i].family == mix[j].family && mix[i].bpw < mix[j].bpw)
                CHECK(mix[i].kl > mix[j].kl, "%s (%.3f bits) is closer to F16 (KL %.6f) than %s (%.3f bits, KL %.6f)",
                      mix[i].recipe, mix[i].bpw, mix[i].kl, mix[j].recipe, mix[j].bpw, mix[j].kl);
    // Q2_K without an importance matrix against the reference quantizer's Q2_K of the
    // same F16 file. Measured once, by hand: llama.cpp's llama-quantize (built CPU-only
    // outside the project from commit d32676d of the unsloth/llama.cpp fork, 18 August
    // 2026) ran `llama-quantize tiny-phi4-F16.gguf out.gguf Q2_K` (no importance
    // matrix; it chose the same mix as ours: attn_qkv Q4_K, ffn_down and attn_output
    // Q3_K, output Q6_K, the rest Q2_K); `vkphi logits --ctx 256` of that file and of
    // tiny-phi4-F16.gguf over reference/tokens.txt give a mean KL(F16 || file) of
    // 1.905181 (top-1 0.141). Ours measured the same way: 1.908267. Ours may be at
    // most 5% further.
    const double REF_Q2_K_KL = 1.905181;
    CHECK(!strcmp(mix[3].recipe, "Q2_K") && mix[3].kl <= 1.05 * REF_Q2_K_KL,
          "Q2_K: KL %.6f from F16, more than 5%% above the reference quantizer's %.6f", mix[3].kl, REF_Q2_K_KL);

    // Quantized input is refused with a sentence naming the tensor.
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-Q8_0.gguf", dir);
    CHECK(quantize_file(path, ours, "Q4_K_M", NULL, 0, NULL, NULL) != 0 && strstr(vkphi_last_error(), "already"),
          "quantizing a Q8_0 file was not refused: %s", vkphi_last_error());
    CHECK(quantize_file(f16, ours, "Q9_Z", NULL, 0, NULL, NULL) != 0 && strstr(vkphi_last_error(), "unknown"),
          "an unknown type was not refused");
    test_imatrix(f16);
    unlink(ours);
    free(base);
    return test_finish();
}
