// SPDX-License-Identifier: MIT
#include "model_config.h"

#include "common.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The architectures vkphi runs. Both are Phi-4's math (RMSNorm, SwiGLU, GQA, no
// biases); they differ in the metadata prefix and the RoPE pairing. A llama-layout
// file has its Q/K rows permuted per head so that adjacent pairs (2i, 2i+1) rotate
// as Phi-4's rotate-half pairs (i, i + n_rot/2) do.
enum arch { ARCH_PHI3, ARCH_LLAMA };
static const char *const arch_names[] = {"phi3", "llama"};

// "<arch>.<suffix>" in buf.
static const char *key(char buf[96], enum arch a, const char *suffix) {
    snprintf(buf, 96, "%s.%s", arch_names[a], suffix);
    return buf;
}

static int need_u32(const gguf_file *f, const char *key, uint32_t *out) {
    if (gguf_find_key(f, key) < 0) return vkphi_fail(VKPHI_ERR_FORMAT, "%s: required key %s is missing", gguf_name(f), key);
    if (!gguf_get_u32(f, key, out))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: key %s is a %s, not an unsigned 32-bit integer", gguf_name(f), key,
                          gguf_type_name(gguf_key_type(f, gguf_find_key(f, key))));
    if (*out == 0) return vkphi_fail(VKPHI_ERR_FORMAT, "%s: key %s is 0", gguf_name(f), key);
    return VKPHI_OK;
}

static void shape_str(char *buf, size_t len, const uint64_t ne[4]) {
    int n = 4;
    while (n > 1 && ne[n - 1] == 1) n--;
    size_t at = 0;
    at += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < n && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, "%s%llu", d ? ", " : "", (unsigned long long)ne[d]);
    if (at < len) snprintf(buf + at, len - at, "]");
}

// Checks tensor `name` has shape [ne0, ne1] (ne1 = 1 for vectors). A missing
// optional tensor is fine; a missing required one is an error.
static int check_tensor(const gguf_file *f, const char *name, uint64_t ne0, uint64_t ne1, bool required) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return required ? vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor '%s' is missing", gguf_name(f), name) : VKPHI_OK;
    const uint64_t want[4] = {ne0, ne1, 1, 1};
    if (memcmp(t->ne, want, sizeof want)) {
        char have_s[96], want_s[96];
        shape_str(have_s, sizeof have_s, t->ne);
        shape_str(want_s, sizeof want_s, want);
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", gguf_name(f), name, have_s, want_s);
    }
    return VKPHI_OK;
}

// Reads a positive, finite float key (absent: *out keeps its default).
static int opt_positive_f32(const gguf_file *f, const char *k, float *out) {
    if (gguf_find_key(f, k) >= 0 && (!gguf_get_f32(f, k, out) || !(*out > 0) || !isfinite(*out)))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is not a positive number", gguf_name(f), k);
    return VKPHI_OK;
}

// LongRoPE (Phi-4-mini): both factor tensors (F32, n_rot/2 positive values each),
// the original context that chooses between them, and the optional attn_factor.
// Without the tensors there is no LongRoPE and attn_factor does not apply, as in
// the reference runtime.
static int check_longrope(const gguf_file *f, enum arch a, model_config *c) {
    const char *file = gguf_name(f), *names[2] = {"rope_factors_long.weight", "rope_factors_short.weight"};
    const gguf_tensor *t[2] = {gguf_find_tensor(f, names[0]), gguf_find_tensor(f, names[1])};
    c->rope_n_ctx_orig = 0;
    c->rope_attn_factor = 1;
    if (!t[0] && !t[1]) return VKPHI_OK;
    if (a != ARCH_PHI3) // the llama layout is Phi-4 (14B): it never has factors
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                          "%s: LongRoPE tensors in a %s file are not supported (vkphi runs them in phi3 files)", file,
                          arch_names[a]);
    char k[96];
    int rc;
    for (int i = 0; i < 2; i++)
        if (!t[i])
            return vkphi_fail(VKPHI_ERR_FORMAT, "%s: LongRoPE needs both factor tensors, and '%s' is missing", file, names[i]);
    for (int i = 0; i < 2; i++) {
        if (t[i]->type != GGML_TYPE_F32)
            return vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor '%s' is %s; LongRoPE factors are F32", file, names[i],
                              quant_type_name(t[i]->type));
        if ((rc = check_tensor(f, names[i], c->n_rot / 2, 1, true))) return rc;
        for (uint32_t j = 0; j < c->n_rot / 2; j++) {
            float v;
            memcpy(&v, (const uint8_t *)t[i]->data + 4 * j, 4);
            if (!(v > 0) || !isfinite(v))
                return vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor '%s' holds %g at %u; LongRoPE factors are positive", file,
                                  names[i], v, j);
        }
    }
    if ((rc = need_u32(f, key(k, a, "rope.scaling.original_context_length"), &c->rope_n_ctx_orig)) ||
        (rc = opt_positive_f32(f, key(k, a, "rope.scaling.attn_factor"), &c->rope_attn_factor)))
        return rc;
    return VKPHI_OK;
}

