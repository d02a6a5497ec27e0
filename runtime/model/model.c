// SPDX-License-Identifier: MIT
// Phi-4 on Vulkan: load, memory plan, resident weights, KV cache, forward pass.
// The forward pass reads like the math in PHI4.md, one commented dispatch per op.
#include "model.h"

#include <math.h>
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
#include "ops.h"
#include "quant.h"
#include "repack.h"

// Command buffers in flight: the host records layer i+1 while the GPU runs layer i.
#define RING 3
#define MAX_PROFILE 64

// A matrix stored whole (n = 1) or in parts (the Llama layout's q, k, v or gate,
// up) whose outputs fill consecutive columns of one activation row.
typedef struct weight_parts {
    gpu_weight part[3];
    uint32_t n;
} weight_parts;

typedef struct layer {
    gpu_buffer attn_norm, ffn_norm;      // (n_embd) f32
    weight_parts qkv;                    // fused: (n_embd, n_embd + 2 kv_dim); split: q, k, v
    gpu_weight attn_output;              // (n_embd, n_embd)
    weight_parts up;                     // fused: (n_embd, 2 n_ff) = [G;U]; split: gate, up
    bool glu_fused;                      // [G;U] one tensor within one binding: decode folds SwiGLU into it
    gpu_weight ffn_down;                 // (n_ff, n_embd)
    gpu_buffer k_cache, v_cache;         // (n_seq * n_ctx rows, kv_dim)
    kv_layer kv;
} layer;

struct model {
    gguf_file *f;
    model_config cfg;
    model_params params;
    uint32_t n_ctx, n_seq, n_ubatch, kv_dim, qkv_dim;
    device *dev;
    kernels *k;
    cmd_ctx *ring[RING];
    bool ring_fresh[RING]; // submitted since its timestamps were last collected
    uint32_t ring_next;

    mem_arena *arena;    // the blocks every planned buffer is bound into
    mem_plan plan;       // where each layer's weights and KV cache live (memory.h)
    gpu_buffer *tensors; // one buffer per uploaded tensor
    uint32_t n_tensors;
    layer *layers;
    gpu_buffer output_norm;
    gpu_weight output;
    const gguf_tensor *tok_embd; // looked up on the host, from the mapped file
    uint64_t weight_bytes;

    // Activations for one ubatch of B = n_ubatch tokens, rows of the given width.
    gpu_buffer x;       // (B, n_embd) residual stream
    gpu_buffer xn;      // (B, n_embd) normed
    gpu_buffer qkv;     // (B, n_embd + 2 kv_dim)
    gpu_buffer attn;    // (B, n_embd)
    gpu_buffer up;      // (B, 2 n_ff)
    gpu_buffer act;     // (B, n_ff)
    gpu_buffer tmp;     // (B, n_embd)
    gpu_buffer part;    // decode attention partials, for up to max_decode tokens
    gpu_buffer step;    // host-visible: the decode step's (row0, pos) per token, then its attention grid
    gpu_buffer rope;    // (n_ctx, n_rot/2) cos, sin
    rope_spec rope_cfg; // pairing, base, LongRoPE factors (the set this context picks) and attn_factor
    float *rope_factors; // (n_rot/2) LongRoPE factors that rope_cfg points to
    gpu_buffer logits;  // (logit_rows, n_vocab)
    gpu_buffer in_host;     // (B, n_embd) host-visible: token embeddings in
    gpu_buffer logits_host; // (logit_rows, n_vocab) host-visible: logits out
    uint32_t logit_rows;

    // Decode steps (one token from each of B sequences) are recorded once per B and
    // replayed: graph[B - 1] (NULL until first used). The per-step values live in
    // `step`, and the embeddings in in_host, both written by the host before each submit.
    uint32_t max_decode; // most tokens of one decode step: min(n_seq, n_ubatch)
    cmd_ctx **graph;

    bool profiling;
    uint32_t n_prof;
    const char *prof_name[MAX_PROFILE];
    double prof_ms[MAX_PROFILE];
};

// ---- load ----

