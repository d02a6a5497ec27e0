// SPDX-License-Identifier: MIT
// The tensor element types of GGUF files: the one table that names them, sizes
// their blocks and says which of them vkphi runs. Everything else that lists types
// (the CPU block formats, the kernels, the shader variants) follows this table.
// No Vulkan here.
#pragma once
#include <stdbool.h>
#include <stdint.h>

// X(NAME, ggml number, values per block, bytes per block, runs): every type ggml
// can put in a GGUF file, numbered as ggml numbers them. Holes (4, 5, 31..33,
// 36..38) are types ggml removed; they stay unknown. runs (yes or no): vkphi
// dequantizes it on the CPU and has GPU kernels for it; the kernel registry
// (kernels/kernels.h) and the shader builds (cmake/shaders.cmake reads this table)
// follow the types marked yes, in this order. Types of one value per block are the
// float types.
#define QUANT_TYPES(X)                                                                                                 \
    X(F32, 0, 1, 4, yes)                                                                                               \
    X(F16, 1, 1, 2, yes)                                                                                               \
    X(Q4_0, 2, 32, 18, yes)                                                                                            \
    X(Q4_1, 3, 32, 20, yes)                                                                                            \
    X(Q5_0, 6, 32, 22, yes)                                                                                            \
    X(Q5_1, 7, 32, 24, yes)                                                                                            \
    X(Q8_0, 8, 32, 34, yes)                                                                                            \
    X(Q8_1, 9, 32, 36, no)                                                                                             \
    X(Q2_K, 10, 256, 84, yes)                                                                                          \
    X(Q3_K, 11, 256, 110, yes)                                                                                         \
    X(Q4_K, 12, 256, 144, yes)                                                                                         \
    X(Q5_K, 13, 256, 176, yes)                                                                                         \
    X(Q6_K, 14, 256, 210, yes)                                                                                         \
    X(Q8_K, 15, 256, 292, no)                                                                                          \
    X(IQ2_XXS, 16, 256, 66, yes)                                                                                       \
    X(IQ2_XS, 17, 256, 74, yes)                                                                                        \
    X(IQ3_XXS, 18, 256, 98, yes)                                                                                       \
    X(IQ1_S, 19, 256, 50, yes)                                                                                         \
    X(IQ4_NL, 20, 32, 18, yes)                                                                                         \
    X(IQ3_S, 21, 256, 110, yes)                                                                                        \
    X(IQ2_S, 22, 256, 82, yes)                                                                                         \
    X(IQ4_XS, 23, 256, 136, yes)                                                                                       \
    X(I8, 24, 1, 1, no)                                                                                                \
    X(I16, 25, 1, 2, no)                                                                                               \
    X(I32, 26, 1, 4, no)                                                                                               \
    X(I64, 27, 1, 8, no)                                                                                               \
    X(F64, 28, 1, 8, no)                                                                                               \
    X(IQ1_M, 29, 256, 56, yes)                                                                                         \
    X(BF16, 30, 1, 2, yes)                                                                                             \
    X(TQ1_0, 34, 256, 54, no)                                                                                          \
    X(TQ2_0, 35, 256, 66, no)                                                                                          \
    X(MXFP4, 39, 32, 17, no)

// In an X macro over QUANT_TYPES: the arguments after `runs` where runs is yes,
// nothing where it is no (lists of the types vkphi runs).
#define QUANT_IF_RUNS(runs, ...) QUANT_IF_RUNS_##runs(__VA_ARGS__)
#define QUANT_IF_RUNS_yes(...) __VA_ARGS__
#define QUANT_IF_RUNS_no(...)

// Tensor element types, numbered as ggml numbers them in GGUF files.
enum ggml_type {
#define QUANT_TYPE_ENUM(name, id, blck, bytes, runs) GGML_TYPE_##name = id,
    QUANT_TYPES(QUANT_TYPE_ENUM)
#undef QUANT_TYPE_ENUM
    GGML_TYPE_COUNT = 40, // bound for tables; not every value below is a known type
};

#define QUANT_QK_K 256 // values per K-quant super-block

// Type facts; `type` is a ggml type number.
bool quant_type_known(uint32_t type);     // ggml defines it and we know its block size
bool quant_type_supported(uint32_t type); // one of the types vkphi runs
const char *quant_type_name(uint32_t type); // "Q4_K"; "unknown" when not known
int quant_type_from_name(const char *name); // case-insensitive; -1 when unknown
uint32_t quant_block_elems(uint32_t type);  // values per block; 0 when unknown
uint32_t quant_block_bytes(uint32_t type);  // bytes per block; 0 when unknown
double quant_bits_per_weight(uint32_t type); // 0 when unknown
// Bytes of a row of n values; 0 when the type is unknown, n is not a multiple of
// the block size, or the result would overflow.
uint64_t quant_row_bytes(uint32_t type, uint64_t n);
