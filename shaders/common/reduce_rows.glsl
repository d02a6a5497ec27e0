// SPDX-License-Identifier: MIT
// The end of a matrix-vector kernel: for each token t < p.n_tokens, sums its ROWS
// per-thread partials acc[t * ROWS + r] (and, when NORM, its sum of squares
// acc_ss[t]) over the workgroup, then one thread hands the sums to
// matvec_store(t, r0, sums), which the including shader defines before this file.
// Tokens are reduced one after another in the same order whatever their number, so
// a token's result does not depend on the others in the dispatch (batch
// invariance). Needs ROWS, NT, SUBGROUP_REDUCE, WG and p.n_tokens declared before.
#define RR (ROWS + 1u) // the rows' sums and the sum of squares
shared float reduce_rows_buf[RR * WG];
// The per-thread partial sums, acc[t * ROWS + r] and acc_ss[t]. Global rather than
// parameters: passing an array sized by specialization constants by value is not
// valid SPIR-V once specialized.
float acc[ROWS * NT];
float acc_ss[NT];
float red[RR];

void matvec_store(uint t, uint r0);

void reduce_rows_store(uint r0) {
    uint tid = gl_LocalInvocationID.x;
    // Unrolled, so that acc is indexed by constants only (a dynamic index would put
    // it in memory instead of registers).
    [[unroll]] for (uint t = 0; t < NT; t++) {
        if (t >= p.n_tokens) break;
        [[unroll]] for (uint j = 0; j < ROWS; j++) red[j] = acc[t * ROWS + j];
        red[ROWS] = acc_ss[t];
#ifndef NO_SUBGROUP_ARITH
        if (SUBGROUP_REDUCE) {
            [[unroll]] for (uint j = 0; j < RR; j++) red[j] = subgroupAdd(red[j]);
            if (gl_NumSubgroups == 1u) { // one subgroup: no shared memory, no barrier
                if (subgroupElect()) matvec_store(t, r0);
                continue;
            }
            if (subgroupElect()) [[unroll]] for (uint j = 0; j < RR; j++) reduce_rows_buf[j * WG + gl_SubgroupID] = red[j];
            barrier();
            if (tid == 0u) {
                [[unroll]] for (uint j = 0; j < RR; j++) {
                    float s = 0.0;
                    for (uint i = 0; i < gl_NumSubgroups; i++) s += reduce_rows_buf[j * WG + i];
                    red[j] = s;
                }
                matvec_store(t, r0);
            }
            barrier();
            continue;
        }
#endif
        [[unroll]] for (uint j = 0; j < RR; j++) reduce_rows_buf[j * WG + tid] = red[j];
        barrier();
        [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s) [[unroll]] for (uint j = 0; j < RR; j++) reduce_rows_buf[j * WG + tid] += reduce_rows_buf[j * WG + tid + s];
            barrier();
        }
        if (tid == 0u) {
            [[unroll]] for (uint j = 0; j < RR; j++) red[j] = reduce_rows_buf[j * WG];
            matvec_store(t, r0);
        }
        barrier();
    }
}
