// SPDX-License-Identifier: MIT
// mkmodel and the quantization recipes: the recipe reproduces the reference
// quantizer's choices on the shared reference files and on Phi-4's shape; files
// written in several mixes open, hold the right tensors, shapes, types, metadata
// and weight statistics; the same seed gives the same bytes at any thread count;
// bad input fails cleanly; the built-in default model is made once, atomically.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "harness.h"
#include "mkmodel.h"
#include "quant.h"
#include "quant_recipe.h"

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", tmpdir, name); }

static int layer_of(const char *name) {
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

// ---- the recipe ----

// Every tensor of a file made by the reference quantizer gets the type our recipe names.
static void check_recipe_against(const char *dir, const char *recipe) {
    char path[512];
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", dir, recipe);
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s: %s", path, vkphi_last_error());
    if (!f) return;
    uint32_t n_layer = 0;
    CHECK(gguf_get_u32(f, "phi3.block_count", &n_layer), "block_count");
    int mismatches = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint32_t want = t->n_dims == 1 ? GGML_TYPE_F32 : t->type;
        uint32_t got = quant_recipe_type(recipe, t->name, layer_of(t->name), (int)n_layer, (uint32_t)t->ne[0], 4, false);
        if (got != want) {
            mismatches++;
            fprintf(stderr, "%s %s: recipe says %s, the reference file has %s\n", recipe, t->name,
                    quant_type_name(got), quant_type_name(want));
        }
    }
    CHECK(mismatches == 0, "%s: %d tensors differ from the reference quantizer", recipe, mismatches);
    gguf_close(f);
}

static uint32_t rt(const char *recipe, const char *name, int layer, uint32_t n_in) {
    return quant_recipe_type(recipe, name, layer, 40, n_in, 4, false); // Phi-4: 40 layers, 40 / 10 heads
}