// Bytes of t on the device: its rows in the device layout (runtime/repack.h).
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
    if (!op_matmul_supports(t->type))
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
    bool q8 = m->params.kv == KV_Q8_0;
    enum kernel_id ids[KERNEL_COUNT] = {
        KERNEL_RMSNORM, KERNEL_ROPE, KERNEL_SWIGLU, KERNEL_ATTN_COMBINE,
        q8 ? KERNEL_KV_STORE_Q8 : KERNEL_KV_STORE_F16, q8 ? KERNEL_ATTN_DECODE_Q8 : KERNEL_ATTN_DECODE_F16,
        op_attn_prefill_coop(m->k, q8, m->cfg.head_dim) ? (q8 ? KERNEL_ATTN_PREFILL_COOP_Q8 : KERNEL_ATTN_PREFILL_COOP_F16)
                                                         : (q8 ? KERNEL_ATTN_PREFILL_Q8 : KERNEL_ATTN_PREFILL_F16)};
    uint32_t n = 7;
    bool has_output = gguf_find_tensor(m->f, "output.weight") != NULL;
    bool seen[GGML_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < gguf_n_tensors(m->f); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->f, i);
        bool matrix = t->ne[1] > 1 && (!strncmp(t->name, "blk.", 4) || !strcmp(t->name, "output.weight") ||
                                       (!has_output && !strcmp(t->name, "token_embd.weight")));
        if (!matrix || t->type >= GGML_TYPE_COUNT || seen[t->type] || n + 2 > KERNEL_COUNT) continue;
        seen[t->type] = true;
        n += op_matmul_kernel_list(m->k, t->type, ids + n);
    }
    return kernels_prepare(m->k, ids, n);
}

// Every scratch buffer and its size for one ubatch of B = n_ubatch tokens at a
// context of n_ctx: the memory plan and the allocation both read this one list.
// (The logits buffers grow on demand: ensure_logit_rows.)
struct scratch { gpu_buffer *b; uint64_t bytes; enum buffer_kind kind; const char *what; };
#define N_SCRATCH 11
// The step buffer: (row0, pos) per decode token, then the attention grid
// (VkDispatchIndirectCommand) at this offset past the tokens.
static uint64_t step_grid_offset(uint32_t max_decode) { return (8ull * max_decode + 15) & ~15ull; }

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

// The logits buffers grow on demand: one row normally, a whole ubatch when every
// position's logits are asked for.
static void graphs_drop(model *m) {
    for (uint32_t i = 0; m->graph && i < m->max_decode; i++) {
        cmd_destroy(m->graph[i]);
        m->graph[i] = NULL;
    }
}

static int ensure_logit_rows(model *m, uint32_t rows) {
    if (rows <= m->logit_rows) return VKPHI_OK;
    graphs_drop(m); // they write the buffers replaced here
    buffer_destroy(m->dev, &m->logits);
    buffer_destroy(m->dev, &m->logits_host);
    m->logit_rows = 0;
    uint64_t bytes = 4ull * rows * m->cfg.n_vocab;
    int rc = buffer_create(m->dev, bytes, BUFFER_DEVICE, "the logits", &m->logits);
    if (!rc) rc = buffer_create(m->dev, bytes, BUFFER_HOST, "the logits readback", &m->logits_host);
    if (!rc) m->logit_rows = rows;
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
    char name[96];
#define LAYER_TENSOR(fmt) (snprintf(name, sizeof name, "blk.%u." fmt ".weight", l), name)
    for (uint32_t l = 0; !rc && l < c->n_layer; l++) {
        layer *L = &m->layers[l];
        enum mem_place w = l < m->plan.layers_device ? MEM_DEVICE : MEM_HOST; // this layer's weights
        rc = load_norm(m, LAYER_TENSOR("attn_norm"), w, &L->attn_norm);
        if (!rc) rc = load_norm(m, LAYER_TENSOR("ffn_norm"), w, &L->ffn_norm);
        if (!rc && gguf_find_tensor(m->f, LAYER_TENSOR("attn_qkv"))) {
            L->qkv.n = 1;
            rc = load_weight(m, name, w, &L->qkv.part[0], &done, total);
        } else if (!rc) {
            L->qkv.n = 3;
            const char *parts[] = {"attn_q", "attn_k", "attn_v"};
            for (int i = 0; !rc && i < 3; i++) {
                snprintf(name, sizeof name, "blk.%u.%s.weight", l, parts[i]);
                rc = load_weight(m, name, w, &L->qkv.part[i], &done, total);
            }
            total += 2;
        }
        if (!rc) rc = load_weight(m, LAYER_TENSOR("attn_output"), w, &L->attn_output, &done, total);
        if (!rc && gguf_find_tensor(m->f, LAYER_TENSOR("ffn_gate"))) {
            L->up.n = 2;
            rc = load_weight(m, name, w, &L->up.part[0], &done, total);
            if (!rc) rc = load_weight(m, LAYER_TENSOR("ffn_up"), w, &L->up.part[1], &done, total);
            total += 1;
        } else if (!rc) {
            L->up.n = 1;
            rc = load_weight(m, LAYER_TENSOR("ffn_up"), w, &L->up.part[0], &done, total);
        }
        // Settled here, not while recording: the decode step's gate/up kernel applies
        // SwiGLU itself when [G;U] is one tensor that one storage binding holds.
        if (!rc) L->glu_fused = L->up.n == 1 && op_matvec_glu_fits(device_get_info(m->dev), &L->up.part[0]);
        if (!rc) rc = load_weight(m, LAYER_TENSOR("ffn_down"), w, &L->ffn_down, &done, total);
        // KV cache for this layer.
        uint32_t rows = m->n_seq * m->n_ctx;
        uint64_t kv_bytes = kv_layer_bytes(m->kv_dim, rows, params->kv == KV_Q8_0);
        enum mem_place kw = l < m->plan.kv_layers_device ? MEM_DEVICE : MEM_HOST;
        if (!rc) rc = mem_arena_buffer(m->arena, kw, kv_bytes, "the KV cache", &L->k_cache);
        if (!rc) rc = mem_arena_buffer(m->arena, kw, kv_bytes, "the KV cache", &L->v_cache);
        L->kv = (kv_layer){&L->k_cache, &L->v_cache, m->kv_dim, rows, params->kv == KV_Q8_0};
    }
#undef LAYER_TENSOR
    enum mem_place hw = m->plan.head_device ? MEM_DEVICE : MEM_HOST;
    if (!rc) rc = load_norm(m, "output_norm.weight", hw, &m->output_norm);
    if (!rc) // a tied output head reuses the token embedding
        rc = load_weight(m, gguf_find_tensor(m->f, "output.weight") ? "output.weight" : "token_embd.weight", hw,
                         &m->output, &done, total);
    if (!rc) rc = alloc_scratch(m);
    if (!rc) rc = ensure_logit_rows(m, 1);
    if (!rc) rc = kernels_wait(m->k);
    if (rc) { model_free(m); return rc; }
    *out = m;
    return VKPHI_OK;
}