// Reads the hyperparameters into c (all but n_vocab) and refuses what is not
// Phi-4's math: LayerNorm, experts, RoPE scaling other than LongRoPE, a sliding
// window that would apply.
static int check_hparams(const gguf_file *f, enum arch a, model_config *c) {
    const char *file = gguf_name(f);
    char k[96];
    int rc;
    if ((rc = need_u32(f, key(k, a, "block_count"), &c->n_layer)) ||
        (rc = need_u32(f, key(k, a, "embedding_length"), &c->n_embd)) ||
        (rc = need_u32(f, key(k, a, "feed_forward_length"), &c->n_ff)) ||
        (rc = need_u32(f, key(k, a, "attention.head_count"), &c->n_head)) ||
        (rc = need_u32(f, key(k, a, "context_length"), &c->n_ctx_train)))
        return rc;
    c->n_head_kv = c->n_head; // absent means no grouped-query attention
    if (gguf_find_key(f, key(k, a, "attention.head_count_kv")) >= 0 && (rc = need_u32(f, k, &c->n_head_kv))) return rc;
    if (c->n_head % c->n_head_kv)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %u query heads cannot be split evenly over %u KV heads", file, c->n_head,
                          c->n_head_kv);
    if (c->n_embd % c->n_head)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: embedding length %u is not a multiple of the %u heads", file, c->n_embd,
                          c->n_head);
    c->head_dim = c->n_embd / c->n_head;
    if (c->head_dim % 2)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: head dimension %u is odd; rotary embedding needs it even", file,
                          c->head_dim);
    const char *dims[] = {"attention.key_length", "attention.value_length"};
    for (int i = 0; i < 2; i++) { // llama files may state the head dimension; it must be Phi-4's n_embd / n_head
        uint32_t d = c->head_dim;
        if (gguf_find_key(f, key(k, a, dims[i])) >= 0 && (rc = need_u32(f, k, &d))) return rc;
        if (d != c->head_dim)
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: %s is %u, not embedding_length / head_count = %u; vkphi does not "
                              "run heads of another width", file, k, d, c->head_dim);
    }

    if (gguf_find_key(f, key(k, a, "attention.layer_norm_epsilon")) >= 0)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: %s says the model uses LayerNorm; vkphi runs RMSNorm models", file, k);
    if (gguf_find_key(f, key(k, a, "attention.layer_norm_rms_epsilon")) < 0)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: required key %s is missing", file, k);
    if (!gguf_get_f32(f, k, &c->rms_eps) || !(c->rms_eps > 0) || !isfinite(c->rms_eps))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is not a positive number", file, k);
    uint32_t experts = 0;
    if (gguf_find_key(f, key(k, a, "expert_count")) >= 0 && (!gguf_get_u32(f, k, &experts) || experts > 0))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: %s says the model is a mixture of experts; vkphi runs dense models",
                          file, k);
    c->rope_base = 10000; // the Phi-3 and Llama default when the key is absent
    if ((rc = opt_positive_f32(f, key(k, a, "rope.freq_base"), &c->rope_base))) return rc;
    // RoPE scaling: none, or LongRoPE where its factor tensors are (converters may
    // name it "longrope" or, for Phi-3, "su").
    const char *scaling = "none";
    bool factors = gguf_find_tensor(f, "rope_factors_long.weight") || gguf_find_tensor(f, "rope_factors_short.weight");
    if (gguf_find_key(f, key(k, a, "rope.scaling.type")) >= 0 &&
        (!gguf_get_str(f, k, &scaling) ||
         (strcmp(scaling, "none") && !(factors && (!strcmp(scaling, "longrope") || !strcmp(scaling, "su"))))))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: RoPE scaling '%.32s' (%s) is not supported", file, scaling, k);

    c->n_rot = c->head_dim;
    if (gguf_find_key(f, key(k, a, "rope.dimension_count")) >= 0 && (rc = need_u32(f, k, &c->n_rot))) return rc;
    if (c->n_rot > c->head_dim || c->n_rot % 2)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is %u; it must be even and at most the head dimension %u", file, k,
                          c->n_rot, c->head_dim);
    c->rope_neox = a == ARCH_PHI3;
    // A window at least as long as the trained context never applies (Phi-4-mini
    // says 262144 for 131072); the reference runtime ignores phi3 windows altogether.
    uint32_t window = 0;
    if (gguf_find_key(f, key(k, a, "attention.sliding_window")) >= 0 && !gguf_get_u32(f, k, &window))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is not an unsigned integer", file, k);
    if (window > 0 && window < c->n_ctx_train)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                          "%s: sliding-window attention (window %u) within the trained context of %u tokens is not "
                          "supported yet", file, window, c->n_ctx_train);
    return check_longrope(f, a, c);
}