static void test_recipe(void) {
    const char *shared = test_shared_dir("the recipe against the reference files");
    if (shared) {
        const char *refs[] = {"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q2_K"};
        for (int i = 0; i < 5; i++) check_recipe_against(shared, refs[i]);
    }
    // Phi-4's 40 layers under Q4_K_M: "more bits" layers are 0-4, 35-39 and 7, 10, ..., 34.
    int q6_down = 0, q6_qkv = 0;
    for (int l = 0; l < 40; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        uint32_t d = rt("Q4_K_M", n, l, 17920);
        snprintf(n, sizeof n, "blk.%d.attn_qkv.weight", l);
        uint32_t q = rt("Q4_K_M", n, l, 5120);
        bool more = l < 5 || l >= 35 || (l - 5) % 3 == 2;
        CHECK(d == (more ? GGML_TYPE_Q6_K : GGML_TYPE_Q4_K), "Q4_K_M ffn_down layer %d: %s", l, quant_type_name(d));
        CHECK(q == d, "Q4_K_M attn_qkv follows attn_v's rule, layer %d", l);
        q6_down += d == GGML_TYPE_Q6_K;
        q6_qkv += q == GGML_TYPE_Q6_K;
        snprintf(n, sizeof n, "blk.%d.ffn_up.weight", l);
        CHECK(rt("Q4_K_M", n, l, 5120) == GGML_TYPE_Q4_K, "Q4_K_M ffn_up");
        snprintf(n, sizeof n, "blk.%d.attn_output.weight", l);
        CHECK(rt("Q4_K_M", n, l, 5120) == GGML_TYPE_Q4_K, "Q4_K_M attn_output");
        CHECK(rt("Q3_K_M", n, l, 5120) == GGML_TYPE_Q4_K, "Q3_K_M attn_output");
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        CHECK(rt("Q3_K_M", n, l, 17920) == (l < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K), "Q3_K_M ffn_down %d", l);
        CHECK(rt("Q5_K_M", n, l, 17920) == (more ? GGML_TYPE_Q6_K : GGML_TYPE_Q5_K), "Q5_K_M ffn_down %d", l);
        snprintf(n, sizeof n, "blk.%d.attn_qkv.weight", l);
        CHECK(rt("Q3_K_M", n, l, 5120) == (l < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K), "Q3_K_M attn_qkv %d", l);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", l); // split attention takes the same rule
        CHECK(rt("Q4_K_M", n, l, 5120) == d, "Q4_K_M attn_v %d", l);
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        CHECK(rt("Q4_K_M", n, l, 5120) == GGML_TYPE_F32, "norms stay f32");
    }
    CHECK(q6_down == 20 && q6_qkv == 20, "20 of 40 layers get more bits, got %d and %d", q6_down, q6_qkv);
    // The mixes of the remaining types on Phi-4 (4 query heads per KV head, 40 layers):
    // Q2_K keeps attn_qkv in Q4_K, ffn_down and attn_output in Q3_K; IQ4_NL/IQ4_XS keep
    // attn_qkv in Q5_K and, without an importance matrix, the first 5 ffn_down in Q5_K;
    // Q4_0/Q5_0 with one put the first 5 ffn_down in Q4_1/Q5_1. Phi-4-mini's 3 heads per
    // KV head drop the attn_qkv rules to Q3_K and IQ4_XS.
    for (int l = 0; l < 40; l++) {
        char qkv[64], down[64], up[64], out[64];
        snprintf(qkv, sizeof qkv, "blk.%d.attn_qkv.weight", l);
        snprintf(down, sizeof down, "blk.%d.ffn_down.weight", l);
        snprintf(up, sizeof up, "blk.%d.ffn_up.weight", l);
        snprintf(out, sizeof out, "blk.%d.attn_output.weight", l);
        CHECK(rt("Q2_K", qkv, l, 5120) == GGML_TYPE_Q4_K && rt("Q2_K", down, l, 17920) == GGML_TYPE_Q3_K &&
                  rt("Q2_K", out, l, 5120) == GGML_TYPE_Q3_K && rt("Q2_K", up, l, 5120) == GGML_TYPE_Q2_K,
              "Q2_K layer %d", l);
        CHECK(quant_recipe_type("Q2_K", qkv, l, 32, 3072, 3, false) == GGML_TYPE_Q3_K, "Q2_K attn_qkv, 3 heads per KV head");
        for (int x = 0; x < 2; x++) {
            const char *r = x ? "IQ4_XS" : "IQ4_NL";
            const uint32_t base = x ? GGML_TYPE_IQ4_XS : GGML_TYPE_IQ4_NL;
            CHECK(rt(r, qkv, l, 5120) == GGML_TYPE_Q5_K && rt(r, up, l, 5120) == base && rt(r, out, l, 5120) == base,
                  "%s layer %d", r, l);
            CHECK(rt(r, down, l, 17920) == (l < 5 ? GGML_TYPE_Q5_K : base), "%s ffn_down layer %d", r, l);
            CHECK(quant_recipe_type(r, down, l, 40, 17920, 4, true) == base, "%s ffn_down with an importance matrix", r);
            CHECK(quant_recipe_type(r, qkv, l, 32, 3072, 3, false) == base, "%s attn_qkv, 3 heads per KV head", r);
        }
        CHECK(quant_recipe_type("Q4_0", down, l, 40, 17920, 4, true) == (l < 5 ? GGML_TYPE_Q4_1 : GGML_TYPE_Q4_0) &&
                  quant_recipe_type("Q5_0", down, l, 40, 17920, 4, true) == (l < 5 ? GGML_TYPE_Q5_1 : GGML_TYPE_Q5_0) &&
                  rt("Q4_0", down, l, 17920) == GGML_TYPE_Q4_0 && rt("Q5_0", down, l, 17920) == GGML_TYPE_Q5_0,
              "Q4_0/Q5_0 ffn_down layer %d", l);
        CHECK(rt("Q3_K_S", qkv, l, 5120) == GGML_TYPE_Q3_K && rt("Q3_K_L", qkv, l, 5120) == GGML_TYPE_Q5_K &&
                  rt("Q3_K_L", down, l, 17920) == GGML_TYPE_Q5_K && rt("Q3_K_L", out, l, 5120) == GGML_TYPE_Q5_K &&
                  rt("Q4_K_S", qkv, l, 5120) == (l < 4 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K) &&
                  rt("Q4_K_S", down, l, 17920) == (l < 5 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K) &&
                  rt("Q5_K_S", qkv, l, 5120) == GGML_TYPE_Q5_K,
              "Q3_K_S, Q3_K_L, Q4_K_S, Q5_K_S layer %d", l);
        CHECK(rt("Q4_1", up, l, 5120) == GGML_TYPE_Q4_1 && rt("Q5_1", down, l, 17920) == GGML_TYPE_Q5_1,
              "plain Q4_1, Q5_1");
    }
    CHECK(rt("Q2_K", "output.weight", -1, 5120) == GGML_TYPE_Q6_K && rt("Q2_K", "token_embd.weight", -1, 5120) == GGML_TYPE_Q2_K &&
              rt("IQ4_XS", "output.weight", -1, 5120) == GGML_TYPE_Q6_K,
          "Q2_K, IQ4_XS output and token_embd");
    CHECK(rt("Q4_K_M", "output.weight", -1, 5120) == GGML_TYPE_Q6_K, "output Q6_K");
    CHECK(rt("Q4_K_M", "token_embd.weight", -1, 5120) == GGML_TYPE_Q4_K, "token_embd Q4_K");
    CHECK(rt("Q4_0", "output.weight", -1, 5120) == GGML_TYPE_Q6_K, "Q4_0 output Q6_K");
    CHECK(rt("Q8_0", "output.weight", -1, 5120) == GGML_TYPE_Q8_0, "Q8_0 output stays Q8_0");
    CHECK(rt("q8_0", "blk.3.ffn_down.weight", 3, 17920) == GGML_TYPE_Q8_0, "names are case-insensitive");
    CHECK(rt("F16", "output.weight", -1, 5120) == GGML_TYPE_F16, "F16 output");
    CHECK(rt("BF16", "blk.0.ffn_up.weight", 0, 5120) == GGML_TYPE_BF16, "BF16");
    CHECK(rt("Q6_K", "token_embd.weight", -1, 5120) == GGML_TYPE_Q6_K, "Q6_K");
    // Rows that do not fit a block.
    CHECK(rt("Q4_K_M", "blk.1.ffn_up.weight", 1, 320) == GGML_TYPE_Q5_0, "Q4_K on 320 columns -> Q5_0");
    CHECK(rt("Q5_K_S", "blk.1.ffn_up.weight", 1, 320) == GGML_TYPE_Q5_1, "Q5_K on 320 columns -> Q5_1");
    CHECK(rt("IQ4_XS", "blk.1.ffn_up.weight", 1, 320) == GGML_TYPE_IQ4_NL, "IQ4_XS on 320 columns -> IQ4_NL");
    CHECK(rt("Q2_K", "blk.1.ffn_up.weight", 1, 320) == GGML_TYPE_Q4_0, "Q2_K on 320 columns -> Q4_0");
    CHECK(rt("Q3_K_S", "blk.1.ffn_up.weight", 1, 320) == GGML_TYPE_Q4_0, "Q3_K on 320 columns -> Q4_0");
    CHECK(rt("Q4_K_M", "output.weight", -1, 320) == GGML_TYPE_Q8_0, "output on 320 columns -> Q8_0");
    CHECK(rt("Q4_0", "blk.1.ffn_up.weight", 1, 100) == GGML_TYPE_F16, "100 columns -> F16");
    CHECK(rt("Q4_K_X", "blk.1.ffn_up.weight", 1, 5120) == QUANT_RECIPE_UNKNOWN, "unknown recipe");
    CHECK(!quant_recipe_known("Q2_K_S") && !quant_recipe_known("IQ2_XXS") && quant_recipe_known("q4_k_m") &&
              quant_recipe_known("iq4_xs") && quant_recipe_known("Q2_K"),
          "known recipes");
    CHECK(quant_recipe_file_type("Q4_K_M") == 15 && quant_recipe_file_type("F16") == 1 &&
              quant_recipe_file_type("Q8_0") == 7 && quant_recipe_file_type("nope") == QUANT_RECIPE_UNKNOWN &&
              quant_recipe_file_type("Q4_1") == 3 && quant_recipe_file_type("Q5_0") == 8 &&
              quant_recipe_file_type("Q5_1") == 9 && quant_recipe_file_type("Q2_K") == 10 &&
              quant_recipe_file_type("IQ4_NL") == 25 && quant_recipe_file_type("IQ4_XS") == 30,
          "file types");
    // Phi-4 at Q4_K_M is 8.43 GiB of weights, as the published files are.
    const mkmodel_preset *phi4 = mkmodel_find_preset("phi-4");
    CHECK(phi4 && phi4->n_layer == 40 && phi4->n_embd == 5120 && phi4->n_ff == 17920 && phi4->n_head == 40 &&
              phi4->n_head_kv == 10 && phi4->n_ctx == 16384,
          "the phi-4 preset");
    double gib = mkmodel_data_bytes(phi4, "Q4_K_M") / 1073741824.0;
    CHECK(gib > 8.40 && gib < 8.46, "phi-4 Q4_K_M holds %.3f GiB", gib);
    gib = mkmodel_data_bytes(phi4, "Q8_0") / 1073741824.0;
    CHECK(gib > 14.4 && gib < 14.8, "phi-4 Q8_0 holds %.3f GiB", gib);
}