void model_free(model *m) {
    if (!m) return;
    if (m->dev) {
        graphs_drop(m);
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

// ---- profiling ----

static void profile_collect(model *m, cmd_ctx *c) {
    const char *labels[CMD_MAX_TIMESTAMPS];
    double ms[CMD_MAX_TIMESTAMPS];
    uint32_t n = cmd_timestamps(c, labels, ms, CMD_MAX_TIMESTAMPS);
    for (uint32_t i = 1; i < n; i++) {
        uint32_t j = 0;
        while (j < m->n_prof && m->prof_name[j] != labels[i]) j++;
        if (j == m->n_prof) {
            if (m->n_prof == MAX_PROFILE) continue;
            m->prof_name[m->n_prof] = labels[i];
            m->prof_ms[m->n_prof++] = 0;
        }
        m->prof_ms[j] += ms[i] - ms[i - 1];
    }
}

uint32_t model_kernel_times(model *m, const char **names, double *ms, uint32_t max) {
    uint32_t n = m->n_prof < max ? m->n_prof : max;
    for (uint32_t i = 0; i < n; i++) {
        names[i] = m->prof_name[i];
        ms[i] = m->prof_ms[i];
    }
    return n;
}

// ---- forward pass ----

// The next command context of the ring, its previous work finished and collected.
static int ring_begin(model *m, cmd_ctx **out) {
    uint32_t i = m->ring_next;
    cmd_ctx *c = m->ring[i];
    m->ring_next = (i + 1) % RING;
    int rc = cmd_wait(c);
    if (rc) return rc;
    if (m->profiling && m->ring_fresh[i]) profile_collect(m, c);
    m->ring_fresh[i] = true;
    rc = cmd_begin(c);
    if (rc) return rc;
    cmd_barrier(c); // orders this buffer after the previous submission's writes
    if (m->profiling) cmd_timestamp(c, "begin");
    *out = c;
    return VKPHI_OK;
}

static int ring_finish(model *m) {
    int rc = VKPHI_OK;
    for (int i = 0; i < RING; i++) {
        int r = cmd_wait(m->ring[i]);
        if (!rc) rc = r;
        if (m->profiling && m->ring_fresh[i]) profile_collect(m, m->ring[i]);
        m->ring_fresh[i] = false;
    }
    return rc;
}

static const char *matmul_label(const model *m, uint32_t type, uint32_t n_tokens) {
    return op_matmul_label(m->k, type, n_tokens);
}

#define TRY(call)                                                                          \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_) return rc_;                                                               \
    } while (0)
#define STAMP(label)                                                                       \
    do {                                                                                   \
        if (m->profiling) cmd_timestamp(c, label);                                         \
    } while (0)

// What one recording of the layers is for: its kind and its shape.
//   FWD_PROMPT: a prompt chunk, B >= 2 tokens of one sequence at positions pos..,
//     its KV rows from row0; one kernel per op (RMSNorm, matrix, RoPE, KV store,
//     attention, SwiGLU), the matrix kernels reading B tokens at a time.
//   FWD_DECODE: a decode step, B tokens, each the next one of its own sequence,
//     whose (row0, pos) the kernels read from the step buffer, so the recording is
//     replayed; RMSNorm, RoPE, the KV store and (where the weight allows) SwiGLU are
//     folded into the matrix-vector and attention kernels.
enum fwd_kind { FWD_PROMPT, FWD_DECODE };
typedef struct fwd_step {
    enum fwd_kind kind;
    uint32_t B;         // tokens
    uint32_t pos, row0; // a prompt chunk's first position and its sequence's first KV row
    buf_view tokens;    // a decode step's (row0, pos) per token
    buf_view grid;      // a decode step's attention grid (VkDispatchIndirectCommand)
} fwd_step;

// The profile label of a matrix kernel: a decode step runs the one-token kernel whatever its B.
static const char *step_label(const model *m, const fwd_step *s, uint32_t type) {
    return matmul_label(m, type, s->kind == FWD_DECODE ? 1 : s->B);
}

// y = W (RMSNorm(x) * norm), W whole or in parts that fill consecutive columns of
// y. A prompt chunk norms x into xn first; a decode step folds the norm into the
// matrix-vector kernel.
static int norm_matmul(model *m, cmd_ctx *c, const fwd_step *s, const gpu_buffer *norm, const weight_parts *w,
                       const gpu_buffer *y, uint32_t y_stride) {
    const model_config *cf = &m->cfg;
    uint32_t E = cf->n_embd;
    if (s->kind == FWD_PROMPT) {
        TRY(op_rmsnorm(c, m->k, buf_all(&m->x), buf_all(norm), buf_all(&m->xn), s->B, E, E, E, cf->rms_eps));
        STAMP("rmsnorm");
        cmd_barrier(c);
    }
    uint64_t col = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        const gpu_weight *p = &w->part[i];
        buf_view yv = buf_sub(y, col * 4, y->size - col * 4);
        if (s->kind == FWD_PROMPT)
            TRY(op_matmul(c, m->k, p, buf_all(&m->xn), yv, s->B, E, y_stride));
        else
            TRY(op_matvec_norm(c, m->k, p, buf_all(&m->x), buf_all(norm), yv, s->B, E, y_stride, cf->rms_eps, false));
        STAMP(step_label(m, s, p->type));
        col += p->n_out;
    }
    return VKPHI_OK;
}

