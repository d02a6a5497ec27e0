// SPDX-License-Identifier: MIT
// Each elementwise/row kernel and the float matrix kernels against the CPU
// reference (runtime/core/ref.c) on random inputs, at ragged shapes and Phi-4's sizes.
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "harness_gpu.h"
#include "ops.h"
#include "select.h"
#include "ref.h"

static test_gpu g;

static float *rand_vec(size_t n, float scale) {
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = test_rand_normal() * scale;
    return v;
}

static void run(void) {
    if (cmd_submit(g.cmd, true) != VKPHI_OK) {
        fprintf(stderr, "submit: %s\n", vkphi_last_error());
        abort();
    }
}

static void begin(void) { cmd_begin(g.cmd); }

static void test_rmsnorm(uint32_t rows, uint32_t n) {
    float *x = rand_vec((size_t)rows * n, 2.0f), *w = rand_vec(n, 1.0f);
    float *ref = malloc((size_t)rows * n * 4), *out = malloc((size_t)rows * n * 4);
    ref_rmsnorm(x, w, ref, rows, n, 1e-5f);
    gpu_buffer bx = test_upload(&g, x, (size_t)rows * n * 4), bw = test_upload(&g, w, n * 4),
               bo = test_upload(&g, NULL, (size_t)rows * n * 4);
    begin();
    CHECK(op_rmsnorm(g.cmd, g.k, buf_all(&bx), buf_all(&bw), buf_all(&bo), rows, n, n, n, 1e-5f) == 0, "%s",
          vkphi_last_error());
    run();
    test_download(&g, &bo, out, (size_t)rows * n * 4);
    double e = test_max_rel_err(out, ref, (size_t)rows * n, 1e-6, 1e-5);
    CHECK(e <= 1, "rmsnorm %u x %u: error %.3g of tolerance (1e-6 + 1e-5 rel)", rows, n, e);
    buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bo);
    free(x), free(w), free(ref), free(out);
}

// RoPE on the Q heads of a fused QKV row (heads start at head_offset). With
// `longrope`, random frequency divisors in [1, 40) (Phi-4-mini's long factors
// span about 1 to 50) and the given attn_factor. The dims past n_rot and the
// values around the heads must come back untouched.
static void test_rope(uint32_t tokens, uint32_t heads, uint32_t head_dim, uint32_t n_rot, uint32_t pos0, double base,
                      bool neox, bool longrope, double attn_factor) {
    uint32_t head_offset = head_dim; // skip one head, as if rotating K inside [Q;K;V]
    uint32_t stride = head_offset + heads * head_dim + 3;
    size_t n = (size_t)tokens * stride;
    float *x = rand_vec(n, 1.0f), *ref = malloc(n * 4), *out = malloc(n * 4), *factors = malloc(n_rot / 2 * 4 + 4);
    for (uint32_t i = 0; i < n_rot / 2; i++) factors[i] = test_rand_uniform(1.0f, 40.0f);
    rope_spec r = {n_rot, neox, base, longrope ? factors : NULL, longrope ? attn_factor : 1.0};
    memcpy(ref, x, n * 4);
    ref_rope(ref, tokens, heads, head_dim, stride, head_offset, pos0, &r);
    uint32_t n_pos = pos0 + tokens;
    float *table = malloc((size_t)n_pos * n_rot * 4);
    rope_table_fill(table, n_pos, &r);
    gpu_buffer bx = test_upload(&g, x, n * 4), bt = test_upload(&g, table, (size_t)n_pos * n_rot * 4);
    begin();
    CHECK(op_rope(g.cmd, g.k, buf_all(&bx), buf_all(&bt), tokens, heads, head_dim, stride, head_offset, pos0, &r) == 0,
          "%s", vkphi_last_error());
    run();
    test_download(&g, &bx, out, n * 4);
    double e = test_max_rel_err(out, ref, n, 1e-6, 1e-5);
    CHECK(e <= 1, "rope %s %u tokens x %u heads (dim %u, rot %u)%s at %u: error %.3g of tolerance", neox ? "neox" : "normal",
          tokens, heads, head_dim, n_rot, longrope ? " LongRoPE" : "", pos0, e);
    size_t moved = 0; // values RoPE must not touch: past n_rot in each head, and outside the heads
    for (uint32_t t = 0; t < tokens; t++)
        for (uint32_t d = 0; d < stride; d++) {
            size_t i = (size_t)t * stride + d;
            bool rotated = d >= head_offset && d < head_offset + heads * head_dim && (d - head_offset) % head_dim < n_rot;
            moved += !rotated && (memcmp(&out[i], &x[i], 4) || memcmp(&ref[i], &x[i], 4));
        }
    CHECK(moved == 0, "rope rot %u of %u: %zu values outside the rotated dims changed", n_rot, head_dim, moved);
    buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &bt);
    free(x), free(ref), free(out), free(table), free(factors);
}

