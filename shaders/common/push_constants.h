// SPDX-License-Identifier: MIT
// The push-constant blocks of the shaders, each declared once here for GLSL and C
// (niagara's shared header): a shader writes
//     layout(push_constant) uniform P { PUSH_RMSNORM } p;
// and the C side fills a struct push_rmsnorm and gives sizeof(struct push_rmsnorm) as
// the pipeline's push size, so the two cannot drift apart. Fields are 4-byte scalars
// only, where GLSL's push-constant layout (std430) and C's agree on every offset.
// Included by runtime/gpu/bandwidth.c, runtime/kernels/ops.c and kernels.c, the tests
// and (through common/common.glsl) every shader; the tests' own kernels declare their
// blocks the same way (tests/shaders/).
#ifndef VKPHI_PUSH_CONSTANTS_H
#define VKPHI_PUSH_CONSTANTS_H

#ifdef GL_core_profile // GLSL (glslang defines it for #version 450); no C compiler does
#define PC_UINT uint
#define PC_FLOAT float
#else
#include <stdint.h>
#define PC_UINT uint32_t
#define PC_FLOAT float
#endif

// rmsnorm.comp: rows of n values, x_stride and o_stride floats apart.
#define PUSH_RMSNORM PC_UINT n; PC_UINT x_stride; PC_UINT o_stride; PC_FLOAT eps;

// rope.comp: n_heads heads of head_dim, the first n_rot dimensions rotated;
// neox: the halves pairing (else adjacent pairs).
#define PUSH_ROPE                                                                                                      \
    PC_UINT n_heads; PC_UINT head_dim; PC_UINT n_rot; PC_UINT x_stride; PC_UINT head_offset; PC_UINT pos0;             \
    PC_UINT n_tokens; PC_UINT neox;

// swiglu.comp: ff outputs per token from the gate/up row of 2 ff.
#define PUSH_SWIGLU PC_UINT ff; PC_UINT n_tokens; PC_UINT x_stride; PC_UINT o_stride;

// kv_store.comp.
#define PUSH_KV_STORE                                                                                                  \
    PC_UINT kv_dim; PC_UINT qkv_stride; PC_UINT k_offset; PC_UINT n_tokens; PC_UINT row0; PC_UINT n_rows;

// attn_decode.comp.
#define PUSH_ATTN_DECODE                                                                                               \
    PC_UINT n_head; PC_UINT n_head_kv; PC_UINT head_dim; PC_UINT kv_dim; PC_UINT n_rows; PC_UINT chunk;                \
    PC_UINT max_chunks; PC_FLOAT scale; PC_UINT qkv_stride; PC_UINT k_offset; PC_UINT n_rot; PC_UINT neox;

// attn_combine.comp.
#define PUSH_ATTN_COMBINE PC_UINT head_dim; PC_UINT max_chunks; PC_UINT chunk; PC_UINT out_stride; PC_UINT n_head;

// attn_prefill.comp and attn_prefill_coop.comp.
#define PUSH_ATTN_PREFILL                                                                                              \
    PC_UINT n_head; PC_UINT n_head_kv; PC_UINT head_dim; PC_UINT kv_dim; PC_UINT qkv_stride; PC_UINT o_stride;         \
    PC_UINT n_tokens; PC_UINT pos0; PC_UINT row0; PC_UINT n_rows; PC_FLOAT scale;

// The matrix-vector kernels (common/matvec_common.glsl): y rows row0.. of M, K
// values per row; add: y += W x (mode 0); tokens (at most the kernel's count) and
// their row strides in floats; x_off: where x starts in its binding, in floats (a
// multiple of 4); mode 0 plain, 1 RMSNorm first, 2 RMSNorm and SwiGLU; eps of the norm.
#define PUSH_MATVEC                                                                                                    \
    PC_UINT K; PC_UINT M; PC_UINT row0; PC_UINT add; PC_UINT n_tokens; PC_UINT x_stride; PC_UINT y_stride;             \
    PC_UINT x_off; PC_UINT mode; PC_FLOAT eps; PC_UINT pad0; PC_UINT pad1;

// The tiled matrix-matrix kernels (common/matmul_tile.glsl, matmul_coop.comp): M rows
// of K values times N tokens; add: y += W x; x_off: where x starts in its binding, in
// floats.
#define PUSH_MATMUL                                                                                                    \
    PC_UINT K; PC_UINT M; PC_UINT N; PC_UINT x_stride; PC_UINT y_stride; PC_UINT row0; PC_UINT add; PC_UINT x_off;

// bandwidth.comp: vectors to read.
#define PUSH_BANDWIDTH PC_UINT n;

#ifndef GL_core_profile
struct push_rmsnorm { PUSH_RMSNORM };
struct push_rope { PUSH_ROPE };
struct push_swiglu { PUSH_SWIGLU };
struct push_kv_store { PUSH_KV_STORE };
struct push_attn_decode { PUSH_ATTN_DECODE };
struct push_attn_combine { PUSH_ATTN_COMBINE };
struct push_attn_prefill { PUSH_ATTN_PREFILL };
struct push_matvec { PUSH_MATVEC };
struct push_matmul { PUSH_MATMUL };
struct push_bandwidth { PUSH_BANDWIDTH };
#endif

#endif