// attn = softmax(Q K^T / sqrt(d)) V, causal, over each token's own sequence, after
// RoPE on Q and K and this step's K and V into the cache. A decode step does all
// of it in one kernel (and its merge).
static int attention(model *m, cmd_ctx *c, const fwd_step *s, const kv_layer *kv) {
    const model_config *cf = &m->cfg;
    uint32_t E = cf->n_embd;
    attn_shape a = {cf->n_head, cf->n_head_kv, cf->head_dim, 1.0f / sqrtf((float)cf->head_dim)};
    if (s->kind == FWD_DECODE) {
        attn_decode_args ad = {buf_all(&m->qkv), m->qkv_dim, E, s->tokens, &m->rope_cfg,
                               buf_all(&m->rope), buf_all(&m->part), buf_all(&m->attn), E, s->B, m->n_ctx, 0,
                               s->grid};
        TRY(op_attn_decode(c, m->k, kv, &a, &ad));
        STAMP("attention");
        return VKPHI_OK;
    }
    // RoPE on the Q and K heads, which lie side by side at the start of each row.
    TRY(op_rope(c, m->k, buf_all(&m->qkv), buf_all(&m->rope), s->B, cf->n_head + cf->n_head_kv, cf->head_dim,
                m->qkv_dim, 0, s->pos, &m->rope_cfg));
    STAMP("rope");
    cmd_barrier(c);
    // K and V of these tokens into the cache.
    TRY(op_kv_store(c, m->k, kv, buf_all(&m->qkv), m->qkv_dim, E, s->B, s->row0 + s->pos));
    STAMP("kv_store");
    cmd_barrier(c);
    // Over positions 0 .. pos+B-1.
    TRY(op_attn_prefill(c, m->k, kv, &a, buf_all(&m->qkv), m->qkv_dim, buf_all(&m->attn), E, s->B, s->pos, s->row0));
    STAMP("attention");
    return VKPHI_OK;
}

