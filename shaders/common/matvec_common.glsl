// SPDX-License-Identifier: MIT
// What the matrix-vector kernels (matvec_q.comp, matvec_f.comp) share: bindings,
// push constants, the fused modes and the store.
//   mode 0: y[t, row0 + r] (+)= W[r,:] . x[t,:]
//   mode 1: the same of RMSNorm(x[t,:]) * nw: the norm is folded in as the kernel
//           reads x (x * nw, and the sum of x^2 on the side), and the dot product
//           is scaled by 1/sqrt(mean(x^2) + eps) at the end; no normed copy of x.
//   mode 2: mode 1 over the fused gate/up weight [G; U] (U's row i is row M + i):
//           a workgroup computes matching rows of G and U and stores
//           y[t, row0 + i] = SiLU(g_i) * u_i: no separate SwiGLU pass.
// ROWS weight rows per workgroup (mode 2: ROWS/2 of G and the same of U); up to NT
// tokens per dispatch, each reduced on its own (common/reduce_rows.glsl).
layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const bool SUBGROUP_REDUCE = false;
layout(constant_id = 3) const uint NT = 1;
layout(binding = 1) readonly buffer X { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 4) readonly buffer NW { vec4 nw4[]; }; // the RMSNorm weight (modes 1, 2)
layout(push_constant) uniform P { PUSH_MATVEC } p; // common/push_constants.h

#include "common/reduce_rows.glsl"

// Rows per workgroup of the output, and the weight row behind slot r.
uint out_rows() { return p.mode == 2u ? ROWS / 2u : ROWS; }
uint w_row(uint r0, uint r) {
    if (p.mode != 2u) return r0 + r;
    uint h = ROWS / 2u;
    return r < h ? r0 + r : p.M + r0 + r - h;
}
bool slot_ok(uint r0, uint r) { return r0 + (p.mode == 2u ? r % (ROWS / 2u) : r) < p.M; }

void matvec_store(uint t, uint r0) {
    float scale = p.mode != 0u ? 1.0 / sqrt(red[ROWS] / float(p.K) + p.eps) : 1.0;
    uint n = out_rows();
    for (uint r = 0; r < n; r++) {
        if (r0 + r >= p.M) break;
        uint i = t * p.y_stride + p.row0 + r0 + r;
        if (p.mode == 2u) {
            float g = red[r] * scale, u = red[r + ROWS / 2u] * scale;
            y[i] = g / (1.0 + exp(-g)) * u;
        } else {
            float v = red[r] * scale;
            y[i] = p.add != 0u ? y[i] + v : v;
        }
    }
}
