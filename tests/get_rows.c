// SPDX-License-Identifier: MIT
#include "get_rows.h"

#include <stdlib.h>

#include "common.h"
#include "gguf.h"
#include "push_constants.h"
#include "push_get_rows.h"
#include "quant.h"
#include "quant_iq.h"

// The types vkphi runs (kernels.h's kernel_wtype order) and the lookup's build for
// each (cmake/shaders.cmake names them get_rows_<type>).
static const uint32_t types[KW_COUNT] = {
#define TYPE(name, id, blck, bytes, runs) QUANT_IF_RUNS(runs, GGML_TYPE_##name, )
    QUANT_TYPES(TYPE)
#undef TYPE
};
static const enum test_shader_id shaders[KW_COUNT] = {
#define SHADER(name, id, blck, bytes, runs) QUANT_IF_RUNS(runs, TEST_SHADER_GET_ROWS_##name, )
    QUANT_TYPES(SHADER)
#undef SHADER
};

struct get_rows {
    kernels *k;
    pipeline pipes[KW_COUNT];
    bool made[KW_COUNT];
};

static int type_index(uint32_t type) {
    for (int i = 0; i < KW_COUNT; i++)
        if (types[i] == type) return i;
    return -1;
}

const struct shader_code *get_rows_shader(uint32_t type) {
    int i = type_index(type);
    return i < 0 ? NULL : &test_shader_table[shaders[i]];
}

get_rows *get_rows_create(kernels *k) {
    get_rows *r = calloc(1, sizeof *r);
    if (!r) { vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory"); return NULL; }
    r->k = k;
    return r;
}

void get_rows_destroy(get_rows *r) {
    if (!r) return;
    for (int i = 0; i < KW_COUNT; i++)
        if (r->made[i]) pipeline_destroy(kernels_device(r->k), &r->pipes[i]);
    free(r);
}

// The pipeline of type index i: 64 threads; the codebook types bind their grid as a
// fourth buffer and copy it to shared memory (common/quant_iq_common.glsl).
static const pipeline *pipe_of(get_rows *r, int i) {
    if (!r->made[i]) {
        uint32_t words = 0;
        quant_iq_grid(types[i], &words);
        pipeline_desc d = {.code = &test_shader_table[shaders[i]], .n_bindings = words ? 4 : 3,
                           .push_size = sizeof(struct push_get_rows), .n_spec = 1, .spec = {64},
                           .shared_bytes = 4 * words};
        if (pipeline_create(kernels_device(r->k), NULL, &d, &r->pipes[i]) != VKPHI_OK) return NULL;
        r->made[i] = true;
    }
    return &r->pipes[i];
}

static uint32_t div_up(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

int get_rows_record(get_rows *r, cmd_ctx *c, const gpu_weight *w, buf_view ids, const int32_t *host_ids,
                    buf_view out, uint32_t n_tokens, uint32_t out_stride) {
    const int ti = type_index(w->type);
    if (ti < 0)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "no row-lookup kernel for weight type %s (%u)",
                          quant_type_name(w->type), w->type);
    const pipeline *p = pipe_of(r, ti);
    if (!p) return VKPHI_ERR_VULKAN;
    const device_info *info = device_get_info(cmd_device(c));
    uint64_t max_rows;
    int rc = gpu_weight_window_rows(info, w, &max_rows);
    if (rc) return rc;
    if (n_tokens == 0) return VKPHI_OK;
    if (n_tokens > info->max_workgroup_count[1])
        return vkphi_fail(VKPHI_ERR_ARG, "row lookup of %u tokens at once: the device takes at most %u", n_tokens,
                          info->max_workgroup_count[1]);
    if (out_stride < w->n_in || ids.range < (uint64_t)n_tokens * 4 ||
        out.range < ((uint64_t)(n_tokens - 1) * out_stride + w->n_in) * 4)
        return vkphi_fail(VKPHI_ERR_ARG, "row lookup of %u tokens of %u values: the id or output buffer is too small",
                          n_tokens, w->n_in);
    for (uint32_t t = 0; host_ids && t < n_tokens; t++)
        if (host_ids[t] < 0 || (uint32_t)host_ids[t] >= w->n_out)
            return vkphi_fail(VKPHI_ERR_ARG, "token id %d (position %u) is outside the %u rows of the table",
                              host_ids[t], t, w->n_out);
    // Quantized kernels take a part of 32 values per thread, float ones a value.
    uint32_t per_row = quant_block_elems(w->type) > 1 ? w->n_in / 32 : w->n_in;
    buf_view grid = {0}; // the codebook types' fourth buffer
    if (quant_iq_type(w->type) && (rc = kernels_iq_grid(r->k, w->type, &grid))) return rc;
    for (uint64_t row0 = 0; row0 < w->n_out; row0 += max_rows) {
        uint32_t rows = (uint32_t)(w->n_out - row0 < max_rows ? w->n_out - row0 : max_rows);
        bool needed = host_ids == NULL;
        for (uint32_t t = 0; !needed && t < n_tokens; t++) needed = (uint64_t)host_ids[t] - row0 < rows;
        if (!needed) continue;
        struct push_get_rows pc = {w->n_in, n_tokens, (uint32_t)row0, rows, out_stride};
        buf_view v[] = {gpu_weight_window(w, row0, rows), ids, out, grid};
        cmd_dispatch(c, p, v, quant_iq_type(w->type) ? 4 : 3, &pc, sizeof pc, div_up(per_row, p->local_size), n_tokens,
                     1);
    }
    return VKPHI_OK;
}
