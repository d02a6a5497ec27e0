// SPDX-License-Identifier: MIT
#include "model_check.h"

#include "common.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

// Hyperparameters as the check reads them (see ../shared/PHI4.md for Phi-4's values).
struct hparams {
    uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, n_ctx;
};

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

static int check_hparams(const gguf_file *f, struct hparams *hp) {
    const char *file = gguf_name(f);
    int rc;
    if ((rc = need_u32(f, "phi3.block_count", &hp->n_layer)) || (rc = need_u32(f, "phi3.embedding_length", &hp->n_embd)) ||
        (rc = need_u32(f, "phi3.feed_forward_length", &hp->n_ff)) ||
        (rc = need_u32(f, "phi3.attention.head_count", &hp->n_head)) || (rc = need_u32(f, "phi3.context_length", &hp->n_ctx)))
        return rc;
    hp->n_head_kv = hp->n_head; // absent means no grouped-query attention
    if (gguf_find_key(f, "phi3.attention.head_count_kv") >= 0 && (rc = need_u32(f, "phi3.attention.head_count_kv", &hp->n_head_kv)))
        return rc;
    if (hp->n_head % hp->n_head_kv)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: %u query heads cannot be split evenly over %u KV heads", file, hp->n_head,
                          hp->n_head_kv);
    if (hp->n_embd % hp->n_head)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: embedding length %u is not a multiple of the %u heads", file, hp->n_embd,
                          hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->head_dim % 2)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: head dimension %u is odd; rotary embedding needs it even", file,
                          hp->head_dim);

    float eps;
    if (gguf_find_key(f, "phi3.attention.layer_norm_rms_epsilon") < 0)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: required key phi3.attention.layer_norm_rms_epsilon is missing", file);
    if (!gguf_get_f32(f, "phi3.attention.layer_norm_rms_epsilon", &eps) || !(eps > 0) || !isfinite(eps))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: phi3.attention.layer_norm_rms_epsilon is not a positive number", file);
    float base = 10000; // the Phi-3 default when the key is absent
    if (gguf_find_key(f, "phi3.rope.freq_base") >= 0 &&
        (!gguf_get_f32(f, "phi3.rope.freq_base", &base) || !(base > 0) || !isfinite(base)))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: phi3.rope.freq_base is not a positive number", file);

    uint32_t rope_dim = hp->head_dim;
    if (gguf_find_key(f, "phi3.rope.dimension_count") >= 0 && (rc = need_u32(f, "phi3.rope.dimension_count", &rope_dim)))
        return rc;
    if (rope_dim != hp->head_dim)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: partial rotary dimensions (%u of %u) are not supported yet", file,
                          rope_dim, hp->head_dim);
    uint32_t window = 0;
    if (gguf_find_key(f, "phi3.attention.sliding_window") >= 0 && !gguf_get_u32(f, "phi3.attention.sliding_window", &window))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: phi3.attention.sliding_window is not an unsigned integer", file);
    if (window > 0)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: sliding-window attention (window %u) is not supported yet", file, window);
    if (gguf_find_tensor(f, "rope_factors_long.weight") || gguf_find_tensor(f, "rope_factors_short.weight"))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: LongRoPE (rope_factors_long/short tensors) is not supported yet", file);
    float attn_factor = 1;
    if (gguf_find_key(f, "phi3.rope.scaling.attn_factor") >= 0 &&
        (!gguf_get_f32(f, "phi3.rope.scaling.attn_factor", &attn_factor) || attn_factor != 1))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: LongRoPE attention scaling (phi3.rope.scaling.attn_factor) is not supported yet",
                          file);
    return VKPHI_OK;
}

static int check_tensors(const gguf_file *f, const struct hparams *hp) {
    const char *file = gguf_name(f);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) return vkphi_fail(VKPHI_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", file);
    const uint64_t n_vocab = emb->ne[1];
    enum gguf_type et;
    uint64_t n_tokens;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n_tokens) && n_tokens != n_vocab)
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: the tokenizer has %llu tokens but token_embd.weight has %llu rows", file,
                          (unsigned long long)n_tokens, (unsigned long long)n_vocab);
    const uint64_t E = hp->n_embd, F = hp->n_ff, Q = (uint64_t)hp->n_head * hp->head_dim,
                   KV = (uint64_t)hp->n_head_kv * hp->head_dim;
    int rc;
    if ((rc = check_tensor(f, "token_embd.weight", E, n_vocab, true)) || (rc = check_tensor(f, "output_norm.weight", E, 1, true)) ||
        (rc = check_tensor(f, "output.weight", E, n_vocab, false))) // absent: tied to token_embd
        return rc;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
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

int model_check(const gguf_file *f) {
    if (!f) return vkphi_fail(VKPHI_ERR_ARG, "model_check: no file");
    const char *file = gguf_name(f), *arch;
    if (!gguf_get_str(f, "general.architecture", &arch))
        return vkphi_fail(VKPHI_ERR_FORMAT, "%s: general.architecture is missing", file);
    if (strcmp(arch, "phi3"))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: architecture '%.64s' is not supported (vkphi runs phi3)", file, arch);
    struct hparams hp;
    int rc;
    if ((rc = check_hparams(f, &hp)) || (rc = check_tensors(f, &hp))) return rc;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (!quant_type_supported(t->type))
            return vkphi_fail(VKPHI_ERR_UNSUPPORTED,
                              "%s: unsupported type %s in tensor '%s' (vkphi runs F32, F16, BF16, Q8_0, Q4_0, Q3_K, Q4_K, Q5_K, Q6_K, "
                              "IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S and IQ1_M)",
                              file, quant_type_name(t->type), t->name);
    }
    return VKPHI_OK;
}
