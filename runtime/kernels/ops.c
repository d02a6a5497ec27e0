// SPDX-License-Identifier: MIT
#include "ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "push_constants.h"
#include "quant.h"
#include "quant_iq.h"
#include "repack.h"
#include "select.h"

#define MAX_GROUPS_X 65535u

static uint32_t div_up(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

// Dispatches n_groups workgroups over a 2D grid (x at most 65535): shaders use flat_group().
static void dispatch_flat(cmd_ctx *c, const pipeline *p, const buf_view *v, uint32_t nv, const void *push,
                          uint32_t push_size, uint32_t n_groups) {
    uint32_t gx = n_groups < MAX_GROUPS_X ? n_groups : MAX_GROUPS_X;
    cmd_dispatch(c, p, v, nv, push, push_size, gx, div_up(n_groups, gx), 1);
}

#define GET_PIPE(p, k, id)                                                                 \
    const pipeline *p = kernels_get(k, id);                                                \
    if (!p) return VKPHI_ERR_VULKAN

int op_rmsnorm(cmd_ctx *c, kernels *k, buf_view x, buf_view w, buf_view out, uint32_t n_rows, uint32_t n,
               uint32_t x_stride, uint32_t out_stride, float eps) {
    GET_PIPE(p, k, KERNEL_RMSNORM);
    if (n_rows > MAX_GROUPS_X) return vkphi_fail(VKPHI_ERR_ARG, "rmsnorm over %u rows: at most %u", n_rows, MAX_GROUPS_X);
    struct push_rmsnorm pc = {n, x_stride, out_stride, eps};
    buf_view v[] = {x, w, out};
    cmd_dispatch(c, p, v, 3, &pc, sizeof pc, n_rows, 1, 1);
    return VKPHI_OK;
}

void rope_table_fill(float *table, uint32_t n_pos, const rope_spec *r) {
    uint32_t half = r->n_rot / 2;
    for (uint32_t i = 0; i < half; i++) {
        double inv_freq = pow(r->base, -2.0 * i / r->n_rot);
        if (r->factors) inv_freq /= r->factors[i]; // LongRoPE; without it, the table Phi-4 always had
        for (uint32_t pos = 0; pos < n_pos; pos++) {
            double a = pos * inv_freq;
            table[2 * ((size_t)pos * half + i)] = (float)(cos(a) * r->attn_factor);
            table[2 * ((size_t)pos * half + i) + 1] = (float)(sin(a) * r->attn_factor);
        }
    }
}

int op_rope(cmd_ctx *c, kernels *k, buf_view x, buf_view table, uint32_t n_tokens, uint32_t n_heads,
            uint32_t head_dim, uint32_t x_stride, uint32_t head_offset, uint32_t pos0, const rope_spec *r) {
    GET_PIPE(p, k, KERNEL_ROPE);
    if ((uint64_t)(pos0 + n_tokens) * (r->n_rot / 2) * 8 > table.range)
        return vkphi_fail(VKPHI_ERR_ARG, "rope: position %u is past the end of the table", pos0 + n_tokens - 1);
    struct push_rope pc = {n_heads, head_dim, r->n_rot, x_stride, head_offset, pos0, n_tokens, r->neox};
    buf_view v[] = {x, table};
    cmd_dispatch(c, p, v, 2, &pc, sizeof pc, div_up((uint64_t)n_heads * (r->n_rot / 2), p->local_size), n_tokens, 1);
    return VKPHI_OK;
}

int op_swiglu(cmd_ctx *c, kernels *k, buf_view x, buf_view out, uint32_t n_tokens, uint32_t ff, uint32_t x_stride,
              uint32_t out_stride) {
    GET_PIPE(p, k, KERNEL_SWIGLU);
    struct push_swiglu pc = {ff, n_tokens, x_stride, out_stride};
    buf_view v[] = {x, out};
    cmd_dispatch(c, p, v, 2, &pc, sizeof pc, div_up(ff, p->local_size), n_tokens, 1);
    return VKPHI_OK;
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) { uint64_t t = a % b; a = b; b = t; }
    return a;
}

