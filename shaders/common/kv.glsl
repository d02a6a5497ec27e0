// SPDX-License-Identifier: MIT
// KV-cache rows: one row of kv_dim values per (sequence, position), read as uints.
//   f16 (default): rows of kv_dim halves.
//   KV_Q8: rows of kv_dim int8 quants; after all n_rows rows, one f16 scale per 32
//   values (value = q * scale), so a row costs kv_dim + kv_dim/16 bytes.

#ifdef KV_Q8
#define KV_READ(buf, row, d, kv_dim, n_rows)                                                       \
    (float(bitfieldExtract(int(buf[((row) * (kv_dim) + (d)) >> 2]), int((((row) * (kv_dim) + (d)) & 3u) * 8u), 8)) * \
     kv_scale(buf[((n_rows) * (kv_dim) >> 2) + (((row) * ((kv_dim) >> 5) + ((d) >> 5)) >> 1)],                        \
              ((row) * ((kv_dim) >> 5) + ((d) >> 5)) & 1u))
#else
#define KV_READ(buf, row, d, kv_dim, n_rows) kv_half(buf[((row) * (kv_dim) + (d)) >> 1], ((row) * (kv_dim) + (d)) & 1u)
#endif

// An 8-bit block's f16 scale, by integer decoding (common/common.glsl).
float kv_scale(uint packed, uint which) { return f16_to_float(which != 0u ? packed >> 16 : packed); }

float kv_half(uint packed, uint which) {
    vec2 v = unpackHalf2x16(packed);
    return which != 0u ? v.y : v.x;
}
