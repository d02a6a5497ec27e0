// SPDX-License-Identifier: MIT
// Phi-4 on Vulkan: load, memory plan, resident weights, KV cache. The forward pass
// is forward.c; the struct both share is model_internal.h.
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buffer.h"
#include "commands.h"
#include "common.h"
#include "device.h"
#include "kernels.h"
#include "memory_plan.h"
#include "model_config.h"
#include "model_internal.h"
#include "ops.h"
#include "quant.h"
#include "repack.h"
#include "select.h"

// ---- load ----

// Bytes of t on the device: its rows in the device layout (runtime/core/repack.h).
static uint64_t tensor_device_bytes(const gguf_tensor *t) {
    uint64_t rb = quant_row_bytes(t->type, t->ne[0]);
    return rb ? repack_tensor_bytes(t->type, t->ne[0], t->size / rb) : t->size;
}

// Writes t's rows into out in the device layout: straight into a mapped buffer,
// else through a bounded host buffer of whole rows (a model can be larger than
// host memory; the file's pages are only read).
static int upload_rows(model *m, const gguf_tensor *t, gpu_buffer *out) {
    const uint64_t n = t->ne[0], file_rb = quant_row_bytes(t->type, n), dev_rb = repack_row_bytes(t->type, n);
    const uint64_t rows = t->size / file_rb;
    if (file_rb == dev_rb) return buffer_write(m->dev, out, 0, t->data, t->size); // not repacked
    if (out->mapped) {
        repack_rows(t->type, t->data, out->mapped, n, rows);
        return VKPHI_OK;
    }
    const uint64_t chunk_bytes = 8u << 20;
    uint64_t chunk = chunk_bytes / dev_rb ? chunk_bytes / dev_rb : 1;
    if (chunk > rows) chunk = rows;
    uint8_t *buf = malloc(chunk * dev_rb);
    if (!buf) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory repacking tensor %s", t->name);
    int rc = VKPHI_OK;
    for (uint64_t r = 0; !rc && r < rows; r += chunk) {
        uint64_t k = rows - r < chunk ? rows - r : chunk;
        repack_rows(t->type, (const uint8_t *)t->data + r * file_rb, buf, n, k);
        rc = buffer_write(m->dev, out, r * dev_rb, buf, k * dev_rb);
    }
    free(buf);
    return rc;
}

static int upload_tensor(model *m, const gguf_tensor *t, enum mem_place where, gpu_buffer *out) {
    const uint64_t bytes = tensor_device_bytes(t);
    int rc = mem_arena_buffer(m->arena, where, bytes, t->name, out);
    if (rc) return rc;
    rc = upload_rows(m, t, out);
    if (rc) return rc;
    // On unified memory, or in host-visible memory, the buffer is the only copy we
    // need: drop the file's pages from host memory (clean, they come back if read).
    if (device_get_info(m->dev)->unified_memory || where == MEM_HOST) {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)t->data + page - 1) & ~(page - 1), b = ((uintptr_t)t->data + t->size) & ~(page - 1);
        if (b > a) posix_madvise((void *)a, b - a, POSIX_MADV_DONTNEED);
    }
    m->weight_bytes += bytes;
    return VKPHI_OK;
}

static int load_weight(model *m, const char *name, enum mem_place where, gpu_weight *w, uint32_t *done,
                       uint32_t total) {
    const gguf_tensor *t = gguf_find_tensor(m->f, name);
    gpu_buffer *b = &m->tensors[m->n_tensors++];
    int rc = upload_tensor(m, t, where, b);
    if (rc) return rc;
    *w = (gpu_weight){b, 0, t->type, (uint32_t)t->ne[0], (uint32_t)t->ne[1], repack_row_bytes(t->type, t->ne[0])};
    if (!kernels_matmul_supports(t->type))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "tensor %s has type %s, which the GPU kernels do not run yet", name,
                          quant_type_name(t->type));
    if (m->params.on_progress) m->params.on_progress((double)++*done / total, m->params.progress_user);
    return VKPHI_OK;
}

static int load_norm(model *m, const char *name, enum mem_place where, gpu_buffer *b) {
    const gguf_tensor *t = gguf_find_tensor(m->f, name);
    if (t->type != GGML_TYPE_F32)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "norm tensor %s is %s; vkphi expects F32", name, quant_type_name(t->type));
    return upload_tensor(m, t, where, b);
}