// The rows per window: as many as fit in one storage-buffer range, a multiple of
// the count that keeps each window's byte offset aligned for binding (rows in the
// device layout, runtime/core/repack.h: quantized rows are multiples of 16 bytes, float
// rows of 2 or 4: the gcd finds the step).
int gpu_weight_window_rows(const device_info *info, const gpu_weight *w, uint64_t *max_rows) {
    if (w->n_in == 0 || w->row_bytes == 0 || w->row_bytes != repack_row_bytes(w->type, w->n_in))
        return vkphi_fail(VKPHI_ERR_ARG, "a %s weight of %u x %u with %llu-byte rows: rows of %u %s values take %llu bytes",
                          quant_type_name(w->type), w->n_out, w->n_in, (unsigned long long)w->row_bytes, w->n_in,
                          quant_type_name(w->type), (unsigned long long)repack_row_bytes(w->type, w->n_in));
    if ((uint64_t)w->n_out * w->row_bytes > w->buf->size || w->offset > w->buf->size - (uint64_t)w->n_out * w->row_bytes)
        return vkphi_fail(VKPHI_ERR_ARG, "a %u x %u %s weight at offset %llu runs past the end of its %llu-byte buffer",
                          w->n_out, w->n_in, quant_type_name(w->type), (unsigned long long)w->offset,
                          (unsigned long long)w->buf->size);
    // Windows start on 16-byte boundaries (at least): shaders read weights in 16-byte
    // words, and a window of whole words then never reaches past its buffer, whose
    // size buffer_create rounds to 16 bytes.
    uint64_t align = device_binding_align(info);
    uint64_t row_step = align / gcd64(w->row_bytes, align);
    *max_rows = (info->max_storage_buffer_range & ~15ull) / w->row_bytes;
    *max_rows -= *max_rows % row_step;
    if (*max_rows == 0)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "a weight row of %llu bytes exceeds the device's storage-buffer range",
                          (unsigned long long)w->row_bytes);
    if ((w->offset % align) != 0)
        return vkphi_fail(VKPHI_ERR_ARG, "weight offset %llu is not aligned to %llu bytes",
                          (unsigned long long)w->offset, (unsigned long long)align);
    return VKPHI_OK;
}

// In whole 16-byte words: shaders read weights as uvec4 (F16 and BF16 rows may end
// mid-word).
buf_view gpu_weight_window(const gpu_weight *w, uint64_t row0, uint32_t rows) {
    buf_view wv = buf_sub(w->buf, w->offset + row0 * w->row_bytes, rows * w->row_bytes);
    wv.range = (wv.range + 15) & ~15ull;
    if (wv.offset + wv.range > w->buf->size) wv.range = w->buf->size - wv.offset;
    return wv;
}

// A view that may start anywhere, bound from the aligned offset at or below its
// start (devices require 16 to 256 bytes); *delta gets the floats in between,
// which the kernel adds to its indices (push constants, not sub-views).
static int view_aligned(const device_info *info, buf_view *v, uint32_t *delta) {
    uint64_t a = device_binding_align(info);
    uint64_t base = v->offset - v->offset % a;
    *delta = (uint32_t)((v->offset - base) / 4);
    v->range += v->offset - base;
    v->offset = base;
    if (v->offset + v->range > v->buf->size) v->range = v->buf->size - v->offset;
    if (v->range > info->max_storage_buffer_range)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "an activation window of %llu bytes exceeds the device's storage-buffer "
                          "range (%llu bytes)", (unsigned long long)v->range,
                          (unsigned long long)info->max_storage_buffer_range);
    return VKPHI_OK;
}

// Tokens in the chunk from t0 of n_tokens that the matrix-vector kernels take at once.
static uint32_t vec_chunk(const kernels *k, uint32_t n_tokens, uint32_t t0) {
    const uint32_t few = kernels_few_tokens(k);
    return n_tokens - t0 < few ? n_tokens - t0 : few;
}

