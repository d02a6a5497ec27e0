// SPDX-License-Identifier: MIT
// Every compute pipeline vkphi uses, indexed by enum and created once per device,
// through the on-disk pipeline cache: those a model needs ahead, on worker threads
// while it loads (kernels_prepare), any other on first use. Tuning per vendor
// happens here, through specialization constants.
#pragma once
#include "buffer.h"
#include "pipeline.h"
#include "policy.h"

#include "quant_types.h"

// The weight types the matrix kernels take: every type core/quant_types.h marks as
// one vkphi runs, in its order. A family of weight kernels has one kernel per type.
enum kernel_wtype {
#define KERNEL_WTYPE(name, id, blck, bytes, runs) QUANT_IF_RUNS(runs, KW_##name, )
    QUANT_TYPES(KERNEL_WTYPE)
#undef KERNEL_WTYPE
    KW_COUNT
};

// The families of weight kernels, each built from a float source (F32, F16, BF16)
// and a quantized one (shaders/variants.txt: the `family` lines).
enum kernel_family {
    FAMILY_MATVEC,      // matrix-vector products, up to KERNEL_FEW_TOKENS tokens (matvec_f/q.comp)
    FAMILY_MATMUL,      // tiled matrix-matrix products (matmul_f/q.comp)
    FAMILY_MATMUL_H,    // the same tiles in packed f16 arithmetic (F16MATH); none for F32 weights
    FAMILY_MATMUL_COOP, // matrix-matrix products on cooperative matrices (matmul_coop.comp)
    FAMILY_COUNT
};

enum kernel_id {
    KERNEL_RMSNORM,
    KERNEL_ROPE,
    KERNEL_SWIGLU,
    KERNEL_KV_STORE_F16,
    KERNEL_KV_STORE_Q8,
    KERNEL_ATTN_DECODE_F16,
    KERNEL_ATTN_DECODE_Q8,
    KERNEL_ATTN_COMBINE,
    KERNEL_ATTN_PREFILL_F16,
    KERNEL_ATTN_PREFILL_Q8,
    // Prefill attention on cooperative matrices (shaders/attn_prefill_coop.comp).
    KERNEL_ATTN_PREFILL_COOP_F16,
    KERNEL_ATTN_PREFILL_COOP_Q8,
    // The weight kernels from here: family f, weight type t is KERNEL_WEIGHTS + f * KW_COUNT + t.
    KERNEL_WEIGHTS,
    KERNEL_COUNT = KERNEL_WEIGHTS + FAMILY_COUNT * KW_COUNT
};

// The weight kernel of a family for a weight type (enum ggml_type); KERNEL_COUNT
// when there is none (a type vkphi does not run, F32 in FAMILY_MATMUL_H).
enum kernel_id kernel_weights(enum kernel_family f, uint32_t type);
// The family of a weight kernel (FAMILY_COUNT for the others) and its weight type.
enum kernel_family kernel_family_of(enum kernel_id id);
uint32_t kernel_weight_type(enum kernel_id id); // enum ggml_type
// The shader a weight kernel is built from (tests build other tunings of it);
// NULL when there is none.
const struct shader_code *kernels_weight_shader(enum kernel_family f, uint32_t type);


// Values of k whose products common/matmul_tile.glsl sums in f16 before adding the
// sum into its f32 accumulator (the F16MATH builds): one f32 add per 4 f16 fmas.
// Longer chunks round more: on the Phi-4-mini-shaped reference file (the least
// margin) mean KL from exact math was 5.4e-5 at 1 (f16 inputs and products only),
// 8.8e-5 at 4, 1.3e-4 at 8 and 1.9e-4 at 16; on tiny-phi4-Q4_K_M 5.3e-6 to 2.2e-5
// (VKPHI_F16MATH=1 vkphi logits --ubatch 512 on Debian 12's lavapipe).
#define MATMUL_H_CHUNK 4

typedef struct kernels kernels;


kernels *kernels_create(device *d);
// What the device policy (policy.h) and the environment allow the choice of kernels
// (select.h), settled when the kernels are created: no dispatch reads the environment.
const kernel_policy *kernels_policy(const kernels *k);
// Most tokens one matrix-vector dispatch takes on this device (kernel_policy.matvec_tokens).
uint32_t kernels_few_tokens(const kernels *k);
// Another policy from now on (tests: each path on one device).
void kernels_set_policy(kernels *k, const kernel_policy *p);
void kernels_destroy(kernels *k); // also saves the pipeline cache
// The pipeline for id, created on first use; NULL (with the error set) on failure.
const pipeline *kernels_get(kernels *k, enum kernel_id id);
// The matrix-vector kernel id (FAMILY_MATVEC) specialized for exactly n_tokens
// tokens (1 .. KERNEL_FEW_TOKENS): no loop over unused token slots, which devices
// that run uniform branches with a mask (lavapipe) would pay for. Each token's
// sums are formed the same way at every count (batch invariance).
const pipeline *kernels_get_vec(kernels *k, enum kernel_id id, uint32_t n_tokens);
// The matrix-matrix kernel id (FAMILY_MATMUL or FAMILY_MATMUL_H) with a tile that fits n_tokens:
// up to 16 and up to 32 tokens get tiles of 16 and 32 tokens, so a short prompt does
// not pay for a 64-token tile. Every variant computes each output identically
// (common/matmul_tile.glsl), so results do not depend on the choice.
const pipeline *kernels_get_matmul(kernels *k, enum kernel_id id, uint32_t n_tokens);
// True when the device has the shared memory and workgroup size the kernel needs
// (pipeline creation refuses it otherwise), and for the cooperative-matrix kernels
// a matrix shape they can use (device_info.coopmat).
bool kernels_fit(const kernels *k, enum kernel_id id);
device *kernels_device(const kernels *k);
// Starts creating the pipelines ids[0..n) (those not made yet that the device can
// run) on worker threads and returns; kernels_get and kernels_destroy wait for
// them. Not thread-safe itself: call from the thread that owns k.
int kernels_prepare(kernels *k, const enum kernel_id *ids, uint32_t n);
// Waits for kernels_prepare's pipelines; the first failure's error, else 0.
int kernels_wait(kernels *k);
// The codebook grid that the kernels of an IQ type (quant_iq_type) bind as their
// fourth buffer, uploaded on first use.
int kernels_iq_grid(kernels *k, uint32_t type, buf_view *out);
