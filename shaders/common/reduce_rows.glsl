// SPDX-License-Identifier: MIT
// The end of a matrix-vector kernel: sums each of the ROWS per-thread partials
// over the workgroup and stores them at y[row0 + r0 + r] (adds them when p.add).
// Needs ROWS, SUBGROUP_REDUCE, WG, y and p.M, p.row0, p.add declared before inclusion.
shared float reduce_rows_buf[ROWS * WG];

void reduce_rows_put(uint i, float v) { y[i] = p.add != 0u ? y[i] + v : v; }

void reduce_rows_store(float acc[ROWS], uint r0) {
    uint tid = gl_LocalInvocationID.x;
    if (SUBGROUP_REDUCE) {
        [[unroll]] for (uint r = 0; r < ROWS; r++) acc[r] = subgroupAdd(acc[r]);
        if (gl_NumSubgroups == 1u) { // one subgroup: no shared memory, no barrier
            if (subgroupElect())
                [[unroll]] for (uint r = 0; r < ROWS; r++)
                    if (r0 + r < p.M) reduce_rows_put(p.row0 + r0 + r, acc[r]);
            return;
        }
        if (subgroupElect()) [[unroll]] for (uint r = 0; r < ROWS; r++) reduce_rows_buf[r * WG + gl_SubgroupID] = acc[r];
        barrier();
        if (tid < ROWS && r0 + tid < p.M) {
            float t = 0.0;
            for (uint i = 0; i < gl_NumSubgroups; i++) t += reduce_rows_buf[tid * WG + i];
            reduce_rows_put(p.row0 + r0 + tid, t);
        }
    } else {
        [[unroll]] for (uint r = 0; r < ROWS; r++) reduce_rows_buf[r * WG + tid] = acc[r];
        barrier();
        [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s) [[unroll]] for (uint r = 0; r < ROWS; r++) reduce_rows_buf[r * WG + tid] += reduce_rows_buf[r * WG + tid + s];
            barrier();
        }
        if (tid < ROWS && r0 + tid < p.M) reduce_rows_put(p.row0 + r0 + tid, reduce_rows_buf[tid * WG]);
    }
}