// y = W x (add: y += W x) over n_tokens token rows, by the kernel select.c chooses;
// vec_only: the matrix-vector kernel whatever the count (kernels_choose_matvec).
static int matmul(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
                  uint32_t x_stride, uint32_t y_stride, uint32_t add, bool vec_only) {
    matmul_choice ch; // (x's rows start on 16-byte boundaries where its offset does: bindings align to 16 or more)
    int rc = vec_only ? kernels_choose_matvec(k, w->type, n_tokens, &ch)
                      : kernels_choose_matmul(k, w->type, n_tokens, x_stride % 4 == 0, x.offset % 16 == 0, &ch);
    if (rc) return rc;
    if (vec_only && (x_stride % 4 || x.offset % 16))
        return vkphi_fail(VKPHI_ERR_ARG, "the matrix-vector kernels need x rows on 16-byte boundaries");
    const device_info *info = device_get_info(cmd_device(c));
    if (ch.path == MATMUL_VEC_CHUNKS) { // the matrix-vector kernel, a chunk of tokens at a time
        for (uint32_t t0 = 0; t0 < n_tokens; t0 += kernels_few_tokens(k)) {
            uint64_t xo = 4ull * t0 * x_stride, yo = 4ull * t0 * y_stride;
            buf_view xc = {x.buf, x.offset + xo, x.range > xo ? x.range - xo : 0};
            buf_view yc = {y.buf, y.offset + yo, y.range > yo ? y.range - yo : 0};
            if ((rc = matmul(c, k, w, xc, yc, vec_chunk(k, n_tokens, t0), x_stride, y_stride, add, vec_only))) return rc;
        }
        return VKPHI_OK;
    }
    uint32_t x_off, y_off;
    rc = view_aligned(info, &x, &x_off);
    if (!rc) rc = view_aligned(info, &y, &y_off);
    if (rc) return rc;
    // The tiled kernel's tile narrows for short prompts (each output is summed the same
    // way at every tile).
    const bool vec = ch.path == MATMUL_VEC, coop = ch.path == MATMUL_COOP;
    const pipeline *p = vec ? kernels_get_vec(k, ch.id, n_tokens)
                            : coop ? kernels_get(k, ch.id) : kernels_get_matmul(k, ch.id, n_tokens);
    if (!p) return VKPHI_ERR_VULKAN;
    uint64_t max_rows;
    rc = gpu_weight_window_rows(info, w, &max_rows);
    if (rc) return rc;
    buf_view grid = x; // the codebook types' fourth buffer (x stands in for the others)
    if (quant_iq_type(w->type) && (rc = kernels_iq_grid(k, w->type, &grid))) return rc;
    const uint32_t nv = quant_iq_type(w->type) ? 4 : 3;
    for (uint64_t row0 = 0; row0 < w->n_out; row0 += max_rows) {
        uint32_t rows = (uint32_t)(w->n_out - row0 < max_rows ? w->n_out - row0 : max_rows);
        // (binding 4, the norm weight, is unused here)
        buf_view v[] = {gpu_weight_window(w, row0, rows), x, y, grid, x};
        if (vec) {
            struct push_matvec pc = {w->n_in, rows, y_off + (uint32_t)row0, add, n_tokens, x_stride, y_stride, x_off, 0, 0};
            dispatch_flat(c, p, v, 5, &pc, sizeof pc, div_up(rows, p->spec[1])); // spec[1]: rows per workgroup
        } else {
            struct push_matmul pc = {w->n_in, rows, n_tokens, x_stride, y_stride, y_off + (uint32_t)row0, add, x_off};
            // The tile's rows and tokens: spec[1], spec[2] (kernels.c); cooperative: 4 TM x 4 TN.
            uint32_t bm = coop ? 4 * p->spec[1] : p->spec[1], bn = coop ? 4 * p->spec[2] : p->spec[2];
            cmd_dispatch(c, p, v, nv, &pc, sizeof pc, div_up(rows, bm), div_up(n_tokens, bn), 1);
        }
    }
    return VKPHI_OK;
}

bool op_matvec_glu_fits(const device_info *info, const gpu_weight *w) {
    uint64_t max_rows = 0;
    return gpu_weight_window_rows(info, w, &max_rows) == VKPHI_OK && max_rows >= w->n_out;
}

