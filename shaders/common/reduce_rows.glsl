// SPDX-License-Identifier: MIT
// The end of a matrix-vector kernel: sums each of the ROWS x NT per-thread partials
// (acc[t * ROWS + r] below: row r0 + r, token t) over the workgroup and stores them at
// y[t * y_stride + row0 + r0 + r], or adds them there when p.add. Needs ROWS, NT,
// SUBGROUP_REDUCE, WG, y and p.M, p.row0, p.add, p.n_tokens, p.y_stride declared
// before inclusion.
shared float reduce_rows_buf[ROWS * NT * WG];
// The per-thread partial sums, acc[t * ROWS + r]. Global rather than a parameter:
// passing an array sized by specialization constants by value is not valid SPIR-V
// once specialized.
float acc[ROWS * NT];

void reduce_rows_put(uint j, uint r0, float v) {
    uint t = j / ROWS, r = j % ROWS;
    if (r0 + r >= p.M || t >= p.n_tokens) return;
    uint i = t * p.y_stride + p.row0 + r0 + r;
    y[i] = p.add != 0u ? y[i] + v : v;
}

void reduce_rows_store(uint r0) {
    uint tid = gl_LocalInvocationID.x;
#ifndef NO_SUBGROUP_ARITH
    if (SUBGROUP_REDUCE) {
        [[unroll]] for (uint j = 0; j < ROWS * NT; j++) acc[j] = subgroupAdd(acc[j]);
        if (gl_NumSubgroups == 1u) { // one subgroup: no shared memory, no barrier
            if (subgroupElect()) [[unroll]] for (uint j = 0; j < ROWS * NT; j++) reduce_rows_put(j, r0, acc[j]);
            return;
        }
        if (subgroupElect()) [[unroll]] for (uint j = 0; j < ROWS * NT; j++) reduce_rows_buf[j * WG + gl_SubgroupID] = acc[j];
        barrier();
        for (uint j = tid; j < ROWS * NT; j += WG) {
            float t = 0.0;
            for (uint i = 0; i < gl_NumSubgroups; i++) t += reduce_rows_buf[j * WG + i];
            reduce_rows_put(j, r0, t);
        }
        return;
    }
#endif
    {
        [[unroll]] for (uint j = 0; j < ROWS * NT; j++) reduce_rows_buf[j * WG + tid] = acc[j];
        barrier();
        [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s) [[unroll]] for (uint j = 0; j < ROWS * NT; j++) reduce_rows_buf[j * WG + tid] += reduce_rows_buf[j * WG + tid + s];
            barrier();
        }
        for (uint j = tid; j < ROWS * NT; j += WG) reduce_rows_put(j, r0, reduce_rows_buf[j * WG]);
    }
}