// y[t, :] += W x[t, :] for a decode step's B tokens: the matrix-vector kernel for
// any B (KERNEL_FEW_TOKENS at a time), so a token's sums never depend on B.
static int matvec_add(model *m, cmd_ctx *c, const gpu_weight *w, const gpu_buffer *x, uint32_t x_stride,
                      const gpu_buffer *y, uint32_t y_stride, uint32_t B) {
    for (uint32_t t0 = 0; t0 < B; t0 += KERNEL_FEW_TOKENS) {
        uint32_t n = B - t0 < KERNEL_FEW_TOKENS ? B - t0 : KERNEL_FEW_TOKENS;
        uint64_t xo = 4ull * t0 * x_stride, yo = 4ull * t0 * y_stride;
        TRY(op_matmul_add(c, m->k, w, buf_sub(x, xo, x->size - xo), buf_sub(y, yo, y->size - yo), n, x_stride, y_stride));
    }
    return VKPHI_OK;
}

// x += W v, v's rows v_stride wide: the matrix kernel adds into the residual stream.
static int add_matmul(model *m, cmd_ctx *c, const fwd_step *s, const gpu_weight *w, const gpu_buffer *v,
                      uint32_t v_stride) {
    uint32_t E = m->cfg.n_embd;
    if (s->kind == FWD_PROMPT)
        TRY(op_matmul_add(c, m->k, w, buf_all(v), buf_all(&m->x), s->B, v_stride, E));
    else
        TRY(matvec_add(m, c, w, v, v_stride, &m->x, E, s->B));
    STAMP(step_label(m, s, w->type));
    return VKPHI_OK;
}

// act = SiLU(G) * U where [G;U] = W_up (RMSNorm(x) * norm): in a decode step one
// kernel when the layer's [G;U] allows it (fused, settled at load), else the
// gate/up product and then SwiGLU on its own.
static int norm_glu(model *m, cmd_ctx *c, const fwd_step *s, const gpu_buffer *norm, const weight_parts *w,
                    bool fused) {
    const model_config *cf = &m->cfg;
    uint32_t F = cf->n_ff;
    if (s->kind == FWD_DECODE && fused) {
        TRY(op_matvec_norm(c, m->k, &w->part[0], buf_all(&m->x), buf_all(norm), buf_all(&m->act), s->B, cf->n_embd, F,
                           cf->rms_eps, true));
        STAMP(step_label(m, s, w->part[0].type));
        return VKPHI_OK;
    }
    TRY(norm_matmul(m, c, s, norm, w, &m->up, 2 * F));
    cmd_barrier(c);
    TRY(op_swiglu(c, m->k, buf_all(&m->up), buf_all(&m->act), s->B, F, 2 * F, F));
    STAMP("swiglu");
    return VKPHI_OK;
}

// One transformer layer (PHI4.md), for a prompt chunk or a decode step alike:
//   h   = x + W_o Attn(RoPE(Q), RoPE(K), V)   where [Q;K;V] = W_qkv RMSNorm(x) * attn_norm
//   out = h + W_down (SiLU(G) * U)            where [G;U]   = W_up RMSNorm(h) * ffn_norm
static int record_layer(model *m, cmd_ctx *c, const fwd_step *s, const layer *L) {
    uint32_t E = m->cfg.n_embd, F = m->cfg.n_ff;
    // [Q;K;V] = W_qkv (RMSNorm(x) * attn_norm)
    TRY(norm_matmul(m, c, s, &L->attn_norm, &L->qkv, &m->qkv, m->qkv_dim));
    cmd_barrier(c);
    // attn = Attn(RoPE(Q), RoPE(K), V), this step's K and V into the cache
    TRY(attention(m, c, s, &L->kv));
    cmd_barrier(c);
    // x += W_o attn
    TRY(add_matmul(m, c, s, &L->attn_output, &m->attn, E));
    cmd_barrier(c);
    // act = SiLU(G) * U   where [G;U] = W_up (RMSNorm(x) * ffn_norm)
    TRY(norm_glu(m, c, s, &L->ffn_norm, &L->up, L->glu_fused));
    cmd_barrier(c);
    // x += W_down act
    return add_matmul(m, c, s, &L->ffn_down, &m->act, F);
}