int op_matvec_norm(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view norm, buf_view y,
                   uint32_t n_tokens, uint32_t x_stride, uint32_t y_stride, float eps, bool glu) {
    const device_info *info = device_get_info(cmd_device(c));
    matmul_choice ch; // the fused forms are matrix-vector kernels
    int rc = kernels_choose_matvec(k, w->type, n_tokens, &ch);
    if (rc) return rc;
    uint32_t x_off, y_off;
    rc = view_aligned(info, &x, &x_off);
    if (!rc) rc = view_aligned(info, &y, &y_off);
    if (rc) return rc;
    if (x_off % 4 || x_stride % 4 || norm.offset % info->min_storage_offset_align)
        return vkphi_fail(VKPHI_ERR_ARG, "a fused matrix-vector product needs x rows and the norm weight on 16-byte "
                          "boundaries");
    uint64_t max_rows;
    if ((rc = gpu_weight_window_rows(info, w, &max_rows))) return rc;
    if (glu && (w->n_out % 2 || max_rows < w->n_out))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the fused gate/up kernel needs the whole %u-row weight in one binding",
                          w->n_out);
    buf_view grid = x;
    if (quant_iq_type(w->type) && (rc = kernels_iq_grid(k, w->type, &grid))) return rc;
    for (uint32_t t0 = 0; t0 < n_tokens; t0 += kernels_few_tokens(k)) {
        uint32_t n = vec_chunk(k, n_tokens, t0);
        const pipeline *p = kernels_get_vec(k, ch.id, n);
        if (!p) return VKPHI_ERR_VULKAN;
        uint32_t rows_per_group = glu ? p->spec[1] / 2 : p->spec[1];
        if (rows_per_group == 0) // (kernels.c gives the gate/up kernel pairs of rows)
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the fused gate/up kernel needs an even number of rows per workgroup");
        uint32_t xo = x_off + t0 * x_stride, yo = y_off + t0 * y_stride;
        if (glu) {
            buf_view v[] = {gpu_weight_window(w, 0, w->n_out), x, y, grid, norm};
            struct push_matvec pc = {w->n_in, w->n_out / 2, yo, 0, n, x_stride, y_stride, xo, 2, eps};
            dispatch_flat(c, p, v, 5, &pc, sizeof pc, div_up(w->n_out / 2, rows_per_group));
            continue;
        }
        for (uint64_t row0 = 0; row0 < w->n_out; row0 += max_rows) {
            uint32_t rows = (uint32_t)(w->n_out - row0 < max_rows ? w->n_out - row0 : max_rows);
            buf_view v[] = {gpu_weight_window(w, row0, rows), x, y, grid, norm};
            struct push_matvec pc = {w->n_in, rows, yo + (uint32_t)row0, 0, n, x_stride, y_stride, xo, 1, eps};
            dispatch_flat(c, p, v, 5, &pc, sizeof pc, div_up(rows, rows_per_group));
        }
    }
    return VKPHI_OK;
}

int op_matmul(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
              uint32_t x_stride, uint32_t y_stride) {
    return matmul(c, k, w, x, y, n_tokens, x_stride, y_stride, 0, false);
}

int op_matmul_add(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
                  uint32_t x_stride, uint32_t y_stride) {
    return matmul(c, k, w, x, y, n_tokens, x_stride, y_stride, 1, false);
}

// ---- attention ----

// KV positions per decode workgroup: small enough that a long context spreads over
// many workgroups, large enough that the merge stays cheap.
#define ATTN_CHUNK 256u

uint64_t kv_layer_bytes(uint32_t kv_dim, uint32_t n_rows, bool q8) {
    if (!q8) return (uint64_t)n_rows * kv_dim * 2;
    uint64_t n_scales = (uint64_t)n_rows * (kv_dim / 32);
    return (uint64_t)n_rows * kv_dim + ((n_scales + 1) / 2) * 4;
}

static int attn_check(const attn_shape *a) {
    if (a->head_dim > 128 || a->head_dim % 4 || a->n_head % a->n_head_kv || a->n_head / a->n_head_kv > 8)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "attention with head dim %u and %u query heads per KV head is not supported "
                          "(at most 128, a multiple of 4, and 8)", a->head_dim, a->n_head / a->n_head_kv);
    return VKPHI_OK;
}

int op_kv_store(cmd_ctx *c, kernels *k, const kv_layer *kv, buf_view qkv, uint32_t qkv_stride, uint32_t k_offset,
                uint32_t n_tokens, uint32_t row0) {
    GET_PIPE(p, k, kv->q8 ? KERNEL_KV_STORE_Q8 : KERNEL_KV_STORE_F16);
    struct push_kv_store pc = {kv->kv_dim, qkv_stride, k_offset, n_tokens, row0, kv->n_rows};
    buf_view v[] = {qkv, buf_all(kv->k), buf_all(kv->v)};
    uint64_t items = (uint64_t)n_tokens * (kv->q8 ? kv->kv_dim / 32 : kv->kv_dim / 2);
    dispatch_flat(c, p, v, 3, &pc, sizeof pc, div_up(items, p->local_size));
    return VKPHI_OK;
}

