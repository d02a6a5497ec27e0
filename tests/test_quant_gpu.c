// SPDX-License-Identifier: MIT
// The quantized-weight kernels (matvec_q, matmul_q, and the tests' get_rows) against the CPU
// block formats of runtime/core/quant.c, for every type vkphi runs: hand-built blocks
// with known values (so that CPU and GPU cannot agree on the same mistake; for the
// codebook types, whose known answers are in test_quant, blocks through every
// entry of the grid the CPU and the shaders share), random
// matrices at ragged shapes and at Phi-4's, every workgroup tuning kernels.c may
// pick, and matrices larger than lavapipe's 128 MiB storage-buffer range.
//
// Tolerances: a matrix product output may differ from the double-precision dot of
// the dequantized weights with x by 2e-6 * sum |w x| + 1e-6 (f32 accumulation in
// any order); a looked-up row must equal quant_dequantize_row's values exactly.
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "get_rows.h"
#include "gguf.h"
#include "harness_gpu.h"
#include "ops.h"
#include "push_constants.h"
#include "quant.h"
#include "quant_iq.h"
#include "repack.h"
#include "select.h"

static test_gpu g;
static get_rows *lookup; // the row lookup, a kernel of the tests (get_rows.h)

static const uint32_t qtypes[] = {GGML_TYPE_Q8_0,    GGML_TYPE_Q4_0,   GGML_TYPE_Q3_K,    GGML_TYPE_Q4_K,
                                  GGML_TYPE_Q5_K,    GGML_TYPE_Q6_K,   GGML_TYPE_Q4_1,    GGML_TYPE_Q5_0,
                                  GGML_TYPE_Q5_1,    GGML_TYPE_Q2_K,   GGML_TYPE_IQ4_NL,  GGML_TYPE_IQ4_XS,
                                  GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S,  GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS,
                                  GGML_TYPE_IQ2_S,   GGML_TYPE_IQ1_S,  GGML_TYPE_IQ1_M};
static const uint32_t all_types[] = {GGML_TYPE_F32,     GGML_TYPE_F16,    GGML_TYPE_BF16,    GGML_TYPE_Q8_0,
                                     GGML_TYPE_Q4_0,    GGML_TYPE_Q3_K,   GGML_TYPE_Q4_K,    GGML_TYPE_Q5_K,
                                     GGML_TYPE_Q6_K,    GGML_TYPE_Q4_1,   GGML_TYPE_Q5_0,    GGML_TYPE_Q5_1,
                                     GGML_TYPE_Q2_K,    GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS,  GGML_TYPE_IQ3_XXS,
                                     GGML_TYPE_IQ3_S,   GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS, GGML_TYPE_IQ2_S,
                                     GGML_TYPE_IQ1_S,   GGML_TYPE_IQ1_M};
// The codebook types, which vkphi reads but does not quantize to.
static const uint32_t iq_types[] = {GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS,
                                    GGML_TYPE_IQ2_S,   GGML_TYPE_IQ1_S, GGML_TYPE_IQ1_M};
