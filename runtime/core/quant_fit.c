// SPDX-License-Identifier: MIT
// The scale searches of the quantizers (quant_quantize.c): least-squares fits of a
// block of values to a scale (and a min) times integer levels, as ggml's reference
// quantizer searches, so that the files we write match its byte for byte.
#include "quant_fit.h"

#include "quant_internal.h"

#include <math.h>
#include <string.h>

// Symmetric fit (n <= 32) x[i] ~ scale * (L[i] - nmax), L in 0..2*nmax-1, minimizing
// sum w (x - scale*l)^2 with w = importance (or x^2 without it). The first guess
// maps the value of largest magnitude to -nmax (one level more than +nmax-1 has);
// then 18 nearby inverse scales are tried and the best least-squares fit kept.
float quant_fit_symmetric(int n, int nmax, const float *x, int8_t *L, const float *imp) {
    const float max = signed_max(x, n);
    if (fabsf(max) < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float w[32];
    for (int i = 0; i < n; i++) w[i] = imp ? imp[i] : x[i] * x[i];
    float scale = 0, best = 0;
    for (int k = 0; k <= 18; k++) {
        // k = 0: the plain guess -nmax/max, kept whatever its fit; then inverse
        // scales 0.1 level apart on either side (steps -9..-1, 1..9).
        const int step = k == 0 ? 0 : k <= 9 ? k - 10 : k - 9;
        const float iscale = -((float)nmax + 0.1f * (float)step) / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
            sumlx += w[i] * x[i] * (float)l;
            suml2 += w[i] * (float)l * (float)l;
        }
        if (k > 0 && !(suml2 > 0 && sumlx * sumlx > best * suml2)) continue;
        scale = suml2 > 0 ? sumlx / suml2 : 0;
        best = scale * sumlx;
        for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(nearest(iscale * x[i]), -nmax, nmax - 1));
    }
    return scale;
}

// Q3_K's symmetric fit without importance (n <= 16): first guess as above, then up
// to five sweeps of coordinate descent, re-choosing one value's level at a time
// as the least-squares scale of the others asks, kept when the fit improves.
// Weights are x^2. L comes back in 0..2*nmax-1. (ggml sweeps only when the
// block's largest value is negative; sweeping for either sign lowers Q3_K's
// error on Gaussian data by about 0.3%.)
float quant_fit_symmetric_iter(int n, int nmax, const float *x, int8_t *L) {
    const float max = signed_max(x, n);
    if (fabsf(max) < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0, suml2 = 0;
    int l_cur[16];
    for (int i = 0; i < n; i++) {
        l_cur[i] = clampi(nearest(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l_cur[i];
        suml2 += w * (float)l_cur[i] * (float)l_cur[i];
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)l_cur[i];
            if (slx == 0) continue;
            float sl2 = suml2 - w * (float)l_cur[i] * (float)l_cur[i];
            const int nl = clampi(nearest(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == l_cur[i]) continue;
            slx += w * x[i] * (float)nl;
            sl2 += w * (float)nl * (float)nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) { // better fit: keep it
                l_cur[i] = nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(l_cur[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0;
}

// Asymmetric fit (n <= 32) x[i] ~ scale * L[i] - min, L in 0..nmax, min >= 0, weighted
// least squares (candidates ranked by weighted absolute error instead when mad).
// Starts from the full range [min(x,0), max(x)], then tries nstep+1 inverse scales
// (nmax + rmin + rdelta*k) / (max(x) - offset), rounding x - offset, solving the
// 2x2 normal equations for scale and offset at each and keeping the lowest
// weighted error. As in ggml's search, the offset of the best fit so far is the
// one the next candidates round against (so our files match its byte for byte).
float quant_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out,
                          float rmin, float rdelta, int nstep, bool mad) {
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (!(hi > lo)) {
        memset(L, 0, (size_t)n);
        *min_out = -lo;
        return 0;
    }
    float iscale = (float)nmax / (hi - lo), scale = 1 / iscale, min = lo;
    float best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest(iscale * (x[i] - lo)), 0, nmax);
        const float diff = scale * (float)L[i] + lo - x[i];
        best += w[i] * (mad ? fabsf(diff) : diff * diff);
    }
    uint8_t cand[32];
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (hi - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest(iscale * (x[i] - min)), 0, nmax);
            cand[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0)) continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0) { // the offset may only lower values: refit the scale alone
            m = 0;
            s = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = s * (float)cand[i] + m - x[i];
            err += w[i] * (mad ? fabsf(diff) : diff * diff);
        }
        if (err < best) {
            memcpy(L, cand, (size_t)n);
            best = err;
            scale = s;
            min = m;
        }
    }
    *min_out = -min;
    return scale;
}

// Quantizes n non-negative values (sub-block scales or mins) to 0..nmax with one
// shared scale, weighted by w: tries nine scales around max/nmax, then sweeps of
// coordinate descent on the levels. Returns the shared scale.
float quant_fit_positive(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    if (max < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float iscale = (float)nmax / max, best = 0;
    const float scale0 = 1 / iscale;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale0 * (float)clampi(nearest(iscale * x[i]), 0, nmax);
        best += w[i] * diff * diff;
    }
    for (int k = -4; k <= 4; k++) {
        if (k == 0) continue;
        const float is = (0.1f * (float)k + (float)nmax) / max, sc = 1 / is;
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = x[i] - sc * (float)clampi(nearest(is * x[i]), 0, nmax);
            err += w[i] * diff * diff;
        }
        if (err < best) {
            best = err;
            iscale = is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest(iscale * x[i]), 0, nmax);
        sumlx += w[i] * x[i] * (float)L[i];
        suml2 += w[i] * (float)L[i] * (float)L[i];
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * (float)L[i], sl2 = suml2 - w[i] * (float)L[i] * (float)L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            const int nl = clampi(nearest(x[i] * sl2 / slx), 0, nmax);
            if (nl == L[i]) continue;
            slx += w[i] * x[i] * (float)nl;
            sl2 += w[i] * (float)nl * (float)nl;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return suml2 > 0 ? sumlx / suml2 : 0;
}