// Starts creating, on worker threads, the pipelines this model's forward pass uses
// (kernels.h): the attention and elementwise kernels, and the matrix kernels of
// each weight type it holds. Any not listed is still made on first use.
static int prepare_kernels(model *m) {
    kernel_needs needs = {.kv_q8 = m->params.kv == KV_Q8_0, .head_dim = m->cfg.head_dim};
    model_matrix_types(m->f, needs.types);
    enum kernel_id ids[KERNEL_COUNT];
    return kernels_prepare(m->k, ids, kernels_model_list(m->k, &needs, ids));
}

// Every scratch buffer and its size for one ubatch of B = n_ubatch tokens at a
// context of n_ctx: the memory plan and the allocation both read this one list.
// (The logits buffers grow on demand: forward_ensure_logit_rows.)
struct scratch { gpu_buffer *b; uint64_t bytes; enum buffer_kind kind; const char *what; };
#define N_SCRATCH 11
static void scratch_list(model *m, uint32_t n_ctx, struct scratch s[N_SCRATCH]) {
    const model_config *c = &m->cfg;
    uint64_t B = m->n_ubatch;
    uint32_t D = m->n_seq < B ? m->n_seq : (uint32_t)B; // tokens of one decode step
    attn_shape a = {c->n_head, c->n_head_kv, c->head_dim, 0};
    struct scratch list[N_SCRATCH] = {
        {&m->x, 4 * B * c->n_embd, BUFFER_DEVICE, "the residual stream"},
        {&m->xn, 4 * B * c->n_embd, BUFFER_DEVICE, "the normed activations"},
        {&m->qkv, 4 * B * m->qkv_dim, BUFFER_DEVICE, "the QKV activations"},
        {&m->attn, 4 * B * c->n_embd, BUFFER_DEVICE, "the attention output"},
        {&m->up, 8 * B * c->n_ff, BUFFER_DEVICE, "the FFN gate/up activations"},
        {&m->act, 4 * B * c->n_ff, BUFFER_DEVICE, "the FFN activations"},
        {&m->tmp, 4 * B * c->n_embd, BUFFER_DEVICE, "a scratch buffer"},
        {&m->part, attn_decode_part_bytes(&a, n_ctx, D), BUFFER_DEVICE, "the attention partials"},
        {&m->rope, 4ull * n_ctx * c->n_rot, BUFFER_DEVICE, "the RoPE table"}, // (cos, sin) per position and pair
        {&m->in_host, 4 * B * c->n_embd, BUFFER_HOST, "the input embeddings"},
        {&m->step, step_grid_offset(D) + 16, BUFFER_HOST, "the decode step's parameters"},
    };
    memcpy(s, list, sizeof list);
}

