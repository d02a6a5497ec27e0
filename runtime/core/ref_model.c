// SPDX-License-Identifier: MIT
// The CPU reference forward pass: plain f32 (double for sums), weights dequantized
// row by row from the mapped file, KV cache in f32. Small and obviously correct:
// the oracle the GPU forward pass is tested against, not a backend.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ref_model.h"
#include "quant.h"
#include "ref.h"

struct ref_model {
    gguf_file *f;
    model_config c;
    uint32_t kv_dim, cap; // KV rows allocated per layer
    float **k, **v;       // [layer] -> (cap, kv_dim)
    float *row;           // one dequantized weight row
    rope_spec rope;       // as the GPU model configures it for the same context
    float *rope_factors;  // (n_rot/2) LongRoPE factors, when the model has them
};

ref_model *ref_model_load(const char *path, uint32_t n_ctx) {
    ref_model *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->f = gguf_open(path);
    if (!r->f || model_config_read(r->f, &r->c)) {
        ref_model_free(r);
        return NULL;
    }
    r->kv_dim = r->c.n_head_kv * r->c.head_dim;
    r->k = calloc(r->c.n_layer, sizeof *r->k);
    r->v = calloc(r->c.n_layer, sizeof *r->v);
    uint32_t widest = r->c.n_ff > r->c.n_embd ? r->c.n_ff : r->c.n_embd;
    r->row = malloc(sizeof(float) * widest);
    r->rope_factors = malloc(sizeof(float) * (r->c.n_rot / 2 + 1));
    if (!r->k || !r->v || !r->row || !r->rope_factors) {
        ref_model_free(r);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
        return NULL;
    }
    r->rope = (rope_spec){r->c.n_rot, r->c.rope_neox, r->c.rope_base, NULL, r->c.rope_attn_factor};
    if (model_rope_factors(r->f, &r->c, n_ctx ? n_ctx : r->c.n_ctx_train, r->rope_factors))
        r->rope.factors = r->rope_factors;
    return r;
}

void ref_model_free(ref_model *r) {
    if (!r) return;
    for (uint32_t l = 0; r->k && l < r->c.n_layer; l++) free(r->k[l]), free(r->v[l]);
    free(r->k), free(r->v), free(r->row), free(r->rope_factors);
    gguf_close(r->f);
    free(r);
}

const model_config *ref_model_config(const ref_model *r) { return &r->c; }

static const gguf_tensor *tensor(const ref_model *r, const char *fmt, uint32_t l) {
    char name[96];
    snprintf(name, sizeof name, fmt, l);
    return gguf_find_tensor(r->f, name);
}

// y[out_off + i] = W[i,:] . x for every row i of t.
static void matvec(ref_model *r, const gguf_tensor *t, const float *x, float *y) {
    uint64_t rb = quant_row_bytes(t->type, t->ne[0]);
    for (uint64_t i = 0; i < t->ne[1]; i++) {
        quant_dequantize_row(t->type, (const uint8_t *)t->data + i * rb, r->row, t->ne[0]);
        double s = 0;
        for (uint64_t k = 0; k < t->ne[0]; k++) s += (double)r->row[k] * x[k];
        y[i] = (float)s;
    }
}