// A decode step over B tokens, their (row0, pos) in the step buffer and their
// embeddings in in_host, then the output head. Everything that changes from step
// to step is read from those buffers, so the recording is replayed (record_decode
// runs once per B).
static int record_decode(model *m, cmd_ctx *c, uint32_t B) {
    const model_config *cf = &m->cfg;
    uint32_t E = cf->n_embd;
    uint64_t grid = step_grid_offset(m->max_decode);
    fwd_step s = {FWD_DECODE, B, 0, 0, buf_sub(&m->step, 0, 8ull * B), buf_sub(&m->step, grid, 16)};
    cmd_barrier(c); // after the previous submission's writes
    cmd_copy(c, &m->in_host, 0, &m->x, 0, 4ull * B * E);
    cmd_barrier(c);
    for (uint32_t l = 0; l < cf->n_layer; l++) {
        TRY(record_layer(m, c, &s, &m->layers[l]));
        cmd_barrier(c);
    }
    // logits = W_out (RMSNorm(x) * output_norm), in windows of whole rows that fit a binding.
    uint64_t row_bytes = 4ull * cf->n_vocab;
    TRY(op_matvec_norm(c, m->k, &m->output, buf_all(&m->x), buf_all(&m->output_norm), buf_sub(&m->logits, 0, B * row_bytes),
                       B, E, cf->n_vocab, cf->rms_eps, false));
    STAMP(matmul_label(m, m->output.type, 1));
    cmd_barrier(c);
    cmd_copy(c, &m->logits, 0, &m->logits_host, 0, B * row_bytes);
    return VKPHI_OK;
}

// One decode step over toks[0..B) (distinct sequences, B <= max_decode); logits
// (B rows) to out.
static int eval_decode(model *m, const model_token *toks, uint32_t B, float *out) {
    const model_config *cf = &m->cfg;
    uint32_t E = cf->n_embd;
    TRY(ensure_logit_rows(m, B));
    uint32_t *step = m->step.mapped, max_len = 0;
    for (uint32_t t = 0; t < B; t++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd->data + (uint64_t)toks[t].id * quant_row_bytes(m->tok_embd->type, E);
        TRY(quant_dequantize_row(m->tok_embd->type, row, (float *)m->in_host.mapped + (uint64_t)t * E, E));
        step[2 * t] = toks[t].seq * m->n_ctx;
        step[2 * t + 1] = toks[t].pos;
        if (toks[t].pos + 1 > max_len) max_len = toks[t].pos + 1;
    }
    uint32_t *grid = (uint32_t *)((uint8_t *)m->step.mapped + step_grid_offset(m->max_decode));
    grid[0] = attn_decode_chunks(max_len);
    grid[1] = cf->n_head_kv;
    grid[2] = B;
    if (m->profiling) { // recorded afresh, with timestamps between the kernels
        cmd_ctx *c;
        TRY(ring_begin(m, &c));
        TRY(record_decode(m, c, B));
        TRY(cmd_submit(c, false));
        TRY(ring_finish(m));
    } else {
        TRY(ring_finish(m)); // nothing else in flight
        cmd_ctx **g = &m->graph[B - 1];
        if (!*g) {
            TRY(cmd_create(m->dev, g));
            int rc = cmd_begin_reusable(*g);
            if (!rc) rc = record_decode(m, *g, B);
            if (!rc) rc = cmd_end(*g);
            if (rc) {
                cmd_destroy(*g);
                *g = NULL;
                return rc;
            }
        }
        TRY(cmd_resubmit(*g, true));
    }
    if (out) TRY(buffer_read(m->dev, &m->logits_host, 0, out, 4ull * B * cf->n_vocab));
    return VKPHI_OK;
}