#define N_IQTYPES (sizeof iq_types / sizeof iq_types[0])
#define N_QTYPES (sizeof qtypes / sizeof qtypes[0])
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static void run(void) {
    if (cmd_submit(g.cmd, true) != VKPHI_OK) {
        fprintf(stderr, "submit: %s\n", vkphi_last_error());
        abort();
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory (%zu bytes)\n", n); abort(); }
    return p;
}

// ---- host matrices ----

// n_out rows of n_in values of `type`, as the GGUF file stores them.
typedef struct qmat {
    uint32_t type, n_in, n_out;
    uint64_t row_bytes;
    uint8_t *data;
} qmat;

static qmat mat_alloc(uint32_t type, uint32_t n_in, uint32_t n_out) {
    qmat m = {type, n_in, n_out, quant_row_bytes(type, n_in), NULL};
    m.data = xmalloc(m.row_bytes * n_out);
    return m;
}

// Standard deviation of mat_quantized's weights: 1, or a real model's 0.02, whose
// f16 block scales are often subnormal halves.
static float mat_sigma = 1.0f;
static qmat mat_random(uint32_t type, uint32_t n_in, uint32_t n_out);

// Random normal weights (a few rows scaled up, as real matrices have outliers)
// through the CPU quantizer; random blocks for the codebook types, which have
// none (every bit pattern of theirs is a valid block).
static qmat mat_quantized(uint32_t type, uint32_t n_in, uint32_t n_out) {
    if (quant_iq_type(type)) return mat_random(type, n_in, n_out);
    qmat m = mat_alloc(type, n_in, n_out);
    float *row = xmalloc((size_t)n_in * 4);
    for (uint32_t r = 0; r < n_out; r++) {
        float scale = (r % 5 == 3 ? 8.0f : 1.0f) * mat_sigma;
        for (uint32_t i = 0; i < n_in; i++) row[i] = test_rand_normal() * scale;
        if (quant_quantize_row(type, row, m.data + r * m.row_bytes, n_in, NULL)) {
            fprintf(stderr, "quantize: %s\n", vkphi_last_error());
            abort();
        }
    }
    free(row);
    return m;
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = vkphi_f32_to_f16(v);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

// Random blocks: every bit random but the f16 scales, which get finite values
// of either sign (dmin positive). Fast for big matrices, and it reaches bit
// patterns the quantizer rarely writes (extreme 6-bit scales, negative Q6_K
// scales, every Q3_K level).
static qmat mat_random(uint32_t type, uint32_t n_in, uint32_t n_out) {
    qmat m = mat_alloc(type, n_in, n_out);
    uint64_t bytes = m.row_bytes * n_out;
    if (type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) {
        uint64_t n = (uint64_t)n_in * n_out;
        for (uint64_t i = 0; i < n; i++) {
            float v = test_rand_normal();
            if (type == GGML_TYPE_F32) memcpy(m.data + 4 * i, &v, 4);
            else {
                uint16_t h = type == GGML_TYPE_F16 ? vkphi_f32_to_f16(v) : vkphi_f32_to_bf16(v);
                m.data[2 * i] = (uint8_t)h, m.data[2 * i + 1] = (uint8_t)(h >> 8);
            }
        }
        return m;
    }
    for (uint64_t i = 0; i + 4 <= bytes; i += 4) {
        uint32_t r = test_rand_u32();
        memcpy(m.data + i, &r, 4);
    }
    for (uint64_t i = bytes & ~3ull; i < bytes; i++) m.data[i] = (uint8_t)test_rand_u32();
    uint32_t bb = quant_block_bytes(type);
    for (uint64_t b = 0; b < bytes / bb; b++) {
        uint8_t *blk = m.data + b * bb;
        float d = test_rand_uniform(0.5f, 1.0f) / 128 * (test_rand_u32() & 1 ? -1.0f : 1.0f);
        switch (type) {
        case GGML_TYPE_Q8_0:
        case GGML_TYPE_Q4_0:
        case GGML_TYPE_Q5_0:
        case GGML_TYPE_IQ4_NL:
        case GGML_TYPE_IQ4_XS: put_f16(blk, d); break;
        case GGML_TYPE_Q4_1:
        case GGML_TYPE_Q5_1:
            put_f16(blk, d);
            put_f16(blk + 2, test_rand_uniform(-1.0f, 1.0f) / 8);
            break;
        case GGML_TYPE_Q2_K:
            put_f16(blk + 80, d);
            put_f16(blk + 82, test_rand_uniform(0.0f, 1.0f) / 64);
            break;
        case GGML_TYPE_Q4_K:
        case GGML_TYPE_Q5_K:
            put_f16(blk, d);
            put_f16(blk + 2, test_rand_uniform(0.0f, 1.0f) / 64);
            break;
        case GGML_TYPE_Q6_K: put_f16(blk + 208, d); break;
        case GGML_TYPE_Q3_K: put_f16(blk + 108, d); break;
        case GGML_TYPE_IQ1_M: { // d is the top nibbles of the four scale words
            uint16_t h = vkphi_f32_to_f16(d);
            for (int k = 0; k < 4; k++) blk[49 + 2 * k] = (uint8_t)((blk[49 + 2 * k] & 0x0f) | ((h >> 4 * k) & 15) << 4);
            break;
        }
        default: put_f16(blk, d); break; // the other codebook types: d first
        }
    }
    return m;
}

static void mat_row(const qmat *m, uint32_t r, float *out) {
    if (quant_dequantize_row(m->type, m->data + r * m->row_bytes, out, m->n_in)) {
        fprintf(stderr, "dequantize: %s\n", vkphi_last_error());
        abort();
    }
}

static float *rand_vec(size_t n) {
    float *v = xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) v[i] = test_rand_normal();
    return v;
}

// ---- matrix products ----

// The profile's label of the kernel op_matmul takes n_tokens aligned rows of this
// type to (kernels_choose_matmul).
static const char *path_label(uint32_t type, uint32_t n_tokens) {
    matmul_choice ch;
    return kernels_choose_matmul(g.k, type, n_tokens, true, true, &ch) ? "none" : ch.label;
}

// The kernel policy the kernels were made with (from the environment), and changes
// of it as VKPHI_COOPMAT (0, 1 or f32) and VKPHI_F16MATH (0 or 1) would make.
static kernel_policy policy0;
static void set_coopmat(const char *v) {
    kernel_policy p = *kernels_policy(g.k);
    p.coopmat = v ? strcmp(v, "0") != 0 : policy0.coopmat;
    p.coopmat_f32 = v ? strcmp(v, "f32") == 0 : policy0.coopmat_f32;
    kernels_set_policy(g.k, &p);
}
static void set_f16math(const char *v) {
    kernel_policy p = *kernels_policy(g.k);
    p.f16math = v ? strcmp(v, "1") == 0 : policy0.f16math;
    kernels_set_policy(g.k, &p);
}

// True when op_matmul takes n_tokens of this type to the cooperative-matrix kernel.
static bool coop_path(uint32_t type, uint32_t n_tokens) { return strstr(path_label(type, n_tokens), "coopmat") != NULL; }

// True when op_matmul takes n_tokens of this type to the tiles in packed f16 arithmetic.
static bool half_path(uint32_t type, uint32_t n_tokens) {
    const char *l = path_label(type, n_tokens);
    return strlen(l) > 4 && strcmp(l + strlen(l) - 4, " f16") == 0;
}

// Worst error of y (n_tokens rows of n_out) as a fraction of the tolerance:
// 2e-6 * sum |w x| + 1e-6 (f32 accumulation in any order); on cooperative matrices
// 1e-3 * sum |w x| + 1e-3, for weights and activations rounded to f16 (relative
// 2^-11 each; values under 2^-14 may flush); on the packed-f16 tiles 3e-3 * sum |w x|
// + 1e-3, as those and each product rounded (2^-11) and summed in f16 over
// MATMUL_H_CHUNK values of k (3 more roundings of at most 2^-11 of the chunk's sum
// of |w x|): 6 * 2^-11 = 2.9e-3.
static double product_error(const qmat *m, const float *x, const float *y, uint32_t n_tokens) {
    float *w = xmalloc((size_t)m->n_in * 4);
    double rel = coop_path(m->type, n_tokens) ? 1e-3 : half_path(m->type, n_tokens) ? 3e-3 : 2e-6;
    double worst = 0, abs_tol = rel == 2e-6 ? 1e-6 : 1e-3;
    for (uint32_t r = 0; r < m->n_out; r++) {
        mat_row(m, r, w);
        for (uint32_t t = 0; t < n_tokens; t++) {
            const float *xt = x + (size_t)t * m->n_in;
            double dot = 0, mag = 0;
            for (uint32_t k = 0; k < m->n_in; k++) {
                double p = (double)w[k] * xt[k];
                dot += p;
                mag += fabs(p);
            }
            double e = fabs(y[(size_t)t * m->n_out + r] - dot) / (rel * mag + abs_tol);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    }
    free(w);
    return worst;
}

// Bytes of one row in the device layout (runtime/core/repack.h), as the load makes it.
static uint64_t dev_row_bytes(const qmat *m) { return repack_row_bytes(m->type, m->n_in); }

// The matrix in the device layout, uploaded as the model's load does it.
static gpu_buffer upload_mat(const qmat *m) {
    uint64_t bytes = dev_row_bytes(m) * m->n_out;
    uint8_t *dev = xmalloc(bytes);
    repack_rows(m->type, m->data, dev, m->n_in, m->n_out);
    gpu_buffer b = test_upload(&g, dev, bytes);
    free(dev);
    return b;
}

static gpu_weight weight_of(const qmat *m, const gpu_buffer *b) {
    return (gpu_weight){b, 0, m->type, m->n_in, m->n_out, dev_row_bytes(m)};
}

// y = W x through op_matmul (matvec for one token, matmul for more); returns the
// seconds of the fastest of `reps` runs.
static double gpu_product(const qmat *m, const gpu_buffer *bw, const float *x, float *y, uint32_t n_tokens, int reps) {
    gpu_buffer bx = test_upload(&g, x, (uint64_t)n_tokens * m->n_in * 4);
    gpu_buffer by = test_upload(&g, NULL, (uint64_t)n_tokens * m->n_out * 4);
    gpu_weight w = weight_of(m, bw);
    double best = INFINITY;
    for (int i = 0; i < reps; i++) {
        cmd_begin(g.cmd);
        double t0 = vkphi_now();
        CHECK(op_matmul(g.cmd, g.k, &w, buf_all(&bx), buf_all(&by), n_tokens, m->n_in, m->n_out) == 0, "%s",
              vkphi_last_error());
        run();
        double t = vkphi_now() - t0;
        best = t < best ? t : best;
    }
    test_download(&g, &by, y, (uint64_t)n_tokens * m->n_out * 4);
    buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    return best;
}

static void check_product(const qmat *m, uint32_t n_tokens, const char *what) {
    float *x = rand_vec((size_t)n_tokens * m->n_in), *y = xmalloc((size_t)n_tokens * m->n_out * 4);
    gpu_buffer bw = upload_mat(m);
    gpu_product(m, &bw, x, y, n_tokens, 1);
    double e = product_error(m, x, y, n_tokens);
    CHECK(e <= 1, "%s %s: %u x %u times %u tokens (%s): error %.3g of tolerance", what, quant_type_name(m->type),
          m->n_out, m->n_in, n_tokens, path_label(m->type, n_tokens), e);
    buffer_destroy(g.dev, &bw);
    free(x), free(y);
}

// The fused matrix-vector forms (op_matvec_norm): y = W (RMSNorm(x) * nw), and with
// glu, over [G; U], y = SiLU(G xn) * (U xn); against double-precision sums.
static void check_fused(const qmat *m, uint32_t n_tokens, bool glu) {
    // Token rows on 16-byte boundaries, as the fused kernels need (ragged K: padded).
    const uint32_t K = m->n_in, S = (K + 3) & ~3u, n_y = glu ? m->n_out / 2 : m->n_out;
    const float eps = 1e-5f;
    float *x = rand_vec((size_t)n_tokens * S), *nw = rand_vec(K), *y = xmalloc((size_t)n_tokens * n_y * 4);
    for (uint32_t t = 0; t < n_tokens; t++) x[(size_t)t * S] += 4.0f * t; // tokens of different scale
    gpu_buffer bw = upload_mat(m), bx = test_upload(&g, x, (uint64_t)n_tokens * S * 4), bn = test_upload(&g, nw, K * 4);
    gpu_buffer by = test_upload(&g, NULL, (uint64_t)n_tokens * n_y * 4);
    gpu_weight w = weight_of(m, &bw);
    cmd_begin(g.cmd);
    CHECK(op_matvec_norm(g.cmd, g.k, &w, buf_all(&bx), buf_all(&bn), buf_all(&by), n_tokens, S, n_y, eps, glu) == 0, "%s",
          vkphi_last_error());
    run();
    test_download(&g, &by, y, (uint64_t)n_tokens * n_y * 4);
    double *dot = xmalloc(sizeof(double) * m->n_out), *mag = xmalloc(sizeof(double) * m->n_out), worst = 0;
    float *row = xmalloc((size_t)K * 4);
    for (uint32_t t = 0; t < n_tokens; t++) {
        const float *xt = x + (size_t)t * S;
        double ss = 0;
        for (uint32_t k = 0; k < K; k++) ss += (double)xt[k] * xt[k];
        double inv = 1.0 / sqrt(ss / K + eps);
        for (uint32_t r = 0; r < m->n_out; r++) {
            mat_row(m, r, row);
            dot[r] = mag[r] = 0;
            for (uint32_t k = 0; k < K; k++) {
                double p = (double)row[k] * xt[k] * inv * nw[k];
                dot[r] += p;
                mag[r] += fabs(p);
            }
        }
        for (uint32_t r = 0; r < n_y; r++) {
            double want = dot[r], tol = 4e-6 * mag[r] + 1e-6;
            if (glu) {
                double gv = dot[r], u = dot[n_y + r], sg = 1.0 / (1.0 + exp(-gv));
                want = gv * sg * u;
                tol = 4e-6 * (mag[r] * (fabs(u) + 1) + mag[n_y + r] * (fabs(gv * sg) + 1)) + 1e-6;
            }
            double e = fabs(y[(size_t)t * n_y + r] - want) / tol;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    }
    CHECK(worst <= 1, "fused %s %s: %u x %u times %u tokens: error %.3g of tolerance", glu ? "RMSNorm+SwiGLU" : "RMSNorm",
          quant_type_name(m->type), m->n_out, K, n_tokens, worst);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &bn), buffer_destroy(g.dev, &by);
    free(x), free(nw), free(y), free(dot), free(mag), free(row);
}

// A token's result does not depend on the other tokens of the dispatch (batch
// invariance): token 0 of a batch of n equals token 0 alone, bit for bit.
static void check_invariance(const qmat *m, bool fused, bool wide) {
    const uint32_t K = m->n_in, N = 20;
    float *x = rand_vec((size_t)N * K), *nw = rand_vec(K), *y1 = xmalloc((size_t)N * m->n_out * 4);
    float *yn = xmalloc((size_t)N * m->n_out * 4);
    gpu_buffer bw = upload_mat(m), bx = test_upload(&g, x, (uint64_t)N * K * 4), bn = test_upload(&g, nw, K * 4);
    gpu_buffer by = test_upload(&g, NULL, (uint64_t)N * m->n_out * 4);
    gpu_weight w = weight_of(m, &bw);
    const uint32_t sizes[] = {1, 3, KERNEL_FEW_TOKENS, N};
    for (int i = 0; i < (wide ? 4 : 2); i++) {
        uint32_t n = sizes[i];
        if (!fused && n > KERNEL_FEW_TOKENS) break; // op_matmul takes the tiled kernel there
        cmd_begin(g.cmd);
        int rc = fused ? op_matvec_norm(g.cmd, g.k, &w, buf_all(&bx), buf_all(&bn), buf_all(&by), n, K, m->n_out, 1e-5f, false)
                       : op_matmul(g.cmd, g.k, &w, buf_all(&bx), buf_all(&by), n, K, m->n_out);
        CHECK(rc == 0, "%s", vkphi_last_error());
        run();
        test_download(&g, &by, i == 0 ? y1 : yn, (uint64_t)n * m->n_out * 4);
        if (i > 0)
            CHECK(!memcmp(y1, yn, (size_t)m->n_out * 4), "%s %s: token 0 of %u differs from token 0 alone",
                  fused ? "fused matvec" : "matvec", quant_type_name(m->type), n);
    }
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &bn), buffer_destroy(g.dev, &by);
    free(x), free(nw), free(y1), free(yn);
}

// ---- cooperative matrices ----
// Every type that op_matmul takes to the cooperative-matrix kernel, at ragged shapes:
// rows and tokens that end mid-matrix and mid-tile, K of one block or several (float
// types: any length), against the CPU; F32 weights under VKPHI_COOPMAT=f32. Skipped
// (said so) where the device has no usable shape (Debian 12's lavapipe); Mesa 26's
// lavapipe runs it. Then VKPHI_COOPMAT=0 must select the other path, and give the
// exact f32 result.
static void test_coopmat(void) {
    const device_info *info = device_get_info(g.dev);
    set_coopmat("1"); // as VKPHI_COOPMAT=1: also where the device policy keeps them off (CPU drivers)
    if (!coop_path(GGML_TYPE_Q4_K, 33)) {
        printf("cooperative-matrix kernels: skipped (%s has no shape they can use)\n", info->name);
        set_coopmat(NULL);
        return;
    }
    printf("cooperative-matrix kernels at %ux%ux%u on %s\n", info->coopmat_m, info->coopmat_n, info->coopmat_k, info->name);
    CHECK(!coop_path(GGML_TYPE_F32, 33), "F32 weights keep the f32 tiles");
    for (size_t i = 1; i < N_TYPES; i++) { // every type but F32
        uint32_t t = all_types[i], qk = quant_block_elems(t);
        CHECK(coop_path(t, 33) && coop_path(t, KERNEL_FEW_TOKENS + 1) && !coop_path(t, KERNEL_FEW_TOKENS) &&
                  !coop_path(t, 1),
              "%s: many tokens on cooperative matrices, a few on the matrix-vector kernels", quant_type_name(t));
        uint32_t one = qk > 1 ? qk : 37, several = qk > 1 ? 3 * qk : 200;
        qmat a = mat_random(t, one, 67), b = mat_random(t, several, 5), c = mat_random(t, several, 130);
        check_product(&a, 33, "coopmat");
        check_product(&b, KERNEL_FEW_TOKENS + 1, "coopmat");
        check_product(&c, 70, "coopmat");
        free(a.data), free(b.data), free(c.data);
    }
    set_coopmat("f32"); // F32 weights too
    CHECK(coop_path(GGML_TYPE_F32, 33), "VKPHI_COOPMAT=f32 takes F32 weights to cooperative matrices");
    qmat f = mat_random(GGML_TYPE_F32, 37, 67), f2 = mat_random(GGML_TYPE_F32, 200, 130);
    check_product(&f, 33, "coopmat");
    check_product(&f2, 70, "coopmat");
    free(f.data), free(f2.data);
    set_coopmat("0");
    CHECK(!coop_path(GGML_TYPE_Q4_K, 33) && strcmp(path_label(GGML_TYPE_Q4_K, 33), "matmul Q4_K") == 0,
          "VKPHI_COOPMAT=0 selects the tiled kernel (label %s)", path_label(GGML_TYPE_Q4_K, 33));
    qmat m = mat_random(GGML_TYPE_Q4_K, 256 * 3, 67);
    check_product(&m, 33, "VKPHI_COOPMAT=0"); // now at the f32 tolerance
    free(m.data);
    set_coopmat(NULL);
}

// ---- row lookup ----

// Looks up ids through get_rows_record into rows of `stride` floats; checks every
// looked-up row equals the CPU dequantization exactly and that the padding
// between rows is untouched. host_ids: pass the host copy or not.
static void check_get_rows(const qmat *m, const int32_t *ids, uint32_t n_tokens, bool host_ids, const char *what) {
    uint32_t stride = m->n_in + 3;
    size_t n_out = (size_t)n_tokens * stride;
    float *out = xmalloc(n_out * 4), *ref = xmalloc((size_t)m->n_in * 4);
    for (size_t i = 0; i < n_out; i++) out[i] = -12345.0f;
    gpu_buffer bw = upload_mat(m), bi = test_upload(&g, ids, (uint64_t)n_tokens * 4), bo = test_upload(&g, out, n_out * 4);
    gpu_weight w = weight_of(m, &bw);
    cmd_begin(g.cmd);
    CHECK(get_rows_record(lookup, g.cmd, &w, buf_all(&bi), host_ids ? ids : NULL, buf_all(&bo), n_tokens, stride) == 0,
          "%s", vkphi_last_error());
    run();
    test_download(&g, &bo, out, n_out * 4);
    uint32_t bad = 0, first = 0;
    for (uint32_t t = 0; t < n_tokens; t++) {
        mat_row(m, (uint32_t)ids[t], ref);
        for (uint32_t i = 0; i < stride; i++) {
            float want = i < m->n_in ? ref[i] : -12345.0f;
            if (!(out[(size_t)t * stride + i] == want)) {
                if (!bad) first = t * stride + i;
                bad++;
            }
        }
    }
    CHECK(bad == 0, "%s get_rows %s: %u x %u, %u tokens: %u values differ from the CPU dequantization (first at %u: %g)",
          what, quant_type_name(m->type), m->n_out, m->n_in, n_tokens, bad, first, bad ? out[first] : 0.0);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bi), buffer_destroy(g.dev, &bo);
    free(out), free(ref);
}

