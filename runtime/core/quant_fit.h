// SPDX-License-Identifier: MIT
// The scale searches the quantizers of quant_quantize.c share: each fits n values
// x to one scale (and a min) times integer levels L by weighted least squares, the
// way ggml's reference quantizer searches, and returns the scale. The details of
// each search are at its definition in quant_fit.c. No Vulkan here.
#pragma once
#include <stdbool.h>
#include <stdint.h>

// x ~ scale * (L - nmax), L in 0..2*nmax-1 (n <= 32), weighted by imp (x^2 when NULL).
float quant_fit_symmetric(int n, int nmax, const float *x, int8_t *L, const float *imp);
// The same without importance (n <= 16), refined by coordinate descent (Q3_K).
float quant_fit_symmetric_iter(int n, int nmax, const float *x, int8_t *L);
// x ~ scale * L - min, L in 0..nmax, min >= 0 (n <= 32), weighted by w; the min
// comes back in *min_out. Candidate inverse scales (nmax + rmin + rdelta*k) / range
// for k = 0..nstep, ranked by weighted absolute error instead of squares when mad.
float quant_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out, float rmin,
                          float rdelta, int nstep, bool mad);
// Non-negative x (sub-block scales or mins) to levels 0..nmax under one scale, weighted by w.
float quant_fit_positive(int n, int nmax, const float *x, uint8_t *L, const float *w);
