// SPDX-License-Identifier: MIT
// KV-cache store and the attention kernels (decode with its chunk merge, causal
// prefill) against the CPU reference, f16 and 8-bit caches, at ragged shapes:
// KV lengths across chunk and block edges, GQA groups of 1 to 8, head dims below 128.
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "harness.h"
#include "ops.h"
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

// Stores pos0 + n_tokens rows of K/V (all but the last n_tokens as "history"),
// then attends with the last n_tokens queries, on sequence 1 of 2 (so row0 != 0).
static void test_case(uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, uint32_t pos0, uint32_t n_tokens, bool q8,
                      bool decode) {
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
    float *k = malloc((size_t)n_kv * kv_dim * 4), *v = malloc((size_t)n_kv * kv_dim * 4);
    for (uint32_t t = 0; t < n_kv; t++) {
        memcpy(k + (size_t)t * kv_dim, qkv + (size_t)t * qkv_dim + E, kv_dim * 4);
        memcpy(v + (size_t)t * kv_dim, qkv + (size_t)t * qkv_dim + E + kv_dim, kv_dim * 4);
        round_like_cache(k + (size_t)t * kv_dim, kv_dim, q8);
        round_like_cache(v + (size_t)t * kv_dim, kv_dim, q8);
    }
    const float *q = qkv + (size_t)pos0 * qkv_dim;
    float *ref = malloc((size_t)n_tokens * E * 4), *out = malloc((size_t)n_tokens * E * 4);
    ref_attention(q, qkv_dim, k, v, kv_dim, ref, n_tokens, pos0, n_head, n_head_kv, head_dim);

    uint32_t n_rows = 2 * n_ctx;
    gpu_buffer bqkv = test_upload(&g, qkv, n_qkv * 4);
    gpu_buffer bk = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    gpu_buffer bv = test_upload(&g, NULL, kv_layer_bytes(kv_dim, n_rows, q8));
    gpu_buffer bo = test_upload(&g, NULL, (size_t)n_tokens * E * 4);
    attn_shape a = {n_head, n_head_kv, head_dim, 1.0f / sqrtf((float)head_dim)};
    gpu_buffer bpart = test_upload(&g, NULL, attn_decode_part_bytes(&a, n_kv));
    kv_layer kv = {&bk, &bv, kv_dim, n_rows, q8};
    cmd_begin(g.cmd);
    CHECK(op_kv_store(g.cmd, g.k, &kv, buf_all(&bqkv), qkv_dim, E, n_kv, row0) == 0, "%s", vkphi_last_error());
    cmd_barrier(g.cmd);
    // The queries in a buffer of their own: a view at row pos0 would start at an
    // offset that devices with 64- or 256-byte alignment cannot bind.
    gpu_buffer bq = test_upload(&g, qkv + (size_t)pos0 * qkv_dim, (size_t)n_tokens * qkv_dim * 4);
    buf_view qv = buf_all(&bq);
    int rc = decode ? op_attn_decode(g.cmd, g.k, &kv, &a, qv, buf_all(&bpart), buf_all(&bo), n_kv, row0)
                    : op_attn_prefill(g.cmd, g.k, &kv, &a, qv, qkv_dim, buf_all(&bo), E, n_tokens, pos0, row0);
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
    double e = test_max_rel_err(out, ref, (size_t)n_tokens * E, q8 ? 2e-3 : 2e-5, 1e-4);
    CHECK(e <= 1, "%s %s: %u heads / %u kv, dim %u, pos0 %u, %u tokens: error %.3g of tolerance", decode ? "decode" : "prefill",
          q8 ? "q8" : "f16", n_head, n_head_kv, head_dim, pos0, n_tokens, e);
    buffer_destroy(g.dev, &bqkv), buffer_destroy(g.dev, &bk), buffer_destroy(g.dev, &bv);
    buffer_destroy(g.dev, &bo), buffer_destroy(g.dev, &bpart), buffer_destroy(g.dev, &bq);
    free(qkv), free(k), free(v), free(ref), free(out), free(k_exact);
}

int main(void) {
    if (!test_gpu_open(&g)) return test_skip("no Vulkan device");
    test_seed(7);
    for (int q8 = 0; q8 < 2; q8++) {
        // decode: one query, KV lengths around the 128-row block and 256-row chunk
        test_case(4, 1, 128, 0, 1, q8, true);
        test_case(4, 1, 128, 128, 1, q8, true);
        test_case(40, 10, 128, 300, 1, q8, true); // Phi-4's heads
        test_case(8, 1, 64, 700, 1, q8, true);    // 8 query heads per KV head
        test_case(3, 3, 96, 17, 1, q8, true);     // no GQA, head dim 96 (Phi-3 mini)
        // prefill: batches across the 16-query tile and 32-key block edges
        test_case(4, 1, 128, 0, 1, q8, false);
        test_case(4, 1, 128, 0, 17, q8, false);
        test_case(40, 10, 128, 13, 40, q8, false);
        test_case(3, 3, 96, 33, 5, q8, false);
        test_case(8, 2, 64, 0, 70, q8, false);
        // Workgroups of one KV head's query rows (32 on lavapipe: 32 / G tokens):
        // G = 4 (Phi-4) at ragged batches, G = 8, G = 3 (10 tokens, 30 of 32 rows), G = 1.
        test_case(8, 2, 128, 0, 9, q8, false);
        test_case(40, 10, 128, 0, 17, q8, false);
        test_case(8, 2, 128, 3, 64, q8, false);
        test_case(24, 3, 64, 5, 100, q8, false);
        test_case(6, 2, 128, 0, 41, q8, false);
        test_case(4, 4, 32, 7, 17, q8, false);
    }
    test_gpu_close(&g);
    return test_finish();
}