static void test_swiglu(uint32_t tokens, uint32_t ff) {
    size_t n_in = (size_t)tokens * 2 * ff, n_out = (size_t)tokens * ff;
    float *x = rand_vec(n_in, 3.0f), *ref = malloc(n_out * 4), *out = malloc(n_out * 4);
    ref_swiglu(x, ref, tokens, ff);
    gpu_buffer bx = test_upload(&g, x, n_in * 4), bo = test_upload(&g, NULL, n_out * 4);
    begin();
    CHECK(op_swiglu(g.cmd, g.k, buf_all(&bx), buf_all(&bo), tokens, ff, 2 * ff, ff) == 0, "%s", vkphi_last_error());
    run();
    test_download(&g, &bo, out, n_out * 4);
    double e = test_max_rel_err(out, ref, n_out, 1e-6, 1e-5);
    CHECK(e <= 1, "swiglu %u x %u: error %.3g of tolerance", tokens, ff, e);
    buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &bo);
    free(x), free(ref), free(out);
}

// Float weights of `type` (F32, F16, BF16), n_out x n_in, times n_tokens vectors.
// Tolerance per output: 2e-6 * sum |w x| (f32 accumulation in any order) + 1e-6;
// 1e-3 * sum |w x| + 1e-3 where op_matmul runs on cooperative matrices (f16 inputs).
static void test_matmul(uint32_t type, uint32_t n_in, uint32_t n_out, uint32_t n_tokens) {
    size_t nw = (size_t)n_in * n_out;
    size_t esize = type == GGML_TYPE_F32 ? 4 : 2;
    float *w = rand_vec(nw, 1.0f), *x = rand_vec((size_t)n_tokens * n_in, 1.0f);
    uint16_t *w16 = NULL;
    if (type != GGML_TYPE_F32) { // round the weights to the stored type first
        w16 = malloc(nw * 2);
        for (size_t i = 0; i < nw; i++) {
            w16[i] = type == GGML_TYPE_F16 ? vkphi_f32_to_f16(w[i]) : vkphi_f32_to_bf16(w[i]);
            w[i] = type == GGML_TYPE_F16 ? vkphi_f16_to_f32(w16[i]) : vkphi_bf16_to_f32(w16[i]);
        }
    }
    float *ref = malloc((size_t)n_tokens * n_out * 4), *out = malloc((size_t)n_tokens * n_out * 4);
    ref_matmul(w, x, ref, n_in, n_out, n_tokens);
    gpu_buffer bw = test_upload(&g, w16 ? (void *)w16 : (void *)w, nw * esize);
    gpu_buffer bx = test_upload(&g, x, (size_t)n_tokens * n_in * 4), by = test_upload(&g, NULL, (size_t)n_tokens * n_out * 4);
    gpu_weight gw = {&bw, 0, type, n_in, n_out, (uint64_t)n_in * esize};
    // y starts as 1, 2, 3, ...: op_matmul_add must add to it, op_matmul replace it.
    float *y0 = malloc((size_t)n_tokens * n_out * 4);
    for (size_t i = 0; i < (size_t)n_tokens * n_out; i++) y0[i] = (float)(i % 7) + 1;
    gpu_buffer by_add = test_upload(&g, y0, (size_t)n_tokens * n_out * 4);
    float *out_add = malloc((size_t)n_tokens * n_out * 4);
    begin();
    CHECK(op_matmul(g.cmd, g.k, &gw, buf_all(&bx), buf_all(&by), n_tokens, n_in, n_out) == 0, "%s", vkphi_last_error());
    CHECK(op_matmul_add(g.cmd, g.k, &gw, buf_all(&bx), buf_all(&by_add), n_tokens, n_in, n_out) == 0, "%s",
          vkphi_last_error());
    run();
    test_download(&g, &by, out, (size_t)n_tokens * n_out * 4);
    test_download(&g, &by_add, out_add, (size_t)n_tokens * n_out * 4);
    double worst_add = 0;
    for (size_t i = 0; i < (size_t)n_tokens * n_out; i++) worst_add = fmax(worst_add, fabs(out_add[i] - y0[i] - out[i]));
    CHECK(worst_add <= 1e-5 * (1 + sqrt(n_in)), "matmul_add type %u %u x %u x %u: y + Wx off by %.3g", type, n_out, n_in,
          n_tokens, worst_add);
    buffer_destroy(g.dev, &by_add);
    free(y0), free(out_add);
    // (Rows of a length that is not a multiple of 4 take a few tokens to the
    // matrix-matrix kernels too, as they take many.)
    matmul_choice ch;
    CHECK(kernels_choose_matmul(g.k, type, n_tokens, n_in % 4 == 0, true, &ch) == 0, "%s", vkphi_last_error());
    const char *label = ch.label;
    double worst = 0, rel = strstr(label, "coopmat") ? 1e-3 : 2e-6;
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t r = 0; r < n_out; r++) {
            double mag = 0;
            for (uint32_t k = 0; k < n_in; k++) mag += fabs((double)w[(size_t)r * n_in + k] * x[(size_t)t * n_in + k]);
            double e = fabs((double)out[(size_t)t * n_out + r] - ref[(size_t)t * n_out + r]) / (rel * mag + rel / 2);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    CHECK(worst <= 1, "%s: %u x %u times %u tokens: error %.3g of tolerance", label, n_out, n_in, n_tokens, worst);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    free(w), free(w16), free(x), free(ref), free(out);
}