uint32_t attn_decode_chunks(uint32_t kv_len) { return div_up(kv_len, ATTN_CHUNK); }

uint64_t attn_decode_part_bytes(const attn_shape *a, uint32_t max_kv_len, uint32_t n_tokens) {
    return (uint64_t)n_tokens * a->n_head * div_up(max_kv_len, ATTN_CHUNK) * (a->head_dim + 2) * 4;
}

int op_attn_decode(cmd_ctx *c, kernels *k, const kv_layer *kv, const attn_shape *a, const attn_decode_args *d) {
    int rc = attn_check(a);
    if (rc) return rc;
    if (d->rope->n_rot > a->head_dim || d->rope->n_rot % 2)
        return vkphi_fail(VKPHI_ERR_ARG, "RoPE over %u of %u head dimensions", d->rope->n_rot, a->head_dim);
    if (kv->q8 && a->head_dim % 32)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "an 8-bit KV cache needs heads of a multiple of 32 values");
    GET_PIPE(p, k, kv->q8 ? KERNEL_ATTN_DECODE_Q8 : KERNEL_ATTN_DECODE_F16);
    GET_PIPE(pc2, k, KERNEL_ATTN_COMBINE);
    uint32_t max_chunks = div_up(d->max_kv_len, ATTN_CHUNK);
    struct push_attn_decode pc = {a->n_head, a->n_head_kv, a->head_dim, kv->kv_dim, kv->n_rows, ATTN_CHUNK,
                                  max_chunks, a->scale, d->qkv_stride, d->k_offset, d->rope->n_rot, d->rope->neox};
    buf_view v[] = {d->qkv, buf_all(kv->k), buf_all(kv->v), d->part, d->tokens, d->rope_table};
    if (d->indirect.buf)
        cmd_dispatch_indirect(c, p, v, 6, &pc, sizeof pc, d->indirect);
    else
        cmd_dispatch(c, p, v, 6, &pc, sizeof pc, attn_decode_chunks(d->grid_kv_len), a->n_head_kv, d->n_tokens);
    cmd_barrier(c);
    struct push_attn_combine cc = {a->head_dim, max_chunks, ATTN_CHUNK, d->out_stride, a->n_head};
    buf_view v2[] = {d->part, d->out, d->tokens};
    cmd_dispatch(c, pc2, v2, 3, &cc, sizeof cc, a->n_head, d->n_tokens, 1);
    return VKPHI_OK;
}

int op_attn_prefill(cmd_ctx *c, kernels *k, const kv_layer *kv, const attn_shape *a, buf_view qkv, uint32_t qkv_stride,
                    buf_view out, uint32_t out_stride, uint32_t n_tokens, uint32_t pos0, uint32_t row0) {
    int rc = attn_check(a);
    if (rc) return rc;
    const enum kernel_id id = kernels_choose_attn_prefill(k, kv->q8, a->head_dim);
    const bool coop = id == KERNEL_ATTN_PREFILL_COOP_F16 || id == KERNEL_ATTN_PREFILL_COOP_Q8;
    GET_PIPE(p, k, id);
    struct push_attn_prefill pc = {a->n_head, a->n_head_kv, a->head_dim, kv->kv_dim, qkv_stride, out_stride,
                                   n_tokens, pos0, row0, kv->n_rows, a->scale};
    buf_view v[] = {qkv, buf_all(kv->k), buf_all(kv->v), out};
    if (coop) { // 16 queries per tile
        cmd_dispatch(c, p, v, 4, &pc, sizeof pc, div_up(n_tokens, 16), a->n_head, 1);
        return VKPHI_OK;
    }
    // A workgroup per (tile of spec[1] / G tokens, KV head): its rows are those
    // tokens x the G query heads of that KV head (attn_check keeps G <= 8 <= spec[1]).
    uint32_t tokens_per_tile = p->spec[1] / (a->n_head / a->n_head_kv);
    cmd_dispatch(c, p, v, 4, &pc, sizeof pc, div_up(n_tokens, tokens_per_tile), a->n_head_kv, 1);
    return VKPHI_OK;
}

int op_matvec_add(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
                  uint32_t x_stride, uint32_t y_stride) {
    return matmul(c, k, w, x, y, n_tokens, x_stride, y_stride, 1, true);
}