int ref_model_eval(ref_model *r, int32_t token, uint32_t pos, float *logits) {
    const model_config *c = &r->c;
    uint32_t E = c->n_embd, F = c->n_ff, D = c->head_dim, G = c->n_head / c->n_head_kv;
    if (token < 0 || (uint32_t)token >= c->n_vocab) return vkphi_fail(VKPHI_ERR_ARG, "token %d out of range", token);
    if (pos >= r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 64;
        while (cap <= pos) cap *= 2;
        for (uint32_t l = 0; l < c->n_layer; l++) {
            r->k[l] = realloc(r->k[l], sizeof(float) * cap * r->kv_dim);
            r->v[l] = realloc(r->v[l], sizeof(float) * cap * r->kv_dim);
            if (!r->k[l] || !r->v[l]) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
        }
        r->cap = cap;
    }
    uint32_t qkv_dim = E + 2 * r->kv_dim;
    float *x = malloc(sizeof(float) * E), *xn = malloc(sizeof(float) * E), *qkv = malloc(sizeof(float) * qkv_dim);
    float *att = malloc(sizeof(float) * E), *tmp = malloc(sizeof(float) * E), *up = malloc(sizeof(float) * 2 * F);
    float *act = malloc(sizeof(float) * F), *sc = malloc(sizeof(float) * (pos + 1));
    const gguf_tensor *emb = gguf_find_tensor(r->f, "token_embd.weight");
    quant_dequantize_row(emb->type, (const uint8_t *)emb->data + (uint64_t)token * quant_row_bytes(emb->type, E), x, E);

    for (uint32_t l = 0; l < c->n_layer; l++) {
        // xn = RMSNorm(x) * attn_norm; [Q;K;V] = W_qkv xn (fused or split)
        ref_rmsnorm(x, tensor(r, "blk.%u.attn_norm.weight", l)->data, xn, 1, E, c->rms_eps);
        const gguf_tensor *t = tensor(r, "blk.%u.attn_qkv.weight", l);
        if (t) {
            matvec(r, t, xn, qkv);
        } else {
            matvec(r, tensor(r, "blk.%u.attn_q.weight", l), xn, qkv);
            matvec(r, tensor(r, "blk.%u.attn_k.weight", l), xn, qkv + E);
            matvec(r, tensor(r, "blk.%u.attn_v.weight", l), xn, qkv + E + r->kv_dim);
        }
        ref_rope(qkv, 1, c->n_head + c->n_head_kv, D, qkv_dim, 0, pos, &r->rope);
        memcpy(r->k[l] + (uint64_t)pos * r->kv_dim, qkv + E, sizeof(float) * r->kv_dim);
        memcpy(r->v[l] + (uint64_t)pos * r->kv_dim, qkv + E + r->kv_dim, sizeof(float) * r->kv_dim);
        // Causal attention of each query head h over KV head h / G.
        for (uint32_t h = 0; h < c->n_head; h++) {
            const float *q = qkv + h * D;
            uint32_t g = h / G;
            for (uint32_t p = 0; p <= pos; p++) {
                double s = 0;
                for (uint32_t d = 0; d < D; d++) s += (double)q[d] * r->k[l][(uint64_t)p * r->kv_dim + g * D + d];
                sc[p] = (float)(s / sqrt((double)D));
            }
            ref_softmax(sc, sc, 1, pos + 1);
            for (uint32_t d = 0; d < D; d++) {
                double s = 0;
                for (uint32_t p = 0; p <= pos; p++) s += (double)sc[p] * r->v[l][(uint64_t)p * r->kv_dim + g * D + d];
                att[h * D + d] = (float)s;
            }
        }
        // x += W_o att
        matvec(r, tensor(r, "blk.%u.attn_output.weight", l), att, tmp);
        ref_add(x, tmp, x, E);
        // x += W_down (SiLU(G) * U), [G;U] = W_up RMSNorm(x) * ffn_norm
        ref_rmsnorm(x, tensor(r, "blk.%u.ffn_norm.weight", l)->data, xn, 1, E, c->rms_eps);
        t = tensor(r, "blk.%u.ffn_gate.weight", l);
        if (t) {
            matvec(r, t, xn, up);
            matvec(r, tensor(r, "blk.%u.ffn_up.weight", l), xn, up + F);
        } else {
            matvec(r, tensor(r, "blk.%u.ffn_up.weight", l), xn, up);
        }
        ref_swiglu(up, act, 1, F);
        matvec(r, tensor(r, "blk.%u.ffn_down.weight", l), act, tmp);
        ref_add(x, tmp, x, E);
    }
    ref_rmsnorm(x, gguf_find_tensor(r->f, "output_norm.weight")->data, xn, 1, E, c->rms_eps);
    const gguf_tensor *out = gguf_find_tensor(r->f, "output.weight");
    matvec(r, out ? out : emb, xn, logits);
    free(x), free(xn), free(qkv), free(att), free(tmp), free(up), free(act), free(sc);
    return VKPHI_OK;
}