// Batch invariance: a token's outputs must not depend on what else is in its batch.
// Past KERNEL_FEW_TOKENS (the matrix-matrix kernels, any tile width), the first n
// tokens of a batch of 100 give the same bits as those n alone. (The matrix-vector
// kernels' own invariance is tested in test_quant_gpu.)
static void test_matmul_invariance(uint32_t type, uint32_t n_in, uint32_t n_out) {
    const uint32_t N = 100, ns[] = {KERNEL_FEW_TOKENS + 1, 31, 32, 33, 64};
    size_t esize = type == GGML_TYPE_F32 ? 4 : 2, nw = (size_t)n_in * n_out;
    float *w = rand_vec(nw, 1.0f), *x = rand_vec((size_t)N * n_in, 1.0f);
    uint16_t *w16 = malloc(nw * 2);
    for (size_t i = 0; i < nw; i++) w16[i] = vkphi_f32_to_f16(w[i]);
    float *all = malloc((size_t)N * n_out * 4), *part = malloc((size_t)N * n_out * 4);
    gpu_buffer bw = test_upload(&g, esize == 4 ? (void *)w : (void *)w16, nw * esize);
    gpu_buffer bx = test_upload(&g, x, (size_t)N * n_in * 4), by = test_upload(&g, NULL, (size_t)N * n_out * 4);
    gpu_weight gw = {&bw, 0, type, n_in, n_out, (uint64_t)n_in * esize};
    for (size_t i = 0; i <= sizeof ns / sizeof ns[0]; i++) {
        uint32_t n = i == 0 ? N : ns[i - 1];
        begin();
        CHECK(op_matmul(g.cmd, g.k, &gw, buf_all(&bx), buf_all(&by), n, n_in, n_out) == 0, "%s", vkphi_last_error());
        run();
        test_download(&g, &by, i == 0 ? all : part, (size_t)n * n_out * 4);
        CHECK(i == 0 || memcmp(all, part, (size_t)n * n_out * 4) == 0, "matmul type %u, %u x %u: the first %u tokens of "
              "a batch of %u differ from a batch of %u alone", type, n_out, n_in, n, N, n);
    }
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    free(w), free(w16), free(x), free(all), free(part);
}

// y = W x by the decode path for n of the N tokens of bx, into out (n rows).
static void matvec_step(const gpu_weight *gw, gpu_buffer *bx, gpu_buffer *by, const float *zero, uint32_t n,
                        float *out) {
    CHECK(buffer_write(g.dev, by, 0, zero, (size_t)n * gw->n_out * 4) == VKPHI_OK, "%s", vkphi_last_error());
    begin();
    CHECK(op_matvec_add(g.cmd, g.k, gw, buf_all(bx), buf_all(by), n, gw->n_in, gw->n_out) == 0, "%s", vkphi_last_error());
    run();
    test_download(&g, by, out, (size_t)n * gw->n_out * 4);
}