// ---- files ----

static const mkmodel_preset small = {"small", 2, 256, 512, 2, 1, 2048, 0};

static bool same_string_key(const gguf_file *a, const gguf_file *b, const char *key) {
    const char *x = NULL, *y = NULL;
    return gguf_get_str(a, key, &x) && gguf_get_str(b, key, &y) && !strcmp(x, y);
}

// Mean and std of every value of a tensor (dequantized row by row).
static void tensor_stats(const gguf_tensor *t, double *mean, double *std) {
    const uint64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    const uint64_t rb = quant_row_bytes(t->type, n);
    float *row = malloc(n * sizeof *row);
    double s = 0, s2 = 0;
    for (uint64_t r = 0; r < rows; r++) {
        quant_dequantize_row(t->type, (const uint8_t *)t->data + r * rb, row, n);
        for (uint64_t i = 0; i < n; i++) {
            s += row[i];
            s2 += (double)row[i] * row[i];
        }
    }
    free(row);
    *mean = s / (double)(n * rows);
    *std = sqrt(s2 / (double)(n * rows) - *mean * *mean);
}

static void check_file(const char *path, const mkmodel_preset *p, const char *recipe) {
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s: %s", path, vkphi_last_error());
    if (!f) return;
    uint64_t tsize;
    const void *tdata = mkmodel_tokenizer_gguf(&tsize);
    gguf_file *tok = gguf_open_memory(tdata, tsize, "tokenizer");
    CHECK(tok != NULL, "embedded tokenizer opens");

    const char *s = NULL;
    CHECK(gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "phi3"), "%s: architecture", recipe);
    CHECK(gguf_get_str(f, "general.name", &s) && strstr(s, p->name), "%s: general.name", recipe);
    uint32_t u = 0;
    float x = 0;
    CHECK(gguf_get_u32(f, "general.file_type", &u) && u == quant_recipe_file_type(recipe), "%s: file_type", recipe);
    CHECK(gguf_get_u32(f, "phi3.block_count", &u) && u == p->n_layer, "block_count");
    CHECK(gguf_get_u32(f, "phi3.embedding_length", &u) && u == p->n_embd, "embedding_length");
    CHECK(gguf_get_u32(f, "phi3.feed_forward_length", &u) && u == p->n_ff, "feed_forward_length");
    CHECK(gguf_get_u32(f, "phi3.attention.head_count", &u) && u == p->n_head, "head_count");
    CHECK(gguf_get_u32(f, "phi3.attention.head_count_kv", &u) && u == p->n_head_kv, "head_count_kv");
    CHECK(gguf_get_u32(f, "phi3.context_length", &u) && u == p->n_ctx, "context_length");
    CHECK(gguf_get_u32(f, "phi3.rope.dimension_count", &u) && u == p->n_embd / p->n_head, "rope dims = head dim");
    CHECK(gguf_get_u32(f, "phi3.attention.sliding_window", &u) && u == 0, "sliding_window");
    CHECK(gguf_get_f32(f, "phi3.rope.freq_base", &x) && x == 250000.0f, "freq_base");
    CHECK(gguf_get_f32(f, "phi3.attention.layer_norm_rms_epsilon", &x) && x == 1e-5f, "eps");
    // Every tokenizer key of the embedded tokenizer, same values.
    int tok_keys = 0;
    for (int64_t i = 0; tok && i < gguf_n_kv(tok); i++) {
        const char *k = gguf_key_name(tok, i);
        if (strncmp(k, "tokenizer.", 10)) continue;
        tok_keys++;
        int64_t j = gguf_find_key(f, k);
        CHECK(j >= 0 && gguf_key_type(f, j) == gguf_key_type(tok, i), "%s: key %s copied", recipe, k);
    }
    CHECK(tok_keys >= 9, "the tokenizer has its keys (%d)", tok_keys);
    enum gguf_type et;
    uint64_t n_tok = 0, n_tok2 = 0, n_merges = 0, n_merges2 = 0;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tok) && tok &&
              gguf_get_arr(tok, "tokenizer.ggml.tokens", &et, &n_tok2) && n_tok == n_tok2 && n_tok == 100352,
          "tokens %llu", (unsigned long long)n_tok);
    CHECK(gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n_merges) && tok &&
              gguf_get_arr(tok, "tokenizer.ggml.merges", &et, &n_merges2) && n_merges == n_merges2,
          "merges");
    uint64_t len = 0;
    const char *t100265 = gguf_get_arr_str(f, "tokenizer.ggml.tokens", 100265, &len);
    CHECK(t100265 && len == 10 && !memcmp(t100265, "<|im_end|>", 10), "token 100265 is <|im_end|>");
    CHECK(tok && same_string_key(f, tok, "tokenizer.chat_template") && same_string_key(f, tok, "tokenizer.ggml.pre"),
          "chat template and pre-tokenizer");
    uint32_t bos = 0, eos = 0;
    CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos) && bos == 100257, "bos");
    CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos) && eos == 100265, "eos");

    // Tensors: names, shapes, types.
    const uint64_t E = p->n_embd, F = p->n_ff, hd = p->n_embd / p->n_head, V = n_tok;
    CHECK(gguf_n_tensors(f) == 3 + 6 * (int64_t)p->n_layer, "%s: %lld tensors", recipe, (long long)gguf_n_tensors(f));
    struct {
        const char *name;
        uint64_t ne0, ne1;
    } want[] = {{"token_embd.weight", E, V},        {"output_norm.weight", E, 1},
                {"output.weight", E, V},            {"blk.%d.attn_norm.weight", E, 1},
                {"blk.%d.attn_qkv.weight", E, E + 2 * p->n_head_kv * hd},
                {"blk.%d.attn_output.weight", E, E}, {"blk.%d.ffn_norm.weight", E, 1},
                {"blk.%d.ffn_up.weight", E, 2 * F},  {"blk.%d.ffn_down.weight", F, E}};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        const bool per_layer = strchr(want[w].name, '%') != NULL;
        for (int l = 0; l < (per_layer ? (int)p->n_layer : 1); l++) {
            char name[64];
            snprintf(name, sizeof name, want[w].name, l);
            const gguf_tensor *t = gguf_find_tensor(f, name);
            CHECK(t != NULL, "%s: tensor %s present", recipe, name);
            if (!t) continue;
            const uint32_t dims = want[w].ne1 == 1 ? 1 : 2;
            CHECK(t->n_dims == dims && t->ne[0] == want[w].ne0 && t->ne[1] == want[w].ne1, "%s: %s shape %llux%llu",
                  recipe, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1]);
            uint32_t type = dims == 1 ? GGML_TYPE_F32
                                      : quant_recipe_type(recipe, name, per_layer ? l : -1, (int)p->n_layer,
                                                          (uint32_t)want[w].ne0, p->n_head / p->n_head_kv, false);
            CHECK(t->type == type, "%s: %s is %s, want %s", recipe, name, quant_type_name(t->type),
                  quant_type_name(type));
        }
    }
    // Weight statistics, as the reference tiny models have them.
    double mean, std;
    const gguf_tensor *t = gguf_find_tensor(f, "blk.0.attn_output.weight");
    if (t) {
        tensor_stats(t, &mean, &std);
        CHECK(fabs(mean) < 0.01 / sqrt((double)E) * 10 && fabs(std * sqrt((double)E) - 1.0) < 0.05,
              "%s: attn_output mean %g std %g (want 1/sqrt(%llu))", recipe, mean, std, (unsigned long long)E);
    }
    if ((t = gguf_find_tensor(f, "blk.1.ffn_norm.weight"))) {
        tensor_stats(t, &mean, &std);
        CHECK(fabs(mean - 1.0) < 0.03 && std > 0.07 && std < 0.13, "%s: norm mean %g std %g", recipe, mean, std);
    }
    if ((t = gguf_find_tensor(f, "output.weight"))) {
        tensor_stats(t, &mean, &std);
        CHECK(fabs(std * sqrt((double)E) / 3.0 - 1.0) < 0.05, "%s: output std %g", recipe, std);
    }
    gguf_close(tok);
    gguf_close(f);
}