// One ubatch: embeddings in, every layer, logits for `rows` last positions out.
static int eval_ubatch(model *m, uint32_t seq, const int32_t *tokens, uint32_t B, uint32_t pos, uint32_t rows) {
    const model_config *cf = &m->cfg;
    uint32_t E = cf->n_embd;
    // Token embeddings, dequantized on the host from the mapped file: this keeps the
    // (n_embd x n_vocab) table out of device memory.
    for (uint32_t t = 0; t < B; t++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd->data + (uint64_t)tokens[t] * quant_row_bytes(m->tok_embd->type, E);
        TRY(quant_dequantize_row(m->tok_embd->type, row, (float *)m->in_host.mapped + (uint64_t)t * E, E));
    }
    fwd_step s = {FWD_PROMPT, B, pos, seq * m->n_ctx};
    cmd_ctx *c;
    for (uint32_t l = 0; l < cf->n_layer; l++) {
        TRY(ring_begin(m, &c));
        if (l == 0) {
            cmd_copy(c, &m->in_host, 0, &m->x, 0, 4ull * B * E);
            cmd_barrier(c);
        }
        TRY(record_layer(m, c, &s, &m->layers[l]));
        TRY(cmd_submit(c, false));
    }
    if (rows == 0) return ring_finish(m);
    // logits = W_out RMSNorm(x[last rows]) * output_norm
    TRY(ring_begin(m, &c));
    cmd_copy(c, &m->x, 4ull * (B - rows) * E, &m->tmp, 0, 4ull * rows * E);
    cmd_barrier(c);
    TRY(op_rmsnorm(c, m->k, buf_all(&m->tmp), buf_all(&m->output_norm), buf_all(&m->xn), rows, E, E, E, cf->rms_eps));
    STAMP("rmsnorm");
    cmd_barrier(c);
    // In windows of whole rows that each fit a storage-buffer binding (512 rows of
    // Phi-4's 100352 logits are 205 MB; lavapipe binds 128 MiB).
    const device_info *info = device_get_info(m->dev);
    uint64_t row_bytes = 4ull * cf->n_vocab, slack = info->min_storage_offset_align > 16 ? info->min_storage_offset_align : 16;
    uint32_t step = (uint32_t)((info->max_storage_buffer_range - slack) / row_bytes);
    if (step == 0) return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "a row of %u logits exceeds the device's storage-buffer range",
                                     cf->n_vocab);
    for (uint32_t t0 = 0; t0 < rows; t0 += step) {
        uint32_t n = rows - t0 < step ? rows - t0 : step, s0 = t0;
        // A last window of KERNEL_FEW_TOKENS rows or fewer would take the matrix-vector
        // kernel; it reaches back instead (rows done twice come out the same bits), so
        // every row goes through the kernel its request size picks, windows or not.
        if (rows > KERNEL_FEW_TOKENS && n <= KERNEL_FEW_TOKENS && step > KERNEL_FEW_TOKENS)
            s0 = rows - (KERNEL_FEW_TOKENS + 1), n = KERNEL_FEW_TOKENS + 1;
        TRY(op_matmul(c, m->k, &m->output, buf_sub(&m->xn, 4ull * s0 * E, 4ull * n * E),
                      buf_sub(&m->logits, s0 * row_bytes, n * row_bytes), n, E, cf->n_vocab));
    }
    STAMP(matmul_label(m, m->output.type, rows));
    cmd_barrier(c);
    cmd_copy(c, &m->logits, 0, &m->logits_host, 0, 4ull * rows * cf->n_vocab);
    TRY(cmd_submit(c, false));
    return ring_finish(m);
}

// Tokens of one sequence at positions pos.. in ubatches: a single token (a piece
// of one) goes through the decode step, so it computes exactly as it would in a
// decode step with other sequences.
static int eval_sequence(model *m, uint32_t seq, const int32_t *tokens, uint32_t n, uint32_t pos, float *logits,
                         float *logits_all) {
    const model_config *cf = &m->cfg;
    uint64_t row_bytes = 4ull * cf->n_vocab;
    for (uint32_t off = 0; off < n; off += m->n_ubatch) {
        uint32_t B = n - off < m->n_ubatch ? n - off : m->n_ubatch;
        bool last = off + B == n;
        if (B == 1) {
            model_token t = {tokens[off], seq, pos + off, true};
            float *dst = logits_all ? logits_all + (uint64_t)off * cf->n_vocab : last ? logits : NULL;
            TRY(eval_decode(m, &t, 1, dst));
            if (last && logits && logits_all) memcpy(logits, dst, row_bytes);
            continue;
        }
        uint32_t rows = logits_all ? B : last ? 1 : 0; // positions whose logits we need
        TRY(ensure_logit_rows(m, rows));
        TRY(eval_ubatch(m, seq, tokens + off, B, pos + off, rows));
        if (logits_all) TRY(buffer_read(m->dev, &m->logits_host, 0, logits_all + (uint64_t)off * cf->n_vocab, rows * row_bytes));
        if (last && logits) TRY(buffer_read(m->dev, &m->logits_host, (uint64_t)(rows - 1) * row_bytes, logits, row_bytes));
    }
    return VKPHI_OK;
}

int model_eval(model *m, uint32_t seq, const int32_t *tokens, uint32_t n, uint32_t pos, float *logits,
               float *logits_all) {
    const model_config *cf = &m->cfg;
    if (seq >= m->n_seq) return vkphi_fail(VKPHI_ERR_ARG, "sequence %u does not exist (%u sequences)", seq, m->n_seq);
    if (n == 0) return VKPHI_OK;
    if ((uint64_t)pos + n > m->n_ctx)
        return vkphi_fail(VKPHI_ERR_ARG, "%u tokens at position %u do not fit in the context of %u tokens", n, pos, m->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= cf->n_vocab)
            return vkphi_fail(VKPHI_ERR_ARG, "token id %d is outside the vocabulary (0..%u)", tokens[i], cf->n_vocab - 1);
    m->n_prof = 0;
    return eval_sequence(m, seq, tokens, n, pos, logits, logits_all);
}

