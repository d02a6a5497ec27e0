// SPDX-License-Identifier: MIT
// Phi-4's forward pass: prompt chunks and decode steps through one per-layer
// function (record_layer) that reads like the math in PHI4.md, one commented step
// per line, each step recording the kernels of its kind; the output head; the
// ring of command buffers and the per-kernel profile.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "commands.h"
#include "common.h"
#include "device.h"
#include "kernels.h"
#include "model.h"
#include "model_internal.h"
#include "ops.h"
#include "quant.h"
#include "select.h"

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

// The recorded decode steps, dropped when a buffer they write is replaced.
void forward_drop_graphs(model *m) {
    for (uint32_t i = 0; m->graph && i < m->max_decode; i++) {
        cmd_destroy(m->graph[i]);
        m->graph[i] = NULL;
    }
}

// The logits buffers grow on demand: one row normally, a whole ubatch when every
// position's logits are asked for.
int forward_ensure_logit_rows(model *m, uint32_t rows) {
    if (rows <= m->logit_rows) return VKPHI_OK;
    forward_drop_graphs(m); // they write the buffers replaced here
    buffer_destroy(m->dev, &m->logits);
    buffer_destroy(m->dev, &m->logits_host);
    m->logit_rows = 0;
    uint64_t bytes = 4ull * rows * m->cfg.n_vocab;
    int rc = buffer_create(m->dev, bytes, BUFFER_DEVICE, "the logits", &m->logits);
    if (!rc) rc = buffer_create(m->dev, bytes, BUFFER_HOST, "the logits readback", &m->logits_host);
    if (!rc) m->logit_rows = rows;
    return rc;
}

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

// The profile's name of the kernel a product over n_tokens of the forward pass's
// (aligned) rows runs.
static const char *matmul_label(const model *m, uint32_t type, uint32_t n_tokens) {
    matmul_choice ch;
    return kernels_choose_matmul(m->k, type, n_tokens, true, true, &ch) ? "matmul" : ch.label;
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

// x += W v, v's rows v_stride wide: the matrix kernel adds into the residual stream.
// A decode step's tokens take the matrix-vector kernel whatever their number, so a
// token's sums never depend on how many share the step.
static int add_matmul(model *m, cmd_ctx *c, const fwd_step *s, const gpu_weight *w, const gpu_buffer *v,
                      uint32_t v_stride) {
    uint32_t E = m->cfg.n_embd;
    if (s->kind == FWD_PROMPT)
        TRY(op_matmul_add(c, m->k, w, buf_all(v), buf_all(&m->x), s->B, v_stride, E));
    else
        TRY(op_matvec_add(c, m->k, w, buf_all(v), buf_all(&m->x), s->B, v_stride, E));
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
    TRY(forward_ensure_logit_rows(m, B));
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
    uint64_t row_bytes = 4ull * cf->n_vocab, slack = device_binding_align(info);
    uint32_t step = (uint32_t)((info->max_storage_buffer_range - slack) / row_bytes);
    if (step == 0) return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "a row of %u logits exceeds the device's storage-buffer range",
                                     cf->n_vocab);
    matmul_choice want, got;
    TRY(kernels_choose_matmul(m->k, m->output.type, rows, true, true, &want));
    for (uint32_t t0 = 0; t0 < rows; t0 += step) {
        uint32_t n = rows - t0 < step ? rows - t0 : step;
        // A short last window may take another kernel than the request's size picks
        // (the matrix-vector one); it reaches back to the fewest rows that take the
        // request's kernel instead (rows done twice come out the same bits), so every
        // row goes through the kernel its request size picks, windows or not.
        while (n < step && n < rows && !kernels_choose_matmul(m->k, m->output.type, n, true, true, &got) &&
               got.id != want.id)
            n++;
        uint32_t s0 = rows - n < t0 ? rows - n : t0;
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
        TRY(forward_ensure_logit_rows(m, rows));
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