static int32_t *rand_ids(uint32_t n, uint32_t n_rows) {
    int32_t *ids = xmalloc((size_t)n * 4);
    for (uint32_t i = 0; i < n; i++) ids[i] = (int32_t)(test_rand_u32() % n_rows);
    if (n > 2) ids[0] = 0, ids[1] = (int32_t)n_rows - 1, ids[2] = ids[1]; // both ends, and a repeat
    return ids;
}

// ---- known-answer blocks ----
// Each block is packed here from the layout description in runtime/core/quant.h (not
// with quant.c's code), from chosen levels and scales whose values are exact in
// f32; both the CPU and the GPU must give exactly these.

static void set_nibble(uint8_t *b, uint32_t byte, bool high, uint32_t v) {
    b[byte] = high ? (uint8_t)((b[byte] & 0x0f) | v << 4) : (uint8_t)((b[byte] & 0xf0) | v);
}

// Fills block (one row of n values of `type`) and want[n]; returns the count.
static uint32_t known_block(uint32_t type, uint8_t *b, float *want) {
    memset(b, 0, 256);
    switch (type) {
    case GGML_TYPE_F32: {
        const float v[] = {1.0f, -2.5f, 3.0e-39f /* subnormal */, 65504.0f, -0.0f, 1e30f, 0.1f};
        memcpy(b, v, sizeof v);
        memcpy(want, v, sizeof v);
        return 7;
    }
    case GGML_TYPE_F16: {
        const uint16_t h[] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x3555};
        const float v[] = {1.0f, -2.0f, 0.5f, 65504.0f, 5.9604644775390625e-08f, -0.0f, 0.333251953125f};
        for (int i = 0; i < 7; i++) b[2 * i] = (uint8_t)h[i], b[2 * i + 1] = (uint8_t)(h[i] >> 8);
        memcpy(want, v, sizeof v);
        return 7;
    }
    case GGML_TYPE_BF16: {
        const uint16_t h[] = {0x3f80, 0xc040, 0x4049, 0x7f7f, 0x8000, 0x3e80, 0xbf00};
        const float v[] = {1.0f, -3.0f, 3.140625f, 3.3895313892515355e38f, -0.0f, 0.25f, -0.5f};
        for (int i = 0; i < 7; i++) b[2 * i] = (uint8_t)h[i], b[2 * i + 1] = (uint8_t)(h[i] >> 8);
        memcpy(want, v, sizeof v);
        return 7;
    }
    case GGML_TYPE_Q8_0: // d = 0.25, q_e = 7e - 100
        b[0] = 0x00, b[1] = 0x34;
        for (int e = 0; e < 32; e++) {
            b[2 + e] = (uint8_t)(int8_t)(7 * e - 100);
            want[e] = 0.25f * (float)(7 * e - 100);
        }
        return 32;
    case GGML_TYPE_Q4_0: // d = 0.5; byte j: low nibble j (value j), high 15 - j (value 16 + j)
        b[0] = 0x00, b[1] = 0x38;
        for (int j = 0; j < 16; j++) {
            b[2 + j] = (uint8_t)(j | (15 - j) << 4);
            want[j] = 0.5f * (float)(j - 8);
            want[16 + j] = 0.5f * (float)(7 - j);
        }
        return 32;
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: { // d = 0.5, dmin = 0.25; sub-block j: scale 1 + 8j, min 63 - 7j
        bool five = type == GGML_TYPE_Q5_K;
        b[0] = 0x00, b[1] = 0x38, b[2] = 0x00, b[3] = 0x34;
        uint8_t *s = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
        for (int j = 0; j < 8; j++) {
            int sc = 1 + 8 * j, mn = 63 - 7 * j;
            if (j < 4) {
                s[j] |= (uint8_t)sc, s[j + 4] |= (uint8_t)mn;
            } else { // low 4 bits in byte j+4, top 2 bits in the top of bytes j-4 and j
                s[j + 4] = (uint8_t)((sc & 15) | (mn & 15) << 4);
                s[j - 4] |= (uint8_t)((sc >> 4) << 6);
                s[j] |= (uint8_t)((mn >> 4) << 6);
            }
        }
        for (int e = 0; e < 256; e++) {
            int q = five ? (11 * e + 5) % 32 : (7 * e + 3) % 16, j = e / 32, c = e / 64, half = e % 64 / 32;
            set_nibble(qs, (uint32_t)(32 * c + e % 32), half, (uint32_t)(q & 15));
            if (five && q >= 16) qh[e % 32] |= (uint8_t)(1 << (2 * c + half));
            want[e] = 0.5f * (float)(1 + 8 * j) * (float)q - 0.25f * (float)(63 - 7 * j);
        }
        return 256;
    }
    case GGML_TYPE_Q6_K: { // d = 0.125; scale k = (13k mod 41) - 20; q_e = 5e + 1 mod 64
        b[208] = 0x00, b[209] = 0x30;
        for (int k = 0; k < 16; k++) b[192 + k] = (uint8_t)(int8_t)(13 * k % 41 - 20);
        for (int e = 0; e < 256; e++) {
            int q = (5 * e + 1) % 64, H = e / 128, Q = e % 128 / 32, l = e % 32;
            set_nibble(b, (uint32_t)(64 * H + 32 * (Q & 1) + l), Q >= 2, (uint32_t)(q & 15));
            b[128 + 32 * H + l] |= (uint8_t)((q >> 4) << (2 * Q));
            int k = 8 * H + l / 16 + 2 * Q;
            want[e] = 0.125f * (float)(13 * k % 41 - 20) * (float)(q - 32);
        }
        return 256;
    }
    case GGML_TYPE_Q3_K: { // d = 0.5; scale k = (17k + 5 mod 64) - 32; q_e = 3e + 1 mod 8
        b[108] = 0x00, b[109] = 0x38;
        for (int k = 0; k < 16; k++) {
            int s = (17 * k + 5) % 64;
            set_nibble(b + 96, (uint32_t)(k % 8), k >= 8, (uint32_t)(s & 15));
            b[104 + k % 4] |= (uint8_t)((s >> 4) << (2 * (k / 4)));
        }
        for (int e = 0; e < 256; e++) {
            int q = (3 * e + 1) % 8, h = e / 128, j = e % 128 / 32, l = e % 32;
            b[32 + 32 * h + l] |= (uint8_t)((q & 3) << (2 * j));
            if (q & 4) b[l] |= (uint8_t)(1 << (4 * h + j));
            int k = 8 * h + 2 * j + l / 16;
            want[e] = 0.5f * (float)((17 * k + 5) % 64 - 32) * (float)(q - 4);
        }
        return 256;
    }
    case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1: { // d = 0.5 (m = -4 for Q4_1, Q5_1); q_j = 7j + 3 mod 16 or 32
        bool five = type != GGML_TYPE_Q4_1, min = type != GGML_TYPE_Q5_0;
        uint32_t qs = type == GGML_TYPE_Q4_1 ? 4 : type == GGML_TYPE_Q5_0 ? 6 : 8, qh = qs - 4;
        b[0] = 0x00, b[1] = 0x38;
        if (min) b[2] = 0x00, b[3] = 0xc4;
        for (int e = 0; e < 32; e++) {
            int q = five ? (7 * e + 3) % 32 : (7 * e + 3) % 16;
            set_nibble(b, qs + (uint32_t)(e % 16), e >= 16, (uint32_t)(q & 15));
            if (q >= 16) b[qh + e / 8] |= (uint8_t)(1 << (e % 8));
            want[e] = min ? 0.5f * (float)q - 4.0f : 0.5f * (float)(q - 16);
        }
        return 32;
    }
    case GGML_TYPE_Q2_K: { // d = 0.5, dmin = 0.25; sub-block k: scale 15 - k, min 3k mod 16; q_e = 3e + e/64 mod 4
        b[80] = 0x00, b[81] = 0x38, b[82] = 0x00, b[83] = 0x34;
        for (int k = 0; k < 16; k++) b[k] = (uint8_t)((15 - k) | (3 * k % 16) << 4);
        for (int e = 0; e < 256; e++) {
            int q = (3 * e + e / 64) % 4, h = e / 128, j = e % 128 / 32, l = e % 32, k = e / 16;
            b[16 + 32 * h + l] |= (uint8_t)(q << (2 * j));
            want[e] = 0.5f * (float)(15 - k) * (float)q - 0.25f * (float)(3 * k % 16);
        }
        return 256;
    }
    case GGML_TYPE_IQ4_NL:
    case GGML_TYPE_IQ4_XS: { // d = 0.25; IQ4_XS sub-block ib: scale 9ib + 5 mod 64; q_e = 5e + e/32 mod 16
        static const int lv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
        bool xs = type == GGML_TYPE_IQ4_XS;
        uint32_t n = xs ? 256 : 32, qs = xs ? 8 : 2;
        b[0] = 0x00, b[1] = 0x34;
        for (int ib = 0; xs && ib < 8; ib++) {
            int s = (9 * ib + 5) % 64;
            set_nibble(b + 4, (uint32_t)(ib / 2), ib % 2, (uint32_t)(s & 15));
            b[2 + ib / 4] |= (uint8_t)((s >> 4) << (2 * (ib % 4)));
        }
        for (uint32_t e = 0; e < n; e++) {
            int q = (int)(5 * e + e / 32) % 16, ib = (int)e / 32;
            set_nibble(b, qs + 16 * (uint32_t)ib + e % 16, e % 32 >= 16, (uint32_t)q);
            want[e] = 0.25f * (float)(xs ? (9 * ib + 5) % 64 - 32 : 1) * (float)lv[q];
        }
        return n;
    }
    }
    return 0;
}