// A device policy may cap the tokens of one matrix-vector dispatch (RDNA3 under
// Mesa 22: 1, kernels/policy.c): a decode step of more tokens then takes several
// dispatches, and every token's sums keep the bits they have under the full 16, at
// any step size.
static void test_matvec_cap(void) {
    const uint32_t n_in = 200, n_out = 67, N = 20, ns[] = {1, 7, 8, 9, 16, 20};
    float *w = rand_vec((size_t)n_in * n_out, 1.0f), *x = rand_vec((size_t)N * n_in, 1.0f);
    uint16_t *w16 = malloc((size_t)n_in * n_out * 2);
    for (size_t i = 0; i < (size_t)n_in * n_out; i++) w16[i] = vkphi_f32_to_f16(w[i]);
    float *zero = calloc((size_t)N * n_out, 4), *want = malloc((size_t)N * n_out * 4), *got = malloc((size_t)N * n_out * 4);
    gpu_buffer bw = test_upload(&g, w16, (size_t)n_in * n_out * 2), bx = test_upload(&g, x, (size_t)N * n_in * 4);
    gpu_buffer by = test_upload(&g, zero, (size_t)N * n_out * 4);
    gpu_weight gw = {&bw, 0, GGML_TYPE_F16, n_in, n_out, (uint64_t)n_in * 2};
    const kernel_policy p0 = *kernels_policy(g.k);
    kernel_policy p = p0;
    p.matvec_tokens = KERNEL_FEW_TOKENS;
    kernels_set_policy(g.k, &p);
    matvec_step(&gw, &bx, &by, zero, N, want); // the reference: all 20 under the full cap
    const uint32_t caps[] = {KERNEL_FEW_TOKENS, 8, 1};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        const uint32_t cap = caps[c];
        p.matvec_tokens = cap;
        kernels_set_policy(g.k, &p);
        matmul_choice ch;
        CHECK(kernels_choose_matvec(g.k, GGML_TYPE_F16, cap + 1, &ch) == 0 && ch.path == MATMUL_VEC_CHUNKS,
              "past %u tokens the decode path takes several dispatches", cap);
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            matvec_step(&gw, &bx, &by, zero, ns[i], got);
            CHECK(memcmp(want, got, (size_t)ns[i] * n_out * 4) == 0, "matvec, at most %u tokens a dispatch: %u tokens "
                  "differ from the same tokens in a step of %u", cap, ns[i], N);
        }
    }
    kernels_set_policy(g.k, &p0);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    free(w), free(w16), free(x), free(zero), free(want), free(got);
}

// Views at any offset, as the forward pass makes them: x from row x_row0 of a
// larger activation matrix, y into columns y_col .. y_col+n_out-1 of rows
// y_stride wide (split q/k/v weights fill consecutive columns; logits are written
// in windows of rows). Devices align bindings to 64 or 256 bytes, so the offsets
// travel as push constants; the columns around the window must stay untouched.
static void test_matmul_views(uint32_t n_in, uint32_t n_out, uint32_t n_tokens, uint32_t x_row0, uint32_t y_col) {
    uint32_t y_stride = y_col + n_out + 5, x_rows = x_row0 + n_tokens;
    float *w = rand_vec((size_t)n_in * n_out, 1.0f), *x = rand_vec((size_t)x_rows * n_in, 1.0f);
    float *y = malloc((size_t)n_tokens * y_stride * 4), *out = malloc((size_t)n_tokens * y_stride * 4);
    for (size_t i = 0; i < (size_t)n_tokens * y_stride; i++) y[i] = (float)i;
    gpu_buffer bw = test_upload(&g, w, (size_t)n_in * n_out * 4), bx = test_upload(&g, x, (size_t)x_rows * n_in * 4);
    gpu_buffer by = test_upload(&g, y, (size_t)n_tokens * y_stride * 4);
    gpu_weight gw = {&bw, 0, GGML_TYPE_F32, n_in, n_out, (uint64_t)n_in * 4};
    begin();
    CHECK(op_matmul(g.cmd, g.k, &gw, buf_sub(&bx, (uint64_t)x_row0 * n_in * 4, (uint64_t)n_tokens * n_in * 4),
                    buf_sub(&by, (uint64_t)y_col * 4, ((uint64_t)(n_tokens - 1) * y_stride + n_out) * 4), n_tokens, n_in,
                    y_stride) == 0, "%s", vkphi_last_error());
    run();
    test_download(&g, &by, out, (size_t)n_tokens * y_stride * 4);
    double worst = 0;
    uint32_t touched = 0;
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t c = 0; c < y_stride; c++) {
            size_t i = (size_t)t * y_stride + c;
            if (c < y_col || c >= y_col + n_out) { touched += out[i] != y[i]; continue; }
            double ref = 0, mag = 0;
            for (uint32_t k = 0; k < n_in; k++) {
                double p = (double)w[(size_t)(c - y_col) * n_in + k] * x[(size_t)(x_row0 + t) * n_in + k];
                ref += p, mag += fabs(p);
            }
            double e = fabs(out[i] - ref) / (2e-6 * mag + 1e-6);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    CHECK(worst <= 1 && touched == 0, "matmul views: x from row %u, y at column %u of %u, %u tokens: error %.3g, %u "
          "values outside the window changed", x_row0, y_col, y_stride, n_tokens, worst, touched);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    free(w), free(x), free(y), free(out);
}