// Is `name` a tensor of the graph vkphi runs? (blk.N.* for N < n_layer, the
// embedding, the head, and the LongRoPE factors in phi3 files.)
static bool known_tensor(const char *name, enum arch a, uint32_t n_layer) {
    static const char *const top[] = {"token_embd.weight", "output_norm.weight", "output.weight"};
    static const char *const per_layer[] = {"attn_norm", "attn_qkv", "attn_q",   "attn_k",   "attn_v",
                                            "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (!strcmp(name, top[i])) return true;
    if (a == ARCH_PHI3 && (!strcmp(name, "rope_factors_long.weight") || !strcmp(name, "rope_factors_short.weight")))
        return true;
    if (strncmp(name, "blk.", 4) || name[4] < '0' || name[4] > '9') return false; // strtoul would take " -1" too
    char *end;
    unsigned long l = strtoul(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || (name[4] == '0' && end > name + 5) || l >= n_layer) return false;
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
        size_t n = strlen(per_layer[i]);
        if (!strncmp(end + 1, per_layer[i], n) && !strcmp(end + 1 + n, ".weight")) return true;
    }
    return false;
}

static int check_tensors(const gguf_file *f, enum arch a, model_config *c) {
    const char *file = gguf_name(f);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) return vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", file);
    const uint64_t n_vocab = emb->ne[1];
    if (n_vocab > UINT32_MAX)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: token_embd.weight has %llu rows", file, (unsigned long long)n_vocab);
    c->n_vocab = (uint32_t)n_vocab;
    char k[96];
    uint32_t vocab_size = c->n_vocab; // llama files may state it
    if (gguf_find_key(f, key(k, a, "vocab_size")) >= 0 && !gguf_get_u32(f, k, &vocab_size))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is not an unsigned 32-bit integer", file, k);
    if (vocab_size != c->n_vocab)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s is %u but token_embd.weight has %u rows", file, k, vocab_size,
                          c->n_vocab);
    enum gguf_type et;
    uint64_t n_tokens;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tokens) && n_tokens != n_vocab)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: the tokenizer has %llu tokens but token_embd.weight has %llu rows", file,
                          (unsigned long long)n_tokens, (unsigned long long)n_vocab);
    // Nothing beyond Phi-4's graph: a bias, a Q/K norm or an expert router would be
    // silently ignored otherwise, and the logits would be wrong.
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const char *name = gguf_tensor_at(f, i)->name;
        size_t len = strlen(name);
        if (len >= 5 && !strcmp(name + len - 5, ".bias"))
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: tensor '%.96s' is a bias; vkphi runs models without biases", file,
                              name);
        if (!known_tensor(name, a, c->n_layer))
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                              "%s: tensor '%.96s' is not part of the model vkphi runs (RMSNorm, SwiGLU, GQA, no biases)", file,
                              name);
    }
    const uint64_t E = c->n_embd, F = c->n_ff, Q = (uint64_t)c->n_head * c->head_dim,
                   KV = (uint64_t)c->n_head_kv * c->head_dim;
    int rc;
    if ((rc = check_tensor(f, "token_embd.weight", E, n_vocab, true)) || (rc = check_tensor(f, "output_norm.weight", E, 1, true)) ||
        (rc = check_tensor(f, "output.weight", E, n_vocab, false))) // absent: tied to token_embd
        return rc;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        char n[96], alt[96];