static void test_known_block(uint32_t type) {
    uint8_t blk[256];
    float want[256], cpu[256];
    uint32_t n = known_block(type, blk, want);
    uint64_t rb = quant_row_bytes(type, n);
    CHECK(quant_dequantize_row(type, blk, cpu, n) == 0 && memcmp(cpu, want, n * 4) == 0,
          "quant_dequantize_row of the known %s block differs from its hand-computed values", quant_type_name(type));
    // A table of 3 rows: a random one, the known block, another random one.
    qmat m = mat_random(type, n, 3);
    memcpy(m.data + rb, blk, rb);
    int32_t ids[] = {1, 0, 2, 1};
    float out[4 * 256];
    gpu_buffer bw = upload_mat(&m), bi = test_upload(&g, ids, sizeof ids), bo = test_upload(&g, NULL, sizeof out);
    gpu_weight w = weight_of(&m, &bw);
    cmd_begin(g.cmd);
    CHECK(get_rows_record(lookup, g.cmd, &w, buf_all(&bi), ids, buf_all(&bo), 4, n) == 0, "%s", vkphi_last_error());
    run();
    test_download(&g, &bo, out, 4 * n * 4);
    CHECK(memcmp(out, want, n * 4) == 0 && memcmp(out + 3 * n, want, n * 4) == 0,
          "GPU lookup of the known %s block differs from its hand-computed values", quant_type_name(type));
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bi), buffer_destroy(g.dev, &bo);
    free(m.data);
}