int model_eval_batch(model *m, const model_token *t, uint32_t n, float *logits) {
    const model_config *cf = &m->cfg;
    uint64_t row_bytes = 4ull * cf->n_vocab;
    // Checks: sequences exist, ids in the vocabulary, positions in the context, each
    // sequence's tokens side by side at consecutive positions.
    for (uint32_t i = 0; i < n; i++) {
        if (t[i].seq >= m->n_seq)
            return vkphi_fail(VKPHI_ERR_ARG, "batch token %u: sequence %u does not exist (%u sequences)", i, t[i].seq,
                              m->n_seq);
        if (t[i].id < 0 || (uint32_t)t[i].id >= cf->n_vocab)
            return vkphi_fail(VKPHI_ERR_ARG, "batch token %u: id %d is outside the vocabulary (0..%u)", i, t[i].id,
                              cf->n_vocab - 1);
        if (t[i].pos >= m->n_ctx)
            return vkphi_fail(VKPHI_ERR_ARG, "batch token %u: position %u is outside the context of %u tokens", i,
                              t[i].pos, m->n_ctx);
        if (t[i].logits && !logits) return vkphi_fail(VKPHI_ERR_ARG, "batch token %u wants logits but there is no buffer", i);
        bool joined = i > 0 && t[i - 1].seq == t[i].seq;
        if (joined && t[i - 1].pos + 1 != t[i].pos)
            return vkphi_fail(VKPHI_ERR_ARG, "batch token %u of sequence %u is at position %u after one at %u", i,
                              t[i].seq, t[i].pos, t[i - 1].pos);
        for (uint32_t j = 0; !joined && j < i; j++)
            if (t[j].seq == t[i].seq)
                return vkphi_fail(VKPHI_ERR_ARG, "batch token %u: the tokens of sequence %u are not side by side", i,
                                  t[i].seq);
    }
    m->n_prof = 0;
    // Where each wanted row of logits goes.
    uint64_t *dst = malloc(sizeof *dst * (n ? n : 1));
    model_token *dec = malloc(sizeof *dec * (n ? n : 1));
    uint32_t *dec_at = malloc(sizeof *dec_at * (n ? n : 1));
    float *rows = malloc(row_bytes * (m->max_decode ? m->max_decode : 1));
    int rc = dst && dec && dec_at && rows ? VKPHI_OK : vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    for (uint32_t i = 0, k = 0; i < n; i++) dst[i] = t[i].logits ? (uint64_t)k++ * cf->n_vocab : UINT64_MAX;
    // Sequences with one token: decode steps of up to max_decode tokens, each weight
    // read once per step. Longer runs (prompt chunks): one sequence at a time.
    uint32_t n_dec = 0;
    for (uint32_t i = 0; !rc && i < n;) {
        uint32_t e = i + 1;
        while (e < n && t[e].seq == t[i].seq) e++;
        if (e - i == 1) {
            dec[n_dec] = t[i];
            dec_at[n_dec++] = i;
        } else {
            int32_t *ids = malloc(sizeof(int32_t) * (e - i));
            float *all = malloc(row_bytes * (e - i));
            rc = ids && all ? VKPHI_OK : vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
            for (uint32_t j = i; !rc && j < e; j++) ids[j - i] = t[j].id;
            bool every = false;
            for (uint32_t j = i; j + 1 < e; j++) every |= t[j].logits;
            if (!rc) rc = eval_sequence(m, t[i].seq, ids, e - i, t[i].pos, every ? NULL : all, every ? all : NULL);
            for (uint32_t j = i; !rc && j < e; j++)
                if (t[j].logits) memcpy(logits + dst[j], every ? all + (uint64_t)(j - i) * cf->n_vocab : all, row_bytes);
            free(ids);
            free(all);
        }
        i = e;
    }
    for (uint32_t d0 = 0; !rc && d0 < n_dec; d0 += m->max_decode) {
        uint32_t B = n_dec - d0 < m->max_decode ? n_dec - d0 : m->max_decode;
        rc = eval_decode(m, dec + d0, B, rows);
        for (uint32_t j = 0; !rc && j < B; j++)
            if (dec[d0 + j].logits) memcpy(logits + dst[dec_at[d0 + j]], rows + (uint64_t)j * cf->n_vocab, row_bytes);
    }
    free(dst);
    free(dec);
    free(dec_at);
    free(rows);
    return rc;
}