static bool files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static int count_partials(void) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".partial")) n++;
    if (d) closedir(d);
    return n;
}

static void test_files(void) {
    char path[512], path2[512];
    // The tiny preset (the reference models' shape) in the mixes the tests use most.
    const mkmodel_preset *tiny = mkmodel_find_preset("tiny");
    CHECK(tiny && tiny->n_layer == 3 && tiny->n_embd == 512 && tiny->n_ff == 1536 && tiny->n_head == 4 &&
              tiny->n_head_kv == 1,
          "the tiny preset has the reference shape");
    const char *tiny_types[] = {"Q4_K_M", "Q8_0", "F16"};
    for (int i = 0; i < 3 && tiny; i++) {
        path_in_tmp(path, sizeof path, "tiny.gguf");
        double t0 = vkphi_now();
        int rc = mkmodel_write(tiny, tiny_types[i], 1, 0, path);
        CHECK(rc == 0, "tiny %s: %s", tiny_types[i], vkphi_last_error());
        printf("tiny %-6s written in %.1f s\n", tiny_types[i], vkphi_now() - t0);
        if (!rc) check_file(path, tiny, tiny_types[i]);
        unlink(path);
    }
    // A smaller shape through every other mix.
    const char *types[] = {"F32", "BF16", "Q4_0", "Q6_K", "Q5_K_M", "Q3_K_M", "Q4_K_S"};
    for (int i = 0; i < 7; i++) {
        path_in_tmp(path, sizeof path, "small.gguf");
        int rc = mkmodel_write(&small, types[i], 3, 2, path);
        CHECK(rc == 0, "small %s: %s", types[i], vkphi_last_error());
        if (!rc) check_file(path, &small, types[i]);
        unlink(path);
    }

    // Same seed, same bytes, whatever the thread count; another seed, other bytes.
    path_in_tmp(path, sizeof path, "a.gguf");
    path_in_tmp(path2, sizeof path2, "b.gguf");
    CHECK(mkmodel_write(&small, "Q4_K_M", 7, 1, path) == 0, "seed 7, 1 thread: %s", vkphi_last_error());
    CHECK(mkmodel_write(&small, "Q4_K_M", 7, 3, path2) == 0, "seed 7, 3 threads: %s", vkphi_last_error());
    CHECK(files_equal(path, path2), "same seed gives the same bytes");
    CHECK(mkmodel_write(&small, "Q4_K_M", 8, 2, path2) == 0, "seed 8: %s", vkphi_last_error());
    CHECK(!files_equal(path, path2), "another seed gives other bytes");
    // Overwriting an existing file replaces it.
    CHECK(mkmodel_write(&small, "Q4_K_M", 7, 2, path2) == 0 && files_equal(path, path2), "overwrite");
    unlink(path);
    unlink(path2);

    // Bad input: one sentence, nothing left behind.
    path_in_tmp(path, sizeof path, "bad.gguf");
    int rc = mkmodel_write(&small, "Q9_Z", 1, 0, path);
    CHECK(rc == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "Q9_Z"), "unknown type: %d %s", rc, vkphi_last_error());
    CHECK(access(path, F_OK) != 0, "no file for an unknown type");
    CHECK(mkmodel_write(NULL, "Q8_0", 1, 0, path) == VKPHI_ERR_ARG, "no preset");
    mkmodel_preset odd = small;
    odd.n_head = 3; // 256 is not a multiple of 3
    CHECK(mkmodel_write(&odd, "Q8_0", 1, 0, path) == VKPHI_ERR_ARG, "impossible shape");
    odd = small;
    odd.n_vocab = 4192; // a cut vocabulary would need a cut tokenizer
    CHECK(mkmodel_write(&odd, "Q8_0", 1, 0, path) == VKPHI_ERR_UNSUPPORTED, "cut vocabulary refused");
    path_in_tmp(path, sizeof path, "no-such-dir/x.gguf");
    rc = mkmodel_write(&small, "Q8_0", 1, 0, path);
    CHECK(rc == VKPHI_ERR_IO && strstr(vkphi_last_error(), "no-such-dir/x.gguf"), "bad path: %s", vkphi_last_error());
    CHECK(count_partials() == 0, "no temporary files left behind");
    CHECK(mkmodel_find_preset("phi-5") == NULL && mkmodel_find_preset(NULL) == NULL, "unknown preset");
}