// ---- subnormal block scales ----
// Real weights (sigma 0.01 to 0.04) quantize to f16 block scales below 2^-14:
// subnormal halves, which a driver may flush to zero when a shader converts them
// with unpackHalf2x16. The kernels decode them by integer arithmetic; these blocks
// and matrices hold them, and must come out exactly as on the CPU.

// Byte offsets of the f16 scales (d, and dmin where there is one) in a block.
static uint32_t f16_scale_offsets(uint32_t type, uint32_t *off) {
    switch (type) {
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_IQ4_NL: case GGML_TYPE_IQ4_XS:
        off[0] = 0; return 1;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: off[0] = 0, off[1] = 2; return 2;
    case GGML_TYPE_Q2_K: off[0] = 80, off[1] = 82; return 2;
    case GGML_TYPE_Q6_K: off[0] = 208; return 1;
    case GGML_TYPE_Q3_K: off[0] = 108; return 1;
    default: return 0;
    }
}

static bool f16_subnormal(const uint8_t *p) { uint16_t h = (uint16_t)(p[0] | p[1] << 8); return (h & 0x7c00) == 0 && (h & 0x3ff); }

// The known block with every f16 scale times 2^-17 (subnormal halves, exact), so
// every value is the known one times 2^-17.
static void test_subnormal_block(uint32_t type) {
    uint8_t blk[256];
    float want[256], cpu[256], out[2 * 256];
    uint32_t off[2], n_off = f16_scale_offsets(type, off), n = known_block(type, blk, want);
    CHECK(n_off > 0 && n > 0, "no known %s block with its scales' offsets", quant_type_name(type));
    if (n_off == 0 || n == 0) return;
    for (uint32_t i = 0; i < n_off; i++) {
        uint8_t *p = blk + off[i];
        put_f16(p, vkphi_f16_to_f32((uint16_t)(p[0] | p[1] << 8)) * 0x1p-17f);
        CHECK(f16_subnormal(p), "%s: scale %u is not subnormal", quant_type_name(type), i);
    }
    for (uint32_t e = 0; e < n; e++) want[e] *= 0x1p-17f;
    CHECK(quant_dequantize_row(type, blk, cpu, n) == 0 && memcmp(cpu, want, n * 4) == 0,
          "CPU: the %s block with subnormal scales", quant_type_name(type));
    qmat m = mat_alloc(type, n, 2);
    memcpy(m.data, blk, m.row_bytes), memcpy(m.data + m.row_bytes, blk, m.row_bytes);
    int32_t ids[] = {1, 0};
    gpu_buffer bw = upload_mat(&m), bi = test_upload(&g, ids, sizeof ids), bo = test_upload(&g, NULL, sizeof out);
    gpu_weight w = weight_of(&m, &bw);
    cmd_begin(g.cmd);
    CHECK(get_rows_record(lookup, g.cmd, &w, buf_all(&bi), ids, buf_all(&bo), 2, n) == 0, "%s", vkphi_last_error());
    run();
    test_download(&g, &bo, out, 2 * n * 4);
    CHECK(memcmp(out, want, n * 4) == 0 && memcmp(out + n, want, n * 4) == 0,
          "GPU lookup of the %s block with subnormal scales differs (flushed?)", quant_type_name(type));
    check_product(&m, 1, "subnormal scales");
    check_product(&m, 3, "subnormal scales");
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bi), buffer_destroy(g.dev, &bo);
    free(m.data);
}

// Every type, the codebook ones included: random blocks whose every f16 block
// scale (d, and dmin / m) is a subnormal half, from the smallest (2^-24) up. The
// load turns them into f32 (runtime/core/repack.c); the GPU's values must be the CPU's
// exactly, and its products within the tolerance.
static void test_subnormal_random(uint32_t type) {
    qmat m = mat_random(type, quant_block_elems(type) * 9, 5);
    uint32_t off[2], n_off = f16_scale_offsets(type, off), bb = quant_block_bytes(type), subnormal = 0;
    if (quant_iq_type(type)) off[0] = 0, n_off = 1; // d first (IQ1_M: below)
    for (uint64_t b = 0; b < m.row_bytes * m.n_out / bb; b++) {
        uint8_t *blk = m.data + b * bb;
        uint16_t h = (uint16_t)(b % 7 == 0 ? 1 : 1 + test_rand_u32() % 1023) | (test_rand_u32() & 1 ? 0x8000 : 0);
        if (type == GGML_TYPE_IQ1_M) {
            for (int k = 0; k < 4; k++) blk[49 + 2 * k] = (uint8_t)((blk[49 + 2 * k] & 0x0f) | ((h >> 4 * k) & 15) << 4);
            subnormal++;
            continue;
        }
        for (uint32_t i = 0; i < n_off; i++) {
            uint16_t hi = i == 1 && type != GGML_TYPE_Q4_1 && type != GGML_TYPE_Q5_1 ? h & 0x7fff : h; // dmin >= 0
            blk[off[i]] = (uint8_t)hi, blk[off[i] + 1] = (uint8_t)(hi >> 8);
            subnormal += f16_subnormal(blk + off[i]);
        }
    }
    CHECK(subnormal == m.row_bytes * m.n_out / bb * (type == GGML_TYPE_IQ1_M ? 1 : n_off), "%s: every scale subnormal",
          quant_type_name(type));
    int32_t ids[] = {4, 0, 2, 3, 1};
    check_get_rows(&m, ids, 5, true, "subnormal scales");
    check_product(&m, 1, "subnormal scales, random blocks");
    check_product(&m, 2, "subnormal scales, random blocks");
    check_product(&m, 33, "subnormal scales, random blocks");
    free(m.data);
}

// Quantizer-made matrices at sigma 0.02, as real weights are.
static void test_small_weights(uint32_t type) {
    mat_sigma = 0.02f;
    qmat m = mat_quantized(type, 256 * 4, 37);
    mat_sigma = 1.0f;
    uint32_t off[2], n_off = f16_scale_offsets(type, off), blocks = 0, subnormal = 0;
    uint32_t bytes = quant_block_bytes(type);
    for (uint64_t b = 0; b < m.row_bytes * m.n_out; b += bytes, blocks++)
        for (uint32_t i = 0; i < n_off; i++) subnormal += f16_subnormal(m.data + b + off[i]);
    printf("%s at sigma 0.02: %u of %u blocks have a subnormal scale\n", quant_type_name(type), subnormal, blocks);
    check_product(&m, 1, "sigma 0.02");
    check_product(&m, 5, "sigma 0.02");
    check_product(&m, 20, "sigma 0.02");
    int32_t *ids = rand_ids(9, 37);
    check_get_rows(&m, ids, 9, true, "sigma 0.02");
    free(ids), free(m.data);
}

// ---- the codebook types: every grid entry ----
// The shaders read the very arrays the CPU decodes with (runtime/core/quant_iq_tables.h,
// uploaded by kernels.c; test_quant checks them against the definition).
// Random blocks whose octets then walk through every entry of the type's grid, in
// order, looked up on the GPU and compared with the CPU exactly: a table or index
// slip on either side shows. Then products over the same blocks.