#define T(suffix) (snprintf(n, sizeof n, "blk.%u." suffix ".weight", l), n)
        if ((rc = check_tensor(f, T("attn_norm"), E, 1, true)) || (rc = check_tensor(f, T("attn_output"), Q, E, true)) ||
            (rc = check_tensor(f, T("ffn_norm"), E, 1, true)) || (rc = check_tensor(f, T("ffn_down"), F, E, true)))
            return rc;
        if (gguf_find_tensor(f, T("attn_qkv"))) { // fused rows: Q, then K, then V
            if ((rc = check_tensor(f, n, E, Q + 2 * KV, true))) return rc;
        } else if (gguf_find_tensor(f, T("attn_q"))) {
            if ((rc = check_tensor(f, T("attn_q"), E, Q, true)) || (rc = check_tensor(f, T("attn_k"), E, KV, true)) ||
                (rc = check_tensor(f, T("attn_v"), E, KV, true)))
                return rc;
        } else {
            snprintf(alt, sizeof alt, "blk.%u.attn_q.weight", l);
            return vkphi_fail(VKPHI_ERR_FORMAT, "%s: layer %u has neither '%s' nor '%s'", file, l, T("attn_qkv"), alt);
        }
        if (gguf_find_tensor(f, T("ffn_gate"))) { // separate gate and up
            if ((rc = check_tensor(f, n, E, F, true)) || (rc = check_tensor(f, T("ffn_up"), E, F, true))) return rc;
        } else if ((rc = check_tensor(f, T("ffn_up"), E, 2 * F, true))) { // fused: gate rows, then up rows
            return rc;
        }
#undef T
    }
    return VKPHI_OK;
}

int model_config_read(const gguf_file *f, model_config *c) {
    if (!f) return vkphi_fail(VKPHI_ERR_ARG, "model_check: no file");
    memset(c, 0, sizeof *c);
    const char *file = gguf_name(f), *name;
    if (!gguf_get_str(f, "general.architecture", &name))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: general.architecture is missing", file);
    enum arch a;
    if (!strcmp(name, "phi3"))
        a = ARCH_PHI3;
    else if (!strcmp(name, "llama"))
        a = ARCH_LLAMA;
    else
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: architecture '%.64s' is not supported (vkphi runs phi3, and Phi-4 "
                          "saved as llama)", file, name);
    int rc;
    if ((rc = check_hparams(f, a, c)) || (rc = check_tensors(f, a, c))) return rc;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (!quant_type_supported(t->type))
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                              "%s: unsupported type %s in tensor '%s' (vkphi runs F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
                              "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, "
                              "IQ1_S and IQ1_M)",
                              file, quant_type_name(t->type), t->name);
    }
    return VKPHI_OK;
}

int model_check(const gguf_file *f) {
    model_config c;
    return model_config_read(f, &c);
}

bool model_rope_factors(const gguf_file *f, const model_config *c, uint32_t n_ctx, float *out) {
    if (!c->rope_n_ctx_orig) return false;
    const gguf_tensor *t =
        gguf_find_tensor(f, n_ctx > c->rope_n_ctx_orig ? "rope_factors_long.weight" : "rope_factors_short.weight");
    memcpy(out, t->data, sizeof(float) * (c->n_rot / 2)); // checked F32 of n_rot/2 values; may be unaligned
    return true;
}

void model_matrix_types(const gguf_file *f, bool types[GGML_TYPE_COUNT]) {
    bool has_output = gguf_find_tensor(f, "output.weight") != NULL;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        bool matrix = t->ne[1] > 1 && (!strncmp(t->name, "blk.", 4) || !strcmp(t->name, "output.weight") ||
                                       (!has_output && !strcmp(t->name, "token_embd.weight")));
        if (matrix && t->type < GGML_TYPE_COUNT) types[t->type] = true;
    }
}