// Device-local scratch bytes at a context of n_ctx, one row of logits included.
static uint64_t scratch_bytes(model *m, uint32_t n_ctx) {
    struct scratch list[N_SCRATCH];
    scratch_list(m, n_ctx, list);
    uint64_t bytes = 2 * MEM_ALIGN + 4ull * m->cfg.n_vocab; // one row of logits
    for (int i = 0; i < N_SCRATCH; i++)
        if (list[i].kind == BUFFER_DEVICE) bytes += (list[i].bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
    return bytes;
}

void model_scratch_needs(const model_config *c, uint32_t n_ubatch, mem_model *out) {
    model tmp = {.cfg = *c, .n_ubatch = n_ubatch ? n_ubatch : 512, .n_seq = out->n_seq ? out->n_seq : 1};
    tmp.qkv_dim = c->n_embd + 2 * c->n_head_kv * c->head_dim;
    // scratch(n) = S0 + rope * n + part * ceil(n / chunk) <= scratch(1) + n * ceil(rope + part / chunk):
    // a bound linear in the context, as the plan wants it.
    const uint32_t big = 1u << 20;
    out->scratch_fixed = scratch_bytes(&tmp, 1);
    out->scratch_per_token = (scratch_bytes(&tmp, big) - scratch_bytes(&tmp, 0) + big - 1) / big;
}

static uint64_t aligned(uint64_t n) { return (n + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; }

int model_memory_needs(const gguf_file *f, const model_config *c, uint32_t n_seq, uint32_t n_ubatch, mem_model *out) {
    memset(out, 0, sizeof *out);
    uint64_t *layer = calloc(c->n_layer ? c->n_layer : 1, sizeof *layer);
    if (!layer) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    bool has_output = gguf_find_tensor(f, "output.weight") != NULL;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        unsigned l;
        uint64_t bytes = aligned(tensor_device_bytes(t)); // as upload_tensor allocates it
        if (sscanf(t->name, "blk.%u.", &l) == 1 && l < c->n_layer) layer[l] += bytes;
        else if (!strcmp(t->name, "output_norm.weight") || !strcmp(t->name, "output.weight") ||
                 (!has_output && !strcmp(t->name, "token_embd.weight"))) // a tied head reuses the embedding
            out->head_bytes += bytes;
    }
    out->n_layer = c->n_layer;
    out->layer_bytes = layer;
    out->kv_dim = c->n_head_kv * c->head_dim;
    out->n_seq = n_seq ? n_seq : 1;
    out->n_ctx_train = c->n_ctx_train;
    model_scratch_needs(c, n_ubatch, out);
    return VKPHI_OK;
}

// Plans the context (the trained one when it fits, else the most that fits, said
// in one line, unless -c was given) and where every buffer goes; refuses with the
// numbers and the remedy when it does not fit.
static int plan_memory(model *m, const char *path, uint32_t n_ctx_asked) {
    const model_config *c = &m->cfg;
    device_info info = *device_get_info(m->dev);
    device_refresh_budgets(m->dev, &info);
    mem_model mm;
    int rc = model_memory_needs(m->f, c, m->n_seq, m->n_ubatch, &mm);
    if (rc) return rc;
    bool q8 = m->params.kv == KV_Q8_0;
    uint32_t fit = memory_max_context(&info, &mm, q8, false);
    const char *why = "";
    uint32_t best = memory_default_context(&info, &mm, q8, &why);
    m->n_ctx = n_ctx_asked ? n_ctx_asked : best ? best : c->n_ctx_train;
    if (!n_ctx_asked && best && best < c->n_ctx_train && !m->params.quiet)
        vkphi_log(VKPHI_LOG_INFO, "context: %u tokens of the %u trained (%s; -c sets another, up to %u)", best,
                  c->n_ctx_train, why, fit);
    mem_plan *p = &m->plan;
    memory_plan(&info, &mm, m->n_ctx, q8, p);
    if (!p->fits) {
        uint32_t fit_q8 = q8 ? fit : memory_max_context(&info, &mm, true, false);
        char remedy[160], need[24], w[24], k[24], sc[24], have[24], dv[24], hs[24], hv[40] = "no host heap";
        if (!fit && !fit_q8)
            snprintf(remedy, sizeof remedy, "use a smaller quantization: the weights alone need %s",
                     memory_size_str(p->weights[MEM_DEVICE] + p->weights[MEM_HOST], w));
        else if (q8 || fit_q8 <= fit)
            snprintf(remedy, sizeof remedy, "use -c %u or less, or a smaller quantization", fit);
        else
            snprintf(remedy, sizeof remedy,
                     "use -c %u or less (%u with --kv q8_0), --kv q8_0, or a smaller quantization", fit, fit_q8);
        free((void *)mm.layer_bytes);
        if (p->why[0]) return vkphi_fail(VKPHI_ERR_NOMEM, "%s on %s; %s", p->why, info.name, remedy);
        if (p->heap[MEM_HOST] >= 0) snprintf(hv, sizeof hv, "host %s", memory_size_str(p->avail[MEM_HOST], hs));
        return vkphi_fail(VKPHI_ERR_NOMEM,
                          "%s does not fit on %s with %u x %u tokens of context: it needs %s (weights %s, KV "
                          "cache %s %s, scratch %s) and %s are free (device %s, %s); %s",
                          path, info.name, m->n_seq, m->n_ctx, memory_size_str(p->need, need),
                          memory_size_str(p->weights[0] + p->weights[1], w), memory_size_str(p->kv[0] + p->kv[1], k),
                          q8 ? "q8_0" : "f16", memory_size_str(p->scratch[0] + p->scratch[1], sc),
                          memory_size_str(p->have, have), memory_size_str(p->avail[MEM_DEVICE], dv), hv, remedy);
    }
    free((void *)mm.layer_bytes);
    if (!m->params.quiet) {
        // memory plan on NAME, KV cache 1 x 4096 tokens f16: device 5.80 GiB (weights 4.10 GiB: layers 0-27,
        // KV cache 800.0 MiB, scratch 100.0 MiB) of 5.90 GiB free; host ... of ... free
        char part[MEM_N_PLACES][256], layers[64], a[24], b[24], k[24], sc[24], f[24];
        for (int i = 0; i < MEM_N_PLACES; i++) {
            memory_plan_layers(p, (enum mem_place)i, layers, sizeof layers);
            snprintf(part[i], sizeof part[i], "%s %s (weights %s: %s, KV cache %s, scratch %s) of %s free",
                     memory_place_name((enum mem_place)i), memory_size_str(p->weights[i] + p->kv[i] + p->scratch[i], a),
                     memory_size_str(p->weights[i], b), layers, memory_size_str(p->kv[i], k),
                     memory_size_str(p->scratch[i], sc), memory_size_str(p->avail[i], f));
        }
        vkphi_log(VKPHI_LOG_INFO, "memory plan on %s, KV cache %u x %u tokens %s: %s%s%s", info.name, m->n_seq,
                  m->n_ctx, q8 ? "q8_0" : "f16", part[MEM_DEVICE], p->heap[MEM_HOST] >= 0 ? "; " : "",
                  p->heap[MEM_HOST] >= 0 ? part[MEM_HOST] : "");
    }
    mem_arena_spec spec;
    memory_plan_arena(p, &spec);
    return mem_arena_create(m->dev, &spec, &m->arena);
}

static int alloc_scratch(model *m) {
    const model_config *c = &m->cfg;
    struct scratch s[N_SCRATCH];
    scratch_list(m, m->n_ctx, s);
    for (int i = 0; i < N_SCRATCH; i++) {
        int rc = s[i].kind == BUFFER_DEVICE
                     ? mem_arena_buffer(m->arena, m->plan.scratch_place, s[i].bytes, s[i].what, s[i].b)
                     : buffer_create(m->dev, s[i].bytes, s[i].kind, s[i].what, s[i].b);
        if (rc) return rc;
    }
    // RoPE angles for every position, computed once in double precision.
    float *table = malloc(m->rope.size);
    if (!table) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    rope_table_fill(table, m->n_ctx, &m->rope_cfg);
    int rc = buffer_write(m->dev, &m->rope, 0, table, 4ull * m->n_ctx * c->n_rot);
    free(table);
    return rc;
}

// A matrix of layer l stored whole (tensor `whole`) or, split, in n parts (the
// Llama layout's `parts`) whose outputs fill consecutive columns. The progress
// total counted it as one tensor.
static int load_parts(model *m, uint32_t l, enum mem_place where, bool split, const char *whole,
                      const char *const *parts, uint32_t n, weight_parts *w, uint32_t *done, uint32_t *total) {
    char name[96];
    int rc = VKPHI_OK;
    w->n = split ? n : 1;
    for (uint32_t i = 0; !rc && i < w->n; i++) {
        snprintf(name, sizeof name, "blk.%u.%s.weight", l, split ? parts[i] : whole);
        rc = load_weight(m, name, where, &w->part[i], done, *total);
    }
    if (split) *total += n - 1;
    return rc;
}

// Layer l's norms and weights (the weight layout settled here for the forward
// pass), and its KV cache.
static int load_layer(model *m, uint32_t l, uint32_t *done, uint32_t *total) {
    layer *L = &m->layers[l];
    bool q8 = m->params.kv == KV_Q8_0;
    enum mem_place w = l < m->plan.layers_device ? MEM_DEVICE : MEM_HOST; // this layer's weights
    static const char *const qkv[] = {"attn_q", "attn_k", "attn_v"}, *const gate_up[] = {"ffn_gate", "ffn_up"};
    char name[96];
#define LAYER_TENSOR(fmt) (snprintf(name, sizeof name, "blk.%u." fmt ".weight", l), name)
    int rc = load_norm(m, LAYER_TENSOR("attn_norm"), w, &L->attn_norm);
    if (!rc) rc = load_norm(m, LAYER_TENSOR("ffn_norm"), w, &L->ffn_norm);
    bool split = !gguf_find_tensor(m->f, LAYER_TENSOR("attn_qkv"));
    if (!rc) rc = load_parts(m, l, w, split, "attn_qkv", qkv, 3, &L->qkv, done, total);
    if (!rc) rc = load_weight(m, LAYER_TENSOR("attn_output"), w, &L->attn_output, done, *total);
    split = gguf_find_tensor(m->f, LAYER_TENSOR("ffn_gate")) != NULL;
    if (!rc) rc = load_parts(m, l, w, split, "ffn_up", gate_up, 2, &L->up, done, total);
    // Settled here, not while recording: the decode step's gate/up kernel applies
    // SwiGLU itself when [G;U] is one tensor that one storage binding holds.
    if (!rc) L->glu_fused = L->up.n == 1 && op_matvec_glu_fits(device_get_info(m->dev), &L->up.part[0]);
    if (!rc) rc = load_weight(m, LAYER_TENSOR("ffn_down"), w, &L->ffn_down, done, *total);
#undef LAYER_TENSOR
    // KV cache for this layer.
    uint32_t rows = m->n_seq * m->n_ctx;
    uint64_t kv_bytes = kv_layer_bytes(m->kv_dim, rows, q8);
    enum mem_place kw = l < m->plan.kv_layers_device ? MEM_DEVICE : MEM_HOST;
    if (!rc) rc = mem_arena_buffer(m->arena, kw, kv_bytes, "the KV cache", &L->k_cache);
    if (!rc) rc = mem_arena_buffer(m->arena, kw, kv_bytes, "the KV cache", &L->v_cache);
    L->kv = (kv_layer){&L->k_cache, &L->v_cache, m->kv_dim, rows, q8};
    return rc;
}

int model_load(const char *path, const model_params *params, model **out) {
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    m->params = *params;
    m->f = gguf_open(path);
    int rc = m->f ? model_config_read(m->f, &m->cfg) : VKPHI_ERR_FORMAT;
    if (rc) {
        model_free(m);
        return rc;
    }
    const model_config *c = &m->cfg;
    // n_ctx 0: the trained context when it fits, else the most that fits (plan_memory).
    if (params->n_ctx > c->n_ctx_train) {
        model_free(m);
        return vkphi_fail(VKPHI_ERR_ARG, "a context of %u tokens is more than %s was trained for (%u)", params->n_ctx,
                          path, c->n_ctx_train);
    }
    m->n_seq = params->n_seq ? params->n_seq : 1;
    m->n_ubatch = params->n_ubatch ? params->n_ubatch : 512;
    m->kv_dim = c->n_head_kv * c->head_dim;
    m->qkv_dim = c->n_embd + 2 * m->kv_dim;
    if (params->kv == KV_Q8_0 && m->kv_dim % 32) {
        model_free(m);
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "--kv q8_0 needs KV rows of a multiple of 32 values; %s has %u", path,
                          m->kv_dim);
    }

    rc = device_create(params->device, &m->dev);
    if (!rc) rc = plan_memory(m, path, params->n_ctx); // decides n_ctx
    if (!rc && (uint64_t)m->n_seq * m->n_ctx > UINT32_MAX) // KV rows are counted in 32 bits
        rc = vkphi_fail(VKPHI_ERR_ARG, "%u sequences of %u tokens are more KV cache rows than vkphi counts (2^32)",
                        m->n_seq, m->n_ctx);
    // RoPE: LongRoPE picks its factors by the context per sequence, as the reference
    // runtime does (so only once the context is known).
    if (!rc && !(m->rope_factors = malloc(sizeof(float) * (c->n_rot / 2 + 1))))
        rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    if (!rc) {
        m->rope_cfg = (rope_spec){c->n_rot, c->rope_neox, c->rope_base, NULL, c->rope_attn_factor};
        if (model_rope_factors(m->f, c, m->n_ctx, m->rope_factors)) {
            m->rope_cfg.factors = m->rope_factors;
            if (!params->quiet)
                vkphi_log(VKPHI_LOG_INFO, "LongRoPE: the %s factors (context %u %s the original %u), attn_factor %g",
                          m->n_ctx > c->rope_n_ctx_orig ? "long" : "short", m->n_ctx,
                          m->n_ctx > c->rope_n_ctx_orig ? ">" : "<=", c->rope_n_ctx_orig, c->rope_attn_factor);
        }
    }
    if (!rc && m->n_ubatch > m->n_ctx) m->n_ubatch = m->n_ctx;
    m->max_decode = m->n_seq < m->n_ubatch ? m->n_seq : m->n_ubatch;
    if (!rc && !(m->graph = calloc(m->max_decode ? m->max_decode : 1, sizeof *m->graph)))
        rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    if (!rc) m->k = kernels_create(m->dev);
    if (!rc && !m->k) rc = VKPHI_ERR_VULKAN;
    if (!rc) rc = prepare_kernels(m); // compiled while the weights upload
    for (int i = 0; !rc && i < RING; i++) rc = cmd_create(m->dev, &m->ring[i]);
    if (rc) { model_free(m); return rc; }

    // Weights: per layer norms, QKV, output, FFN; then the output head.
    m->tok_embd = gguf_find_tensor(m->f, "token_embd.weight");
    m->tensors = calloc((size_t)c->n_layer * 10 + 4, sizeof *m->tensors);
    m->layers = calloc(c->n_layer, sizeof *m->layers);
    if (!m->tensors || !m->layers) { model_free(m); return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory"); }
    uint32_t done = 0, total = c->n_layer * 5 + 1;
    for (uint32_t l = 0; !rc && l < c->n_layer; l++) rc = load_layer(m, l, &done, &total);
    enum mem_place hw = m->plan.head_device ? MEM_DEVICE : MEM_HOST;
    if (!rc) rc = load_norm(m, "output_norm.weight", hw, &m->output_norm);
    if (!rc) // a tied output head reuses the token embedding
        rc = load_weight(m, gguf_find_tensor(m->f, "output.weight") ? "output.weight" : "token_embd.weight", hw,
                         &m->output, &done, total);
    if (!rc) rc = alloc_scratch(m);
    if (!rc) rc = forward_ensure_logit_rows(m, 1);
    if (!rc) rc = kernels_wait(m->k);
    if (rc) { model_free(m); return rc; }
    *out = m;
    return VKPHI_OK;
}

void model_free(model *m) {
    if (!m) return;
    if (m->dev) {
        forward_drop_graphs(m);
        for (int i = 0; i < RING; i++) cmd_destroy(m->ring[i]);
        for (uint32_t i = 0; i < m->n_tensors; i++) buffer_destroy(m->dev, &m->tensors[i]);
        for (uint32_t l = 0; m->layers && l < m->cfg.n_layer; l++) {
            buffer_destroy(m->dev, &m->layers[l].attn_norm);
            buffer_destroy(m->dev, &m->layers[l].ffn_norm);
            buffer_destroy(m->dev, &m->layers[l].k_cache);
            buffer_destroy(m->dev, &m->layers[l].v_cache);
        }
        gpu_buffer *s[] = {&m->output_norm, &m->x, &m->xn, &m->qkv, &m->attn, &m->up, &m->act, &m->tmp, &m->part,
                           &m->rope, &m->logits, &m->in_host, &m->logits_host, &m->step};
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) buffer_destroy(m->dev, s[i]);
        mem_arena_destroy(m->arena);
        kernels_destroy(m->k);
        device_destroy(m->dev);
    }
    free(m->graph);
    free(m->tensors);
    free(m->layers);
    free(m->rope_factors);
    gguf_close(m->f);
    free(m);
}

const model_config *model_get_config(const model *m) { return &m->cfg; }
const gguf_file *model_gguf(const model *m) { return m->f; }
uint32_t model_n_ctx(const model *m) { return m->n_ctx; }
uint32_t model_n_seq(const model *m) { return m->n_seq; }
const char *model_device_name(const model *m) { return device_get_info(m->dev)->name; }
uint64_t model_weight_bytes(const model *m) { return m->weight_bytes; }
const mem_plan *model_memory_plan(const model *m) { return &m->plan; }
uint64_t model_kv_bytes_per_token(const model *m) {
    return 2ull * m->cfg.n_layer * kv_layer_bytes(m->kv_dim, 1, m->params.kv == KV_Q8_0);
}
void model_set_profiling(model *m, bool on) { m->profiling = on; }

void model_get_counters(model_counters *out) {
    cmd_counters c;
    cmd_counters_get(&c);
    *out = (model_counters){c.recordings, c.dispatches, c.barriers, c.submits};
}