// Points octet o (0..31) of block blk at grid entry e (for IQ3: its two halves at
// entries e and e+1), leaving signs and scales random.
static void set_octet_entry(uint32_t type, uint8_t *blk, int o, uint32_t e) {
    const int ib = o / 4, l = o % 4;
    switch (type) {
    case GGML_TYPE_IQ2_XXS: blk[2 + 8 * ib + l] = (uint8_t)e; break;
    case GGML_TYPE_IQ2_XS: {
        uint32_t w = (uint32_t)(blk[2 + 2 * o] | blk[3 + 2 * o] << 8);
        w = (w & ~511u) | e;
        blk[2 + 2 * o] = (uint8_t)w, blk[3 + 2 * o] = (uint8_t)(w >> 8);
        break;
    }
    case GGML_TYPE_IQ2_S:
        blk[2 + o] = (uint8_t)e;
        blk[66 + ib] = (uint8_t)((blk[66 + ib] & ~(3u << 2 * l)) | (e >> 8) << 2 * l);
        break;
    case GGML_TYPE_IQ3_XXS: blk[2 + 2 * o] = (uint8_t)e, blk[3 + 2 * o] = (uint8_t)(e + 1); break;
    case GGML_TYPE_IQ3_S:
        for (uint32_t t = 0; t < 2; t++) {
            const uint32_t i = (e + t) & 511, bit = 2 * (uint32_t)l + t;
            blk[2 + 2 * o + t] = (uint8_t)i;
            blk[66 + ib] = (uint8_t)((blk[66 + ib] & ~(1u << bit)) | (i >> 8) << bit);
        }
        break;
    case GGML_TYPE_IQ1_S: {
        blk[2 + o] = (uint8_t)e;
        uint32_t qh = (uint32_t)(blk[34 + 2 * ib] | blk[35 + 2 * ib] << 8);
        qh = (qh & ~(7u << 3 * l)) | (e >> 8) << 3 * l;
        blk[34 + 2 * ib] = (uint8_t)qh, blk[35 + 2 * ib] = (uint8_t)(qh >> 8);
        break;
    }
    case GGML_TYPE_IQ1_M: {
        blk[o] = (uint8_t)e;
        uint8_t *qh = blk + 32 + 2 * ib + l / 2;
        const int sh = 4 * (l & 1);
        *qh = (uint8_t)((*qh & ~(7u << sh)) | (e >> 8) << sh);
        break;
    }
    }
}

static void test_grid_entries(uint32_t type) {
    const uint32_t entries = type == GGML_TYPE_IQ2_XXS || type == GGML_TYPE_IQ3_XXS ? 256
                             : type == GGML_TYPE_IQ2_XS || type == GGML_TYPE_IQ3_S  ? 512
                             : type == GGML_TYPE_IQ2_S                              ? 1024
                                                                                    : 2048;
    const uint32_t per_octet = type == GGML_TYPE_IQ3_XXS || type == GGML_TYPE_IQ3_S ? 2 : 1;
    const uint32_t n_out = entries / (32 * per_octet) + 3; // every entry, then 3 random rows
    qmat m = mat_random(type, 256, n_out);
    for (uint32_t r = 0; r + 3 < n_out; r++)
        for (int o = 0; o < 32; o++) set_octet_entry(type, m.data + r * m.row_bytes, o, (32 * r + (uint32_t)o) * per_octet);
    int32_t ids[80];
    for (uint32_t i = 0; i < n_out; i++) ids[i] = (int32_t)(n_out - 1 - i);
    check_get_rows(&m, ids, n_out, true, "every grid entry:");
    check_product(&m, 1, "every grid entry:");
    check_product(&m, 5, "every grid entry:");
    check_product(&m, 40, "every grid entry:");
    free(m.data);
}

// ---- every tuning of the matrix-vector kernel ----
// kernels.c picks (workgroup size, rows per workgroup, subgroup reduction) per
// vendor; lavapipe only runs its own pick through op_matmul, so the others are
// built here directly from the same shader.

static void test_matvec_tuning(uint32_t type, uint32_t wg, uint32_t rows, bool subgroup) {
    if (subgroup && !device_get_info(g.dev)->subgroup_arith) return;
    const bool iq = quant_iq_type(type); // binds its grid as a fourth buffer
    pipeline_desc desc = {kernels_weight_shader(FAMILY_MATVEC, type), 5, sizeof(struct push_matvec), 4,
                          {wg, rows, subgroup, KERNEL_FEW_TOKENS}, 0};
    pipeline p;
    if (pipeline_create(g.dev, NULL, &desc, &p) != VKPHI_OK) {
        CHECK(0, "pipeline for %s with %u threads: %s", quant_type_name(type), wg, vkphi_last_error());
        return;
    }
    uint32_t n_in = quant_block_elems(type) * 7, n_out = 67;
    qmat m = mat_quantized(type, n_in, n_out);
    float *x = rand_vec(n_in), *y = xmalloc((size_t)n_out * 4);
    gpu_buffer bw = upload_mat(&m), bx = test_upload(&g, x, (uint64_t)n_in * 4), by = test_upload(&g, NULL, n_out * 4);
    struct push_matvec pc = {n_in, n_out, 0, 0, 1, n_in, n_out, 0, 0, 0};
    buf_view v[] = {buf_sub(&bw, 0, (dev_row_bytes(&m) * n_out + 15) & ~15ull), buf_all(&bx), buf_all(&by), buf_all(&bx),
                    buf_all(&bx)};
    if (iq) CHECK(kernels_iq_grid(g.k, type, &v[3]) == VKPHI_OK, "%s grid: %s", quant_type_name(type), vkphi_last_error());
    cmd_begin(g.cmd);
    cmd_dispatch(g.cmd, &p, v, 5, &pc, sizeof pc, (n_out + rows - 1) / rows, 1, 1);
    run();
    test_download(&g, &by, y, n_out * 4);
    double e = product_error(&m, x, y, 1);
    CHECK(e <= 1, "matvec %s with %u threads, %u rows per workgroup, %s reduction: error %.3g of tolerance",
          quant_type_name(type), wg, rows, subgroup ? "subgroup" : "shared-memory", e);
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    pipeline_destroy(g.dev, &p);
    free(m.data), free(x), free(y);
}

// ---- the tiled matrix-matrix kernel: every tiling, batch invariance ----
// kernels.c picks a tiling (common/matmul_tile.glsl: WG, BM, BN, TM, TN, NBUF) per
// device class and a narrower one for short prompts. Every output is one chain of
// fmas over k in order, so each tiling and each batch size must give the same bits.

// The tiled kernel of a type (half: in packed f16 arithmetic, VKPHI_F16MATH=1)
// against the CPU, batch invariant, and with every_tiling, each tiling kernels.c may
// pick giving op_matmul's bits.
static void test_matmul_tilings(uint32_t type, bool every_tiling, bool half) {
    set_f16math(half ? "1" : "0");
    const uint32_t n_in = quant_block_elems(type) == 32 ? 32 * 7 : 256 * 2, n_out = 67, N = 100;
    qmat m = mat_quantized(type, n_in, n_out);
    float *x = rand_vec((size_t)N * n_in), *y = xmalloc((size_t)N * n_out * 4), *y2 = xmalloc((size_t)N * n_out * 4);
    gpu_buffer bw = upload_mat(&m);
    gpu_product(&m, &bw, x, y, N, 1);
    double e = product_error(&m, x, y, N);
    CHECK(e <= 1, "tiled %s: %u x %u times %u tokens (%s): error %.3g of tolerance", quant_type_name(type), n_out, n_in,
          N, path_label(type, N), e);
    // Ragged batches through op_matmul past the matrix-vector kernels' KERNEL_FEW_TOKENS
    // (the 32-token tile, then the wide one): each token's outputs are those of the
    // 100-token batch, bit for bit.
    const uint32_t ns[] = {KERNEL_FEW_TOKENS + 1, 31, 32, 33, 40, 64};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        gpu_product(&m, &bw, x, y2, ns[i], 1);
        CHECK(memcmp(y, y2, (size_t)ns[i] * n_out * 4) == 0, "%s: the first %u tokens of a batch of %u differ from a "
              "batch of %u alone", quant_type_name(type), ns[i], N, ns[i]);
    }
    // Every tiling, built directly: GPU ones (double-buffered 4 x 8 and 4 x 4
    // micro-tiles), the 16 KiB fallbacks, lavapipe's, and narrow cuts of each; each
    // gives the bits of op_matmul's tiled kernel (not of the cooperative-matrix one,
    // which rounds to f16: VKPHI_COOPMAT=0 while the reference is made).
    if (every_tiling && coop_path(type, N)) {
        set_coopmat("0");
        gpu_product(&m, &bw, x, y, N, 1);
        set_coopmat(NULL);
    }
    set_f16math(NULL);
    const uint32_t tilings[][5] = {{64, 64, 4, 8, 2}, {64, 32, 4, 8, 2}, {64, 32, 4, 4, 1}, {32, 32, 4, 4, 1},
                                   {128, 64, 8, 8, 1}, {64, 64, 8, 8, 1}, {128, 16, 8, 8, 1}, {64, 16, 4, 8, 2},
                                   {16, 16, 4, 4, 2}, {64, 32, 16, 4, 1}};
    gpu_buffer bx = test_upload(&g, x, (uint64_t)N * n_in * 4), by = test_upload(&g, NULL, (uint64_t)N * n_out * 4);
    const bool iq = quant_iq_type(type);
    for (size_t i = 0; every_tiling && i < sizeof tilings / sizeof tilings[0]; i++) {
        const uint32_t *t = tilings[i];
        uint32_t wg = (t[0] / t[2]) * (t[1] / t[3]), words = 0;
        if (iq) quant_iq_grid(type, &words);
        // NBUF slices of 32 x BM weights and 32 x BN activations (f32 or f16), and the grid
        uint32_t shared = (half ? 2 : 4) * t[4] * 32 * (t[0] + t[1]) + 4 * words;
        const device_info *info = device_get_info(g.dev);
        if (shared > info->max_shared_memory || wg > info->max_workgroup_invocations) continue; // (a limit profile)
        pipeline_desc desc = {kernels_weight_shader(half ? FAMILY_MATMUL_H : FAMILY_MATMUL, type), iq ? 4 : 3,
                              sizeof(struct push_matmul), half ? 7 : 6,
                              {wg, t[0], t[1], t[2], t[3], t[4], MATMUL_H_CHUNK}, 0, shared};
        pipeline p;
        if (pipeline_create(g.dev, NULL, &desc, &p) != VKPHI_OK) {
            CHECK(0, "pipeline for %s tiled %u x %u: %s", quant_type_name(type), t[0], t[1], vkphi_last_error());
            continue;
        }
        struct push_matmul pc = {n_in, n_out, N, n_in, n_out, 0, 0, 0};
        buf_view v[] = {buf_sub(&bw, 0, (dev_row_bytes(&m) * n_out + 15) & ~15ull), buf_all(&bx), buf_all(&by), {0}};
        if (v[0].offset + v[0].range > bw.size) v[0].range = bw.size;
        if (iq) CHECK(kernels_iq_grid(g.k, type, &v[3]) == VKPHI_OK, "%s grid: %s", quant_type_name(type), vkphi_last_error());
        cmd_begin(g.cmd);
        cmd_dispatch(g.cmd, &p, v, iq ? 4 : 3, &pc, sizeof pc, (n_out + t[0] - 1) / t[0], (N + t[1] - 1) / t[1], 1);
        run();
        test_download(&g, &by, y2, (uint64_t)N * n_out * 4);
        CHECK(memcmp(y, y2, (size_t)N * n_out * 4) == 0, "%s tiled%s %u x %u, micro-tiles %u x %u, %u buffers: differs "
              "from op_matmul's result", quant_type_name(type), half ? " in f16" : "", t[0], t[1], t[2], t[3], t[4]);
        pipeline_destroy(g.dev, &p);
    }
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bx), buffer_destroy(g.dev, &by);
    free(m.data), free(x), free(y), free(y2);
}