static void test_tokenizer_blob(void) {
    uint64_t size = 0;
    const unsigned char *blob = mkmodel_tokenizer_gguf(&size);
    char path[512];
    snprintf(path, sizeof path, "%s", test_tokenizer_path());
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL, "%s opens", path);
    if (!fp) return;
    unsigned char *disk = malloc(size + 1);
    size_t n = fread(disk, 1, size + 1, fp);
    fclose(fp);
    CHECK(n == size && size > 1000000 && !memcmp(disk, blob, size), "the embedded tokenizer is %s", path);
    free(disk);
}

static void test_default(void) {
    char cache[300], want[400], got[400];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    setenv("XDG_CACHE_HOME", cache, 1);
    snprintf(want, sizeof want, "%s/vkphi/default-%s-%s-v1.gguf", cache, MKMODEL_DEFAULT_PRESET, MKMODEL_DEFAULT_TYPE);
    int generated = -1;
    double t0 = vkphi_now();
    int rc = mkmodel_default_path(got, sizeof got, &generated);
    CHECK(rc == 0 && generated == 1 && !strcmp(got, want), "default model made: %d %d %s (%s)", rc, generated, got,
          vkphi_last_error());
    printf("default model generated in %.1f s\n", vkphi_now() - t0);
    struct stat st1, st2;
    CHECK(stat(want, &st1) == 0 && st1.st_size > 100 << 20, "default model on disk");
    if (!rc) check_file(got, mkmodel_find_preset(MKMODEL_DEFAULT_PRESET), MKMODEL_DEFAULT_TYPE);
    rc = mkmodel_default_path(got, sizeof got, &generated);
    CHECK(rc == 0 && generated == 0 && !strcmp(got, want), "second call reuses it");
    CHECK(stat(want, &st2) == 0 && st2.st_mtime == st1.st_mtime && st2.st_ino == st1.st_ino, "not rewritten");
    char tiny_buf[8];
    CHECK(mkmodel_default_path(tiny_buf, sizeof tiny_buf, NULL) == VKPHI_ERR_ARG, "small buffer refused");
    unlink(want);
    snprintf(want, sizeof want, "%s/vkphi", cache);
    rmdir(want);
    rmdir(cache);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vkphi-test-mkmodel-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) return test_skip("cannot make a temporary directory");
    test_tokenizer_blob();
    test_recipe();
    test_files();
    test_default();
    rmdir(tmpdir);
    return test_finish();
}
