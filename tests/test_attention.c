// SPDX-License-Identifier: MIT
// KV-cache store and the attention kernels (batched decode with RoPE and the KV
// store folded in, and its chunk merge; causal prefill) against the CPU reference,
// f16 and 8-bit caches, at ragged shapes: KV lengths across chunk and block edges,
// GQA groups of 1 to 8, head dims below 128, partial RoPE, tokens of several
// sequences at different depths in one decode dispatch.
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "harness_gpu.h"
#include "ops.h"
#include "select.h"
#include "ref.h"

static test_gpu g;

// What the cache keeps of a value: f16, or int8 with one f16 scale per 32.
static void round_like_cache(float *row, uint32_t n, bool q8) {
    if (!q8) {
        for (uint32_t i = 0; i < n; i++) row[i] = vkphi_f16_to_f32(vkphi_f32_to_f16(row[i]));
        return;
    }
    for (uint32_t b = 0; b < n; b += 32) {
        float amax = 0;
        for (uint32_t i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(row[b + i]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0;
        float dh = vkphi_f16_to_f32(vkphi_f32_to_f16(d));
        for (uint32_t i = 0; i < 32; i++) row[b + i] = nearbyintf(row[b + i] * id) * dh;
    }
}

// The K and V columns (from column E) of n_kv rows of fused [Q;K;V], as the cache
// will hold them (*k, *v: malloc'ed).
static void cached_kv(const float *qkv, uint32_t n_kv, uint32_t qkv_dim, uint32_t E, uint32_t kv_dim, bool q8, float **k,
                      float **v) {
    *k = malloc((size_t)n_kv * kv_dim * 4), *v = malloc((size_t)n_kv * kv_dim * 4);
    for (uint32_t t = 0; t < n_kv; t++) {
        memcpy(*k + (size_t)t * kv_dim, qkv + (size_t)t * qkv_dim + E, kv_dim * 4);
        memcpy(*v + (size_t)t * kv_dim, qkv + (size_t)t * qkv_dim + E + kv_dim, kv_dim * 4);
        round_like_cache(*k + (size_t)t * kv_dim, kv_dim, q8);
        round_like_cache(*v + (size_t)t * kv_dim, kv_dim, q8);
    }
}

// Stores pos0 + n_tokens rows of K/V (all but the last n_tokens as "history"),
// then attends with the last n_tokens queries, on sequence 1 of 2 (so row0 != 0).
static void test_case(uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, uint32_t pos0, uint32_t n_tokens, bool q8) {
    uint32_t kv_dim = n_head_kv * head_dim, E = n_head * head_dim, qkv_dim = E + 2 * kv_dim;
    uint32_t n_kv = pos0 + n_tokens, n_ctx = n_kv + 5, row0 = n_ctx; // sequence 1
    size_t n_qkv = (size_t)n_kv * qkv_dim;
    float *qkv = malloc(n_qkv * 4);
    for (size_t i = 0; i < n_qkv; i++) qkv[i] = test_rand_normal();
    // Values halfway between two halves (and subnormal halves) in the first K row:
    // the cache must round them to nearest even on every driver, as the CPU does.
    const float ties[] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, -(1.0f + 0x1p-11f), 1.5f * 0x1p-24f, 2.5f * 0x1p-24f,
                          3.0f * 0x1p-25f, 0x1p-15f + 0x1p-25f, 65519.0f};
    for (uint32_t i = 0; i < sizeof ties / sizeof ties[0] && i < kv_dim; i++) qkv[E + i] = ties[i];
    float *k_exact = malloc((size_t)n_kv * kv_dim * 4);
    for (uint32_t t = 0; t < n_kv; t++) memcpy(k_exact + (size_t)t * kv_dim, qkv + (size_t)t * qkv_dim + E, kv_dim * 4);
    // CPU: K, V as the cache will hold them.
    float *k, *v;
    cached_kv(qkv, n_kv, qkv_dim, E, kv_dim, q8, &k, &v);
    const float *q = qkv + (size_t)pos0 * qkv_dim;
    float *ref = malloc((size_t)n_tokens * E * 4), *out = malloc((size_t)n_tokens * E * 4);
    ref_attention(q, qkv_dim, k, v, kv_dim, ref, n_tokens, pos0, n_head, n_head_kv, head_dim);

    uint32_t n_rows = 2 * n_ctx;
    gpu_buffer bqkv = test_upload(&g, qkv, n_qkv * 4);
    gpu_buffer bk = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    gpu_buffer bv = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    gpu_buffer bo = test_upload(&g, NULL, (size_t)n_tokens * E * 4);
    attn_shape a = {n_head, n_head_kv, head_dim, 1.0f / sqrtf((float)head_dim)};
    kv_layer kv = {&bk, &bv, kv_dim, n_rows, q8};
    cmd_begin(g.cmd);
    CHECK(op_kv_store(g.cmd, g.k, &kv, buf_all(&bqkv), qkv_dim, E, n_kv, row0) == 0, "%s", vkphi_last_error());
    cmd_barrier(g.cmd);
    // The queries in a buffer of their own: a view at row pos0 would start at an
    // offset that devices with 64- or 256-byte alignment cannot bind.
    gpu_buffer bq = test_upload(&g, qkv + (size_t)pos0 * qkv_dim, (size_t)n_tokens * qkv_dim * 4);
    buf_view qv = buf_all(&bq);
    int rc = op_attn_prefill(g.cmd, g.k, &kv, &a, qv, qkv_dim, buf_all(&bo), E, n_tokens, pos0, row0);
    CHECK(rc == 0, "%s", vkphi_last_error());
    CHECK(cmd_submit(g.cmd, true) == 0, "%s", vkphi_last_error());
    test_download(&g, &bo, out, (size_t)n_tokens * E * 4);
    if (!q8) { // the f16 cache holds exactly the round-to-nearest-even halves
        uint16_t *kc = malloc((size_t)n_rows * kv_dim * 2);
        test_download(&g, &bk, kc, (size_t)n_rows * kv_dim * 2); // this sequence's rows start at row0
        uint32_t wrong = 0;
        for (size_t i = 0; i < (size_t)n_kv * kv_dim; i++)
            if (kc[(size_t)row0 * kv_dim + i] != vkphi_f32_to_f16(k_exact[i])) wrong++;
        CHECK(wrong == 0, "f16 cache: %u of %zu halves are not the nearest-even rounding", wrong, (size_t)n_kv * kv_dim);
        free(kc);
    }
    // 8-bit: GPU and CPU may round a value at a quantization tie differently (the
    // GPU's division is not correctly rounded), one step of amax/127.
    // On cooperative matrices Q, P (and an 8-bit cache's values) are rounded to f16
    // too: relative 2^-11 each, on scores of a few units.
    enum kernel_id id = kernels_choose_attn_prefill(g.k, q8, head_dim);
    bool coop = id == KERNEL_ATTN_PREFILL_COOP_F16 || id == KERNEL_ATTN_PREFILL_COOP_Q8;
    double e = test_max_rel_err(out, ref, (size_t)n_tokens * E, coop ? 3e-3 : q8 ? 2e-3 : 2e-5, coop ? 3e-3 : 1e-4);
    CHECK(e <= 1, "prefill%s %s: %u heads / %u kv, dim %u, pos0 %u, %u tokens: error %.3g of tolerance",
          coop ? " (coopmat)" : "", q8 ? "q8" : "f16", n_head, n_head_kv, head_dim, pos0, n_tokens, e);
    buffer_destroy(g.dev, &bqkv), buffer_destroy(g.dev, &bk), buffer_destroy(g.dev, &bv);
    buffer_destroy(g.dev, &bo), buffer_destroy(g.dev, &bq);
    free(qkv), free(k), free(v), free(ref), free(out), free(k_exact);
}

// A decode step of n_tok tokens, token i the next one of sequence i + 1 (so row0 is
// never 0) at position pos[i]: the history rows go in through op_kv_store, the
// step's own K and V through the decode kernel, which also rotates Q and K.
static void test_decode(uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, const uint32_t *pos, uint32_t n_tok,
                        bool q8, uint32_t n_rot, bool neox) {
    uint32_t kv_dim = n_head_kv * head_dim, E = n_head * head_dim, qkv_dim = E + 2 * kv_dim;
    uint32_t n_ctx = 0;
    for (uint32_t i = 0; i < n_tok; i++) n_ctx = pos[i] + 3 > n_ctx ? pos[i] + 3 : n_ctx;
    uint32_t n_rows = (n_tok + 1) * n_ctx;
    rope_spec r = {n_rot, neox, 10000.0, NULL, 1.0};
    attn_shape a = {n_head, n_head_kv, head_dim, 1.0f / sqrtf((float)head_dim)};
    gpu_buffer bk = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    gpu_buffer bv = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    kv_layer kv = {&bk, &bv, kv_dim, n_rows, q8};
    float *table = malloc((size_t)n_ctx * n_rot * 4);
    rope_table_fill(table, n_ctx, &r);
    gpu_buffer btab = test_upload(&g, table, (size_t)n_ctx * n_rot * 4);
    float *step = malloc((size_t)n_tok * qkv_dim * 4), *ref = malloc((size_t)n_tok * E * 4), *out = malloc((size_t)n_tok * E * 4);
    uint32_t *tok = malloc(8 * n_tok);
    gpu_buffer *hist = calloc(n_tok, sizeof *hist);
    cmd_begin(g.cmd);
    for (uint32_t i = 0; i < n_tok; i++) {
        uint32_t n_kv = pos[i] + 1, row0 = (i + 1) * n_ctx;
        tok[2 * i] = row0, tok[2 * i + 1] = pos[i];
        // Rows 0 .. pos-1 (already rotated, as the cache holds them) and this step's row.
        float *qkv = malloc((size_t)n_kv * qkv_dim * 4);
        for (size_t j = 0; j < (size_t)n_kv * qkv_dim; j++) qkv[j] = test_rand_normal();
        memcpy(step + (size_t)i * qkv_dim, qkv + (size_t)pos[i] * qkv_dim, qkv_dim * 4);
        if (pos[i]) {
            hist[i] = test_upload(&g, qkv, (size_t)pos[i] * qkv_dim * 4);
            CHECK(op_kv_store(g.cmd, g.k, &kv, buf_all(&hist[i]), qkv_dim, E, pos[i], row0) == 0, "%s", vkphi_last_error());
        }
        // CPU: rotate this step's Q and K heads, round K and V like the cache.
        float *cur = qkv + (size_t)pos[i] * qkv_dim;
        ref_rope(cur, 1, n_head + n_head_kv, head_dim, qkv_dim, 0, pos[i], &r);
        float *k, *v;
        cached_kv(qkv, n_kv, qkv_dim, E, kv_dim, q8, &k, &v);
        ref_attention(cur, qkv_dim, k, v, kv_dim, ref + (size_t)i * E, 1, pos[i], n_head, n_head_kv, head_dim);
        free(qkv), free(k), free(v);
    }
    cmd_barrier(g.cmd);
    gpu_buffer bstep = test_upload(&g, step, (size_t)n_tok * qkv_dim * 4);
    gpu_buffer btok = test_upload(&g, tok, 8 * n_tok);
    gpu_buffer bpart = test_upload(&g, NULL, attn_decode_part_bytes(&a, n_ctx, n_tok));
    gpu_buffer bo = test_upload(&g, NULL, (size_t)n_tok * E * 4);
    attn_decode_args d = {buf_all(&bstep), qkv_dim, E, buf_all(&btok), &r, buf_all(&btab), buf_all(&bpart), buf_all(&bo),
                          E, n_tok, n_ctx, n_ctx - 2, {0}};
    CHECK(op_attn_decode(g.cmd, g.k, &kv, &a, &d) == 0, "%s", vkphi_last_error());
    CHECK(cmd_submit(g.cmd, true) == 0, "%s", vkphi_last_error());
    test_download(&g, &bo, out, (size_t)n_tok * E * 4);
    double e = test_max_rel_err(out, ref, (size_t)n_tok * E, q8 ? 2e-3 : 2e-5, 1e-4);
    CHECK(e <= 1, "decode %s: %u heads / %u kv, dim %u, rot %u, %u tokens (first at %u): error %.3g of tolerance",
          q8 ? "q8" : "f16", n_head, n_head_kv, head_dim, n_rot, n_tok, pos[0], e);
    for (uint32_t i = 0; i < n_tok; i++)
        if (pos[i]) buffer_destroy(g.dev, &hist[i]);
    gpu_buffer *bs[] = {&bk, &bv, &btab, &bstep, &btok, &bpart, &bo};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++) buffer_destroy(g.dev, bs[i]);
    free(table), free(step), free(ref), free(out), free(tok), free(hist);
}