// ---- packed f16 arithmetic ----
// The tiles built with F16MATH, which op_matmul takes on GPUs whose f16 is fast and
// anywhere under VKPHI_F16MATH=1 (cooperative matrices off: they come first): every
// type at ragged shapes against the CPU at the f16 tolerance; F32 weights keep the
// f32 tiles; for Q4_K and IQ2_S (a codebook) ragged batches are invariant and every
// tiling gives op_matmul's bits. Skipped where the device has no shaderFloat16.
static void test_f16math(void) {
    const device_info *info = device_get_info(g.dev);
    if (!info->fp16) {
        printf("packed f16 tiles: skipped (%s has no shaderFloat16)\n", info->name);
        return;
    }
    set_coopmat("0");
    set_f16math("0");
    CHECK(!half_path(GGML_TYPE_Q4_K, 33), "VKPHI_F16MATH=0 keeps the f32 tiles (%s)", path_label(GGML_TYPE_Q4_K, 33));
    set_f16math("1");
    CHECK(strcmp(path_label(GGML_TYPE_Q4_K, 33), "matmul Q4_K f16") == 0 && !half_path(GGML_TYPE_Q4_K, 16) &&
              !half_path(GGML_TYPE_F32, 33),
          "VKPHI_F16MATH=1: many tokens of Q4_K on the f16 tiles (%s), a few on the matrix-vector kernels, F32 on f32",
          path_label(GGML_TYPE_Q4_K, 33));
    for (size_t i = 1; i < N_TYPES; i++) { // every type but F32; 33 tokens: one pipeline each (the 64-token tile)
        uint32_t t = all_types[i], qk = quant_block_elems(t);
        qmat a = mat_random(t, qk > 1 ? 3 * qk : 200, 67);
        check_product(&a, 33, "f16 tiles");
        free(a.data);
    }
    qmat f = mat_random(GGML_TYPE_F16, 37, 5); // K of 2 slices and a part
    check_product(&f, 70, "f16 tiles");
    free(f.data);
    test_matmul_tilings(GGML_TYPE_Q4_K, true, true);
    test_matmul_tilings(GGML_TYPE_IQ2_S, true, true);
    set_coopmat(NULL);
    set_f16math(NULL);
}

// ---- bad input ----

static void test_bad_input(void) {
    qmat m = mat_random(GGML_TYPE_Q4_K, 256, 4);
    gpu_buffer bw = upload_mat(&m), bi = test_upload(&g, NULL, 64), bo = test_upload(&g, NULL, 4 * 256 * 4);
    gpu_weight w = weight_of(&m, &bw);
    int32_t bad_ids[] = {0, 4};
    cmd_begin(g.cmd);
    CHECK(get_rows_record(lookup, g.cmd, &w, buf_all(&bi), bad_ids, buf_all(&bo), 2, 256) == VKPHI_ERR_ARG &&
              strstr(vkphi_last_error(), "token id 4"),
          "an id past the table is refused by name: %s", vkphi_last_error());
    w.n_in = 200; // not a whole number of blocks
    CHECK(op_matmul(g.cmd, g.k, &w, buf_all(&bo), buf_all(&bo), 1, 200, 4) == VKPHI_ERR_ARG,
          "a Q4_K row of 200 values is refused");
    w = weight_of(&m, &bw);
    w.n_out = 1000; // more rows than the buffer holds
    CHECK(op_matmul(g.cmd, g.k, &w, buf_all(&bo), buf_all(&bo), 1, 256, 4) == VKPHI_ERR_ARG,
          "a weight past the end of its buffer is refused");
    w = weight_of(&m, &bw);
    w.type = 34; // TQ1_0: known, not run
    w.row_bytes = 54;
    CHECK(get_rows_record(lookup, g.cmd, &w, buf_all(&bi), NULL, buf_all(&bo), 1, 256) == VKPHI_ERR_UNSUPPORTED &&
              strstr(vkphi_last_error(), "TQ1_0"),
          "an unsupported type is refused by name: %s", vkphi_last_error());
    run(); // nothing was recorded
    buffer_destroy(g.dev, &bw), buffer_destroy(g.dev, &bi), buffer_destroy(g.dev, &bo);
    free(m.data);
}

// ---- matrices larger than one storage-buffer binding ----

// Products and lookups over a matrix bound in several windows: ids on both sides of
// the first window edge, and the ends.
static void test_big(uint32_t type, uint32_t n_in, uint32_t n_out) {
    const device_info *info = device_get_info(g.dev);
    qmat m = mat_random(type, n_in, n_out);
    uint64_t bytes = dev_row_bytes(&m) * n_out;
    if (bytes > info->max_alloc_size) {
        printf("skipping the %.0f MB matrix: the device allocates at most %.0f MB at once\n", bytes / 1e6,
               info->max_alloc_size / 1e6);
        free(m.data);
        return;
    }
    printf("big %s matrix: %u x %u, %.1f MB; storage-buffer range %.1f MB\n", quant_type_name(type), n_out, n_in,
           bytes / 1e6, info->max_storage_buffer_range / 1e6);
    gpu_buffer bw = upload_mat(&m);
    for (uint32_t n_tokens = 1; n_tokens <= 2; n_tokens++) {
        float *x = rand_vec((size_t)n_tokens * n_in), *y = xmalloc((size_t)n_tokens * n_out * 4);
        gpu_product(&m, &bw, x, y, n_tokens, 1);
        double e = product_error(&m, x, y, n_tokens);
        CHECK(e <= 1, "big %s %u x %u (%.0f MB) times %u tokens: error %.3g of tolerance", quant_type_name(type), n_out,
              n_in, bytes / 1e6, n_tokens, e);
        free(x), free(y);
    }
    buffer_destroy(g.dev, &bw);
    uint32_t edge = (uint32_t)(info->max_storage_buffer_range / dev_row_bytes(&m)); // at or just past the first edge
    if (edge > n_out - 2) edge = n_out - 2;
    int32_t ids[] = {0, (int32_t)edge - 8, (int32_t)edge - 1, (int32_t)edge, (int32_t)n_out - 1, (int32_t)edge + 1};
    check_get_rows(&m, ids, 6, true, "big");
    check_get_rows(&m, ids, 6, false, "big, no host ids,");
    free(m.data);
}

// ---- lavapipe's speed, for information ----

