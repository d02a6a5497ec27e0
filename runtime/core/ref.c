// SPDX-License-Identifier: MIT
#include "ref.h"

#include <math.h>
#include <stdlib.h>

void ref_rmsnorm(const float *x, const float *w, float *out, uint32_t n_rows, uint32_t n, float eps) {
    for (uint32_t r = 0; r < n_rows; r++) {
        const float *xr = x + (uint64_t)r * n;
        double ss = 0;
        for (uint32_t i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / n + eps));
        for (uint32_t i = 0; i < n; i++) out[(uint64_t)r * n + i] = xr[i] * scale * w[i];
    }
}

void ref_rope(float *x, uint32_t n_tokens, uint32_t n_heads, uint32_t head_dim, uint32_t x_stride, uint32_t head_offset,
              uint32_t pos0, const rope_spec *r) {
    uint32_t half = r->n_rot / 2;
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t h = 0; h < n_heads; h++) {
            float *v = x + (uint64_t)t * x_stride + head_offset + (uint64_t)h * head_dim;
            for (uint32_t i = 0; i < half; i++) {
                double factor = r->factors ? r->factors[i] : 1.0;
                double angle = (double)(pos0 + t) * pow(r->base, -2.0 * i / r->n_rot) / factor;
                double c = cos(angle) * r->attn_factor, s = sin(angle) * r->attn_factor;
                uint32_t i0 = r->neox ? i : 2 * i, i1 = r->neox ? i + half : 2 * i + 1;
                double a = v[i0], b = v[i1];
                v[i0] = (float)(a * c - b * s);
                v[i1] = (float)(a * s + b * c);
            }
        }
}

void ref_softmax(const float *x, float *out, uint32_t n_rows, uint32_t n) {
    for (uint32_t r = 0; r < n_rows; r++) {
        const float *xr = x + (uint64_t)r * n;
        float m = -INFINITY;
        for (uint32_t i = 0; i < n; i++) m = xr[i] > m ? xr[i] : m;
        double s = 0;
        for (uint32_t i = 0; i < n; i++) s += exp((double)xr[i] - m);
        for (uint32_t i = 0; i < n; i++) out[(uint64_t)r * n + i] = (float)(exp((double)xr[i] - m) / s);
    }
}

void ref_swiglu(const float *x, float *out, uint32_t n_tokens, uint32_t ff) {
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t i = 0; i < ff; i++) {
            double g = x[(uint64_t)t * 2 * ff + i], u = x[(uint64_t)t * 2 * ff + ff + i];
            out[(uint64_t)t * ff + i] = (float)(g / (1.0 + exp(-g)) * u);
        }
}

void ref_add(const float *a, const float *b, float *out, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void ref_matmul(const float *w, const float *x, float *y, uint32_t n_in, uint32_t n_out, uint32_t n_tokens) {
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t r = 0; r < n_out; r++) {
            double s = 0;
            const float *wr = w + (uint64_t)r * n_in, *xt = x + (uint64_t)t * n_in;
            for (uint32_t k = 0; k < n_in; k++) s += (double)wr[k] * xt[k];
            y[(uint64_t)t * n_out + r] = (float)s;
        }
}

void ref_attention(const float *q, uint32_t q_stride, const float *k, const float *v, uint32_t kv_dim, float *out,
                   uint32_t n_tokens, uint32_t pos0, uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim) {
    uint32_t G = n_head / n_head_kv, n_kv = pos0 + n_tokens;
    double *p = malloc(sizeof(double) * n_kv);
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t h = 0; h < n_head; h++) {
            const float *qh = q + (uint64_t)t * q_stride + h * head_dim;
            uint32_t g = h / G, len = pos0 + t + 1;
            double m = -INFINITY, sum = 0;
            for (uint32_t j = 0; j < len; j++) {
                double s = 0;
                for (uint32_t d = 0; d < head_dim; d++) s += (double)qh[d] * k[(uint64_t)j * kv_dim + g * head_dim + d];
                p[j] = s / sqrt((double)head_dim);
                if (p[j] > m) m = p[j];
            }
            for (uint32_t j = 0; j < len; j++) sum += (p[j] = exp(p[j] - m));
            for (uint32_t d = 0; d < head_dim; d++) {
                double o = 0;
                for (uint32_t j = 0; j < len; j++) o += p[j] * v[(uint64_t)j * kv_dim + g * head_dim + d];
                out[(uint64_t)t * n_head * head_dim + h * head_dim + d] = (float)(o / sum);
            }
        }
    free(p);
}