// Prefill batches across the 16-query tile and 32-key block edges.
static void prefill_cases(bool q8) {
    test_case(4, 1, 128, 0, 1, q8);
    test_case(4, 1, 128, 0, 17, q8);
    test_case(40, 10, 128, 13, 40, q8);
    test_case(3, 3, 96, 33, 5, q8);
    test_case(8, 2, 64, 0, 70, q8);
    // Workgroups of one KV head's query rows (32 on lavapipe: 32 / G tokens):
    // G = 4 (Phi-4) at ragged batches, G = 8, G = 3 (10 tokens, 30 of 32 rows), G = 1.
    test_case(8, 2, 128, 0, 9, q8);
    test_case(40, 10, 128, 0, 17, q8);
    test_case(8, 2, 128, 3, 64, q8);
    test_case(24, 3, 64, 5, 100, q8);
    test_case(6, 2, 128, 0, 41, q8);
    test_case(4, 4, 32, 7, 17, q8);
}

int main(void) {
    if (!test_gpu_open(&g)) return test_skip("no Vulkan device");
    test_seed(7);
    for (int q8 = 0; q8 < 2; q8++) {
        // decode: KV lengths around the 128-row block and 256-row chunk; one token or
        // several sequences at different depths in one dispatch
        test_decode(4, 1, 128, (uint32_t[]){0}, 1, q8, 128, true);
        test_decode(4, 1, 128, (uint32_t[]){128}, 1, q8, 128, true);
        test_decode(40, 10, 128, (uint32_t[]){300, 5, 255, 256}, 4, q8, 128, true); // Phi-4's heads
        test_decode(8, 1, 64, (uint32_t[]){700, 1}, 2, q8, 64, false); // 8 query heads per KV head, llama pairs
        test_decode(3, 3, 96, (uint32_t[]){17}, 1, q8, 96, true);      // no GQA, head dim 96 (Phi-3 mini)
        test_decode(24, 8, 128, (uint32_t[]){40, 513, 3}, 3, q8, 96, true); // partial RoPE (Phi-4-mini)
        // prefill, on cooperative matrices too where the device has them (forced on:
        // the device policy keeps them off CPU drivers)
        kernel_policy p = *kernels_policy(g.k), coop = p;
        coop.coopmat = true;
        prefill_cases(q8);
        if (device_get_info(g.dev)->coopmat) {
            kernels_set_policy(g.k, &coop);
            prefill_cases(q8);
            kernels_set_policy(g.k, &p);
        }
    }
    test_gpu_close(&g);
    return test_finish();
}