static void time_matvec(uint32_t type) {
    qmat m = mat_random(type, 5120, 7680);
    float *x = rand_vec(5120), *y = xmalloc(7680 * 4);
    gpu_buffer bw = upload_mat(&m);
    double s = gpu_product(&m, &bw, x, y, 1, 4);
    double e = product_error(&m, x, y, 1);
    CHECK(e <= 1, "matvec %s 7680 x 5120 (random blocks): error %.3g of tolerance", quant_type_name(type), e);
    printf("matvec %-4s 7680 x 5120: %8.0f us (%.2f GB/s)\n", quant_type_name(type), s * 1e6,
           dev_row_bytes(&m) * m.n_out / s / 1e9);
    buffer_destroy(g.dev, &bw);
    free(m.data), free(x), free(y);
}

static void blocks(void), fused(void), tunings(void), tiles(void), shapes(void);

// The suite runs in parts, each its own ctest (tests/CMakeLists.txt), so that a cold
// pipeline cache (each part builds dozens of pipelines, slowly on lavapipe) spreads
// over parallel runners and no part nears the timeout: `test_quant_gpu PART`, or all
// parts in turn without an argument.
static const char *const parts[] = {"blocks", "fused", "tunings", "tiles", "shapes"};
static void (*const part_fns[])(void) = {blocks, fused, tunings, tiles, shapes};
#define N_PARTS (sizeof parts / sizeof parts[0])

int main(int argc, char **argv) {
    const char *want = argc > 1 ? argv[1] : NULL;
    size_t n_run = 0;
    for (size_t i = 0; i < N_PARTS; i++) n_run += !want || strcmp(want, parts[i]) == 0;
    if (n_run == 0) {
        fprintf(stderr, "test_quant_gpu: unknown part '%s' (blocks, fused, tunings, tiles or shapes)\n", want);
        return 2;
    }
    test_seed(7);
    if (!test_gpu_open(&g)) return test_skip("no Vulkan device");
    if (!(lookup = get_rows_create(g.k))) return test_finish();
    policy0 = *kernels_policy(g.k);
    for (size_t i = 0; i < N_PARTS; i++) {
        if (want && strcmp(want, parts[i]) != 0) continue;
        double t0 = vkphi_now();
        part_fns[i]();
        printf("%s: %.1f s\n", parts[i], vkphi_now() - t0);
    }
    get_rows_destroy(lookup);
    test_gpu_close(&g);
    return test_finish();
}

// Exact blocks, subnormal scales, codebook entries, bad input, the cooperative-matrix
// kernels, and products and lookups at ragged shapes.
static void blocks(void) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (!quant_iq_type(all_types[i])) test_known_block(all_types[i]);
    for (size_t i = 0; i < N_QTYPES; i++)
        if (!quant_iq_type(qtypes[i])) test_subnormal_block(qtypes[i]), test_small_weights(qtypes[i]);
    for (size_t i = 0; i < N_QTYPES; i++) test_subnormal_random(qtypes[i]);
    for (size_t i = 0; i < N_IQTYPES; i++) test_grid_entries(iq_types[i]);
    test_bad_input();
    test_coopmat();

    // Ragged shapes: one block, several, rows not a multiple of the workgroup's.
    for (size_t i = 0; i < N_QTYPES; i++) {
        uint32_t t = qtypes[i], qk = quant_block_elems(t), several = qk == 32 ? 32 * 5 : 256 * 3;
        const uint32_t outs[] = {1, 3, 67};
        for (int o = 0; o < 3; o++) {
            qmat one = mat_quantized(t, qk, outs[o]), many = mat_quantized(t, several, outs[o]);
            check_product(&one, 1, "ragged");
            check_product(&many, 1, "ragged");
            check_product(&many, outs[o] == 67 ? 70 : 2, "ragged");
            check_product(&many, o == 1 ? 8 : 5, "few tokens"); // the few-token matrix-vector kernel
            if (o == 2) check_product(&one, 33, "ragged");
            free(one.data), free(many.data);
        }
        qmat m = mat_quantized(t, several, 67);
        int32_t *ids = rand_ids(70, 67);
        check_get_rows(&m, ids, 1, true, "ragged");
        check_get_rows(&m, ids, 70, true, "ragged");
        free(ids), free(m.data);
    }
    for (int i = 0; i < 3; i++) { // float lookups at odd lengths
        qmat m = mat_random(all_types[i], 7, 5);
        int32_t *ids = rand_ids(9, 5);
        check_get_rows(&m, ids, 9, false, "ragged");
        free(ids), free(m.data);
    }
}

static void fused(void) {
    // The fused forms and batch invariance, every type, ragged rows; token counts of 1
    // and 3 for all (each count is a pipeline of its own, and lavapipe compiles each
    // at its first dispatch, slowly), and for one type of each reader family also 16
    // and 17 and 20 (two dispatches: KERNEL_FEW_TOKENS, then the rest).
    for (size_t i = 0; i < N_TYPES; i++) {
        uint32_t t = all_types[i], qk = quant_block_elems(t), n_in = qk == 1 ? 37 * 8 : qk == 32 ? 32 * 5 : 256 * 2;
        bool wide = t == GGML_TYPE_F16 || t == GGML_TYPE_Q8_0 || t == GGML_TYPE_Q4_K || t == GGML_TYPE_IQ2_S;
        qmat m = mat_quantized(t, n_in, 2 * 35);
        check_fused(&m, 1, false);
        check_fused(&m, wide ? 17 : 3, false);
        check_fused(&m, 1, true);
        check_fused(&m, 3, true);
        check_invariance(&m, false, wide);
        check_invariance(&m, true, wide);
        free(m.data);
        if (qk == 1) { // float rows of ragged length (one value at a time)
            qmat r = mat_quantized(t, 37, 2 * 3);
            check_fused(&r, 3, false);
            check_fused(&r, 1, true);
            free(r.data);
        }
    }
}

static void tunings(void) {
    // Every tuning kernels.c may choose (sizes of NVIDIA, AMD, Intel, lavapipe).
    const uint32_t tunings[][3] = {{32, 2, 1}, {64, 2, 1}, {32, 4, 1}, {16, 1, 1}, {8, 3, 1},
                                   {32, 2, 0}, {64, 1, 0}, {128, 3, 0}};
    for (size_t i = 0; i < N_QTYPES; i++)
        for (size_t j = 0; j < sizeof tunings / sizeof tunings[0]; j++)
            test_matvec_tuning(qtypes[i], tunings[j][0], tunings[j][1], tunings[j][2] != 0);
}

static void tiles(void) {
    const uint32_t tiled_types[] = {GGML_TYPE_Q4_K, GGML_TYPE_Q8_0, GGML_TYPE_Q5_0, GGML_TYPE_IQ2_S};
    for (size_t i = 0; i < sizeof tiled_types / sizeof tiled_types[0]; i++) // (every tiling: a pipeline each, slow to build on lavapipe)
        test_matmul_tilings(tiled_types[i], i == 0 || tiled_types[i] == GGML_TYPE_IQ2_S, false);
    test_f16math();
}

static void shapes(void) {
    // Phi-4's shapes: attn_qkv (timed), ffn_down, and a 4096-row slice of the
    // token embedding (5120 x 100352) looked up in every type.
    for (size_t i = 0; i < N_QTYPES; i++) time_matvec(qtypes[i]);
    for (size_t i = 0; i < N_QTYPES; i++) {
        qmat m = mat_random(qtypes[i], 17920, 5120);
        check_product(&m, 1, "ffn_down");
        free(m.data);
    }
    for (size_t i = 0; i < N_TYPES; i++) {
        qmat m = mat_random(all_types[i], 5120, 4096);
        int32_t *ids = rand_ids(40, 4096);
        check_get_rows(&m, ids, 40, true, "embedding slice");
        free(ids), free(m.data);
    }
    // Prefill through the tiled kernel: 40 tokens of attn_qkv, quantizer-made weights
    // (random blocks for the codebook types).
    const uint32_t prefill_types[] = {GGML_TYPE_Q4_K,   GGML_TYPE_Q6_K,   GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_IQ2_XXS,
                                      GGML_TYPE_IQ2_XS, GGML_TYPE_IQ2_S, GGML_TYPE_IQ1_S,   GGML_TYPE_IQ1_M};
    for (size_t i = 0; i < sizeof prefill_types / sizeof prefill_types[0]; i++) {
        qmat m = mat_quantized(prefill_types[i], 5120, 7680);
        check_product(&m, 40, "attn_qkv prefill");
        free(m.data);
    }
    test_big(GGML_TYPE_Q8_0, 5120, 30000);  // 163 MB: windows of 24672 rows
    test_big(GGML_TYPE_Q4_0, 160, 1600000); // 144 MB of 90-byte rows: windows a multiple of 8 rows apart
}