int main(void) {
    if (!test_gpu_open(&g)) return test_skip("no Vulkan device");
    test_seed(1);
    test_rmsnorm(1, 1);
    test_rmsnorm(3, 7);
    test_rmsnorm(2, 1000);
    test_rmsnorm(5, 5120);
    test_rmsnorm(1, 17920);

    test_rope(1, 1, 128, 128, 0, 250000.0, true, false, 1);
    test_rope(7, 4, 128, 128, 3, 250000.0, true, false, 1);
    test_rope(3, 10, 128, 128, 16000, 250000.0, true, false, 1); // Phi-4's K heads, far into the context
    test_rope(2, 40, 128, 128, 511, 250000.0, true, false, 1);   // Phi-4's Q heads
    test_rope(5, 3, 96, 32, 77, 10000.0, true, false, 1);        // partial rotary dims, another base
    // Phi-4-mini: 96 of 128 dims, LongRoPE factors and attn_factor, ragged token and head counts.
    test_rope(5, 3, 128, 96, 0, 10000.0, true, true, 1.190238);
    test_rope(3, 11, 128, 96, 130000, 10000.0, true, true, 1.190238); // near 128K
    test_rope(9, 5, 72, 14, 41, 10000.0, true, true, 0.75);
    // The llama layout: adjacent pairs (2i, 2i+1), whole and partial heads.
    test_rope(7, 5, 128, 128, 3, 250000.0, false, false, 1);
    test_rope(2, 40, 128, 128, 16383, 250000.0, false, false, 1);
    test_rope(6, 3, 96, 34, 19, 10000.0, false, true, 1.3);


    test_swiglu(1, 1);
    test_swiglu(3, 13);
    test_swiglu(2, 17920);


    uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16};
    for (int i = 0; i < 3; i++) {
        uint32_t t = types[i];
        test_matmul(t, 1, 1, 1);
        test_matmul(t, 7, 3, 1);
        test_matmul(t, 130, 33, 1);
        test_matmul(t, 130, 33, 5);
        test_matmul(t, 200, 67, 33);
        test_matmul(t, 200, 67, 8); // the few-token matrix-vector kernel
        test_matmul(t, 12, 5, 3);   // ... with rows of a length that is not a multiple of 8
        test_matmul(t, 5120, 7680, 1);   // Phi-4's attn_qkv, decode
        test_matmul(t, 17920, 96, 3);    // ffn_down's row length
    }
    test_matmul(GGML_TYPE_F16, 5120, 7680, 2); // attn_qkv, prefill
    // The tiled kernel's tile widths (16, 32, then 64 tokens on lavapipe; 64 on GPUs)
    // at ragged token counts, rows and a K that is not a multiple of its 16-deep slices.
    const uint32_t ns[] = {9, 17, 40, 64, 100};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        test_matmul(GGML_TYPE_F32, 37, 131, ns[i]);
        test_matmul(GGML_TYPE_BF16, 200, 67, ns[i]);
    }
    test_matmul_invariance(GGML_TYPE_F32, 37, 131);
    test_matmul_invariance(GGML_TYPE_F16, 200, 67);
    test_matvec_cap();
    // A matrix larger than lavapipe's 128 MiB storage-buffer range: bound in slices.
    test_matmul(GGML_TYPE_F32, 8192, 4200, 1);
    test_matmul(GGML_TYPE_F32, 8192, 4200, 2);
    // Views at offsets no device aligns to (through matvec, few-token and tiled kernels).
    test_matmul_views(64, 24, 1, 3, 37);
    test_matmul_views(64, 24, 1, 4, 5);
    test_matmul_views(96, 40, 6, 5, 3);
    test_matmul_views(96, 40, 6, 4, 8);
    test_matmul_views(128, 33, 20, 7, 11);
    test_gpu_close(&g);
    return test_finish();
}
