// SPDX-License-Identifier: MIT
// Generation sessions: prefix reuse over one KV-cache sequence, the sample / check /
// append / stream loop, stop strings held back until they are resolved.
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct generate_session {
    model *m;
    const tokenizer *t;
    uint32_t seq, n_ctx, n_vocab;
    // [n_ctx] cache[0..n_cache) are the ids whose K/V are in sequence seq, positions
    // 0..n_cache-1; cache[n_cache..n_want) the ids to evaluate next: the rest of the
    // prompt, or the token sampled last.
    int32_t *cache;
    size_t n_cache, n_want;
    float *logits; // [n_vocab] the logits after cache[n_cache - 1]
    float *biased; // [n_vocab] scratch: logits plus the logit bias
    bool logits_valid;
    bool primed;  // generate_prefill has run since the last generate_run
    int32_t *gen; // the tokens sampled by the last run
    size_t n_gen, cap_gen;
    char *pending; // text not yet handed out (held back for stop strings)
    size_t n_pending, cap_pending;
    tokenizer_stream *stream;
    generate_stats stats;
    double t_prefill; // when the last prompt was given (generate_prefill, generate_start)
    bool prompt_done; // the last prompt is all in the cache (stats.prompt_s is set)

    // The run under way (generate_start, or generate_run): its settings (p's arrays
    // are the caller's), its sampler, where it stands.
    bool running, done;
    generate_params p;
    generate_text_fn on_text;
    void *user;
    sampler *smp;
    uint32_t n_sampled;
    double t_first;
    int rc; // the first error of the run
    generate_result res;
};

generate_params generate_default_params(void) {
    generate_params p = {0};
    p.sampling = sampler_default_params();
    p.max_tokens = -1;
    return p;
}

const char *generate_finish_name(enum generate_finish f) {
    switch (f) {
    case GENERATE_FINISH_STOP:
        return "stop";
    case GENERATE_FINISH_LENGTH:
        return "length";
    case GENERATE_FINISH_ABORT:
        return "abort";
    default:
        return "none";
    }
}

generate_session *generate_session_create(model *m, const tokenizer *t, uint32_t seq) {
    if (!m || !t) {
        vkphi_fail(VKPHI_ERR_ARG, "generate_session_create needs a model and a tokenizer");
        return NULL;
    }
    if (seq >= model_n_seq(m)) {
        vkphi_fail(VKPHI_ERR_ARG, "sequence %u does not exist: the model was loaded with %u sequence(s)", seq,
                   model_n_seq(m));
        return NULL;
    }
    uint32_t n_vocab = model_get_config(m)->n_vocab;
    if (tokenizer_n_vocab(t) > n_vocab) {
        vkphi_fail(VKPHI_ERR_FORMAT, "the tokenizer has %u tokens but the model's output has only %u",
                   tokenizer_n_vocab(t), n_vocab);
        return NULL;
    }
    generate_session *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->m = m;
    s->t = t;
    s->seq = seq;
    s->n_ctx = model_n_ctx(m);
    s->n_vocab = n_vocab;
    s->cache = malloc(sizeof(int32_t) * (s->n_ctx ? s->n_ctx : 1));
    s->logits = malloc(sizeof(float) * n_vocab);
    s->biased = malloc(sizeof(float) * n_vocab);
    s->stream = tokenizer_stream_create(t);
    if (!s->cache || !s->logits || !s->biased || !s->stream) goto nomem;
    return s;
nomem:
    generate_session_destroy(s);
    vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating a generation session");
    return NULL;
}

void generate_session_destroy(generate_session *s) {
    if (!s) return;
    free(s->cache);
    free(s->logits);
    free(s->biased);
    free(s->gen);
    free(s->pending);
    sampler_destroy(s->smp);
    tokenizer_stream_destroy(s->stream);
    free(s);
}

const int32_t *generate_cached(const generate_session *s, size_t *n) {
    *n = s->n_cache;
    return s->cache;
}

void generate_reset(generate_session *s) {
    s->n_cache = s->n_want = 0;
    s->logits_valid = false;
    s->primed = false;
}

uint32_t generate_n_ctx(const generate_session *s) { return s->n_ctx; }
uint32_t generate_seq(const generate_session *s) { return s->seq; }

const generate_stats *generate_session_stats(const generate_session *s) { return &s->stats; }

// ---- the prompt ----

// Makes ids[0..n) the prompt: keeps the longest common prefix with the cache and
// puts the rest in cache[n_cache..n_want), to be evaluated (at least the last token,
// to have its logits, unless those are still at hand).
static int prompt_set(generate_session *s, const int32_t *ids, size_t n, uint32_t *n_reused) {
    s->t_prefill = vkphi_now();
    s->primed = false;
    if (n_reused) *n_reused = 0;
    if (!ids || n == 0) return vkphi_fail(VKPHI_ERR_ARG, "the prompt is empty: there is nothing to generate from");
    if (n > s->n_ctx)
        return vkphi_fail(VKPHI_ERR_ARG, "the prompt has %zu tokens but the context holds only %u", n, s->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= s->n_vocab)
            return vkphi_fail(VKPHI_ERR_ARG, "prompt token %zu is id %d, outside the vocabulary of %u tokens", i,
                              ids[i], s->n_vocab);

    size_t common = 0;
    while (common < n && common < s->n_cache && s->cache[common] == ids[common])
        common++;
    // The logits at hand belong to the last cached token: usable only when the
    // prompt is exactly the cache. Otherwise evaluate at least the last token.
    bool have_logits = common == n && n == s->n_cache && s->logits_valid;
    if (!have_logits && common == n) common = n - 1;
    if (!have_logits) {
        s->logits_valid = false;
        s->n_cache = common; // positions beyond are overwritten from here on
        memmove(s->cache + common, ids + common, sizeof(int32_t) * (n - common));
    }
    s->n_want = n;
    s->stats = (generate_stats){0};
    s->stats.n_prompt = (uint32_t)n;
    s->stats.n_reused = (uint32_t)common;
    s->prompt_done = have_logits;
    if (n_reused) *n_reused = (uint32_t)common;
    return VKPHI_OK;
}

int generate_prefill(generate_session *s, const int32_t *ids, size_t n, uint32_t *n_reused) {
    if (!s) return vkphi_fail(VKPHI_ERR_ARG, "generate_prefill needs a session");
    if (s->running) return vkphi_fail(VKPHI_ERR_ARG, "generate_prefill during a run: end it with generate_end first");
    int rc = prompt_set(s, ids, n, n_reused);
    if (rc != VKPHI_OK) return rc;
    if (s->n_cache < s->n_want) {
        // model_eval cuts the prompt into ubatches itself.
        rc = model_eval(s->m, s->seq, s->cache + s->n_cache, (uint32_t)(s->n_want - s->n_cache), (uint32_t)s->n_cache,
                        s->logits, NULL);
        if (rc != VKPHI_OK) {
            s->n_want = s->n_cache; // the cache keeps only the common prefix
            return rc;
        }
        s->n_cache = s->n_want;
        s->logits_valid = true;
    }
    s->stats.prompt_s = vkphi_now() - s->t_prefill;
    s->prompt_done = true;
    s->primed = true;
    return VKPHI_OK;
}

// ---- stop strings ----

long generate_find_stop(const char *text, size_t len, const char *const *stop, size_t n_stop, int *which,
                        size_t *hold) {
    long best = -1;
    size_t keep = 0;
    *which = -1;
    for (size_t k = 0; k < n_stop; k++) {
        const char *st = stop[k];
        size_t sl = st ? strlen(st) : 0;
        if (sl == 0) continue;
        const char *hit = len >= sl ? memmem(text, len, st, sl) : NULL;
        if (hit && (best < 0 || hit - text < best)) {
            best = hit - text;
            *which = (int)k;
        }
        // The longest proper prefix of st that ends the text.
        size_t most = sl - 1 < len ? sl - 1 : len;
        for (size_t h = most; h > keep; h--)
            if (!memcmp(text + len - h, st, h)) {
                keep = h;
                break;
            }
    }
    *hold = best >= 0 ? 0 : keep;
    return best;
}

static int append_pending(generate_session *s, const char *text, size_t len) {
    if (s->n_pending + len + 1 > s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending : 256;
        while (cap < s->n_pending + len + 1)
            cap *= 2;
        char *p = realloc(s->pending, cap);
        if (!p) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory holding generated text");
        s->pending = p;
        s->cap_pending = cap;
    }
    memcpy(s->pending + s->n_pending, text, len);
    s->n_pending += len;
    return VKPHI_OK;
}

static int append_gen(generate_session *s, int32_t tok) {
    if (s->n_gen == s->cap_gen) {
        size_t cap = s->cap_gen ? s->cap_gen * 2 : 256;
        int32_t *g = realloc(s->gen, cap * sizeof *g);
        if (!g) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory holding generated tokens");
        s->gen = g;
        s->cap_gen = cap;
    }
    s->gen[s->n_gen++] = tok;
    return VKPHI_OK;
}

// Hands out pending[0..n) (n moved back to a character boundary, in case a stop
// string splits a character) and keeps the rest.
// Returns the callback's answer (true when there is no callback).
static bool emit(generate_session *s, size_t n, generate_text_fn on_text, void *user) {
    while (n > 0 && n < s->n_pending && ((unsigned char)s->pending[n] & 0xC0) == 0x80)
        n--;
    bool go_on = on_text ? on_text(s->pending, n, user) : true;
    memmove(s->pending, s->pending + n, s->n_pending - n);
    s->n_pending -= n;
    return go_on;
}

// ---- the generation, one token at a time ----

// Ends the run with the finish in s->res: whatever text is still held back is final
// now (an incomplete character becomes U+FFFD, a possible stop-string start that
// never completed is text after all) unless the run was aborted or failed.
static void run_finish(generate_session *s) {
    s->done = true;
    s->n_want = s->n_cache;
    size_t tail_len;
    const char *tail = tokenizer_stream_flush(s->stream, &tail_len);
    if (s->rc == VKPHI_OK && (s->res.finish == GENERATE_FINISH_LENGTH || s->res.eog_token >= 0)) {
        s->rc = append_pending(s, tail, tail_len);
        if (s->rc == VKPHI_OK) {
            int which;
            size_t hold;
            long at = generate_find_stop(s->pending, s->n_pending, s->p.stop, s->p.n_stop, &which, &hold);
            if (at >= 0) {
                s->res.finish = GENERATE_FINISH_STOP;
                s->res.stop_index = which;
                s->res.context_full = false;
            }
            size_t n = at >= 0 ? (size_t)at : s->n_pending;
            if (n) emit(s, n, s->on_text, s->user);
        }
    }
    s->n_pending = 0;
    s->stats.n_gen = s->n_sampled;
    s->stats.gen_s = s->n_sampled ? vkphi_now() - s->t_first : 0;
}

static void run_end(generate_session *s, enum generate_finish f) {
    s->res.finish = f;
    run_finish(s);
}

// With the logits after the last cached token at hand: samples the next token,
// checks for the end, streams its text, and either ends the run or makes the token
// the one to evaluate next.
static void run_sample(generate_session *s) {
    const generate_params *p = &s->p;
    if (p->max_tokens >= 0 && s->n_sampled >= (uint32_t)p->max_tokens) return run_end(s, GENERATE_FINISH_LENGTH);
    const float *logits = s->logits;
    if (p->n_bias) {
        memcpy(s->biased, s->logits, sizeof(float) * s->n_vocab);
        for (size_t i = 0; i < p->n_bias; i++)
            s->biased[p->bias[i].token] += p->bias[i].bias;
        logits = s->biased;
    }
    int32_t tok = sampler_sample(s->smp, logits);
    if (tok < 0) {
        s->rc = VKPHI_ERR_ARG;
        return run_end(s, GENERATE_FINISH_NONE);
    }
    if (s->n_sampled < p->n_force) tok = p->force[s->n_sampled]; // a test's script (checked at the start)
    if (s->n_sampled++ == 0) {
        s->t_first = vkphi_now();
        s->stats.ttft_s = s->t_first - s->t_prefill;
    }
    s->stats.n_gen = s->n_sampled;
    if (tokenizer_is_eog(s->t, tok)) {
        s->res.eog_token = tok;
        return run_end(s, GENERATE_FINISH_STOP);
    }
    if ((s->rc = append_gen(s, tok)) != VKPHI_OK) return run_end(s, GENERATE_FINISH_NONE);
    sampler_accept(s->smp, tok);

    if (p->special || !tokenizer_is_special(s->t, tok) || tokenizer_is_markup(s->t, tok)) {
        size_t len;
        const char *piece = tokenizer_stream_put(s->stream, tok, &len);
        if ((s->rc = append_pending(s, piece, len)) != VKPHI_OK) return run_end(s, GENERATE_FINISH_NONE);
    }
    int which;
    size_t hold;
    long at = generate_find_stop(s->pending, s->n_pending, p->stop, p->n_stop, &which, &hold);
    if (at >= 0) {
        emit(s, (size_t)at, s->on_text, s->user); // the text before the stop string, not it
        s->res.stop_index = which;
        return run_end(s, GENERATE_FINISH_STOP);
    }
    if (!emit(s, s->n_pending - hold, s->on_text, s->user)) return run_end(s, GENERATE_FINISH_ABORT);
    if (p->max_tokens >= 0 && s->n_sampled >= (uint32_t)p->max_tokens) return run_end(s, GENERATE_FINISH_LENGTH);
    if (s->n_cache >= s->n_ctx) {
        s->res.context_full = true;
        return run_end(s, GENERATE_FINISH_LENGTH);
    }
    // The token goes into the cache next; its logits pick the one after.
    s->cache[s->n_cache] = tok;
    s->n_want = s->n_cache + 1;
}

// Checks p and starts a run over the prompt in cache[0..n_want); samples at once
// when the logits after it are at hand.
static int run_begin(generate_session *s, const generate_params *p, generate_text_fn on_text, void *user) {
    s->n_gen = 0;
    s->n_pending = 0;
    s->n_sampled = 0;
    s->rc = VKPHI_OK;
    s->res = (generate_result){.eog_token = -1, .stop_index = -1};
    for (size_t i = 0; i < p->n_bias; i++)
        if (p->bias[i].token < 0 || (uint32_t)p->bias[i].token >= s->n_vocab)
            return vkphi_fail(VKPHI_ERR_ARG, "logit bias for token %d, outside the vocabulary of %u tokens",
                              p->bias[i].token, s->n_vocab);
    for (size_t i = 0; i < p->n_force; i++)
        if (!p->force || p->force[i] < 0 || (uint32_t)p->force[i] >= s->n_vocab)
            return vkphi_fail(VKPHI_ERR_ARG, "forced token %zu is outside the vocabulary of %u tokens", i, s->n_vocab);
    sampler_destroy(s->smp);
    if (!(s->smp = sampler_create(&p->sampling, s->n_vocab))) return VKPHI_ERR_ARG;
    sampler_accept_prompt(s->smp, s->cache, (uint32_t)s->n_want);
    tokenizer_stream_flush(s->stream, NULL); // start clean
    s->p = *p;
    s->on_text = on_text;
    s->user = user;
    s->running = true;
    s->done = false;
    if (s->n_cache == s->n_want) run_sample(s);
    return VKPHI_OK;
}

int generate_start(generate_session *s, const int32_t *ids, size_t n, const generate_params *p,
                   generate_text_fn on_text, void *user, uint32_t *n_reused) {
    if (!s || !p) return vkphi_fail(VKPHI_ERR_ARG, "generate_start needs a session and parameters");
    if (s->running) return vkphi_fail(VKPHI_ERR_ARG, "generate_start during a run: end it with generate_end first");
    int rc = prompt_set(s, ids, n, n_reused);
    if (rc == VKPHI_OK) rc = run_begin(s, p, on_text, user);
    if (rc != VKPHI_OK) s->n_want = s->n_cache;
    return rc;
}

uint32_t generate_pending(const generate_session *s, const int32_t **ids, uint32_t *pos) {
    *ids = s->cache + s->n_cache;
    *pos = (uint32_t)s->n_cache;
    return s->done ? 0 : (uint32_t)(s->n_want - s->n_cache);
}

int generate_step(generate_session *s, uint32_t n, const float *logits) {
    if (n == 0 || n > s->n_want - s->n_cache || s->done)
        return vkphi_fail(VKPHI_ERR_ARG, "generate_step: %u tokens evaluated, but %zu were pending", n,
                          s->done ? 0 : s->n_want - s->n_cache);
    s->n_cache += n;
    if (s->n_cache < s->n_want) {
        s->logits_valid = false;
        return VKPHI_OK;
    }
    if (!logits) {
        s->logits_valid = false;
        return vkphi_fail(VKPHI_ERR_ARG, "generate_step: the logits after the last pending token are needed");
    }
    if (logits != s->logits) memcpy(s->logits, logits, sizeof(float) * s->n_vocab);
    s->logits_valid = true;
    if (!s->prompt_done) {
        s->prompt_done = true;
        s->stats.prompt_s = vkphi_now() - s->t_prefill;
    }
    if (s->running) run_sample(s);
    return s->rc;
}

bool generate_done(const generate_session *s) { return !s->running || s->done; }

// Ends a run that has not finished with finish f: what is held back is dropped and
// the tokens not evaluated yet are forgotten.
static void run_stop(generate_session *s, enum generate_finish f) {
    if (!s->running || s->done) return;
    s->res.finish = f;
    s->done = true;
    s->n_want = s->n_cache;
    tokenizer_stream_flush(s->stream, NULL);
    s->n_pending = 0;
    s->stats.n_gen = s->n_sampled;
    s->stats.gen_s = s->n_sampled ? vkphi_now() - s->t_first : 0;
}

int generate_end(generate_session *s, generate_result *out) {
    run_stop(s, GENERATE_FINISH_ABORT);
    s->running = false;
    if (out) {
        *out = s->res;
        out->tokens = s->gen;
        out->n_tokens = s->n_gen;
        out->stats = s->stats;
    }
    return s->rc;
}

int generate_run(generate_session *s, const generate_params *p, generate_text_fn on_text, void *user,
                 generate_result *out) {
    if (!s || !p || !out) return vkphi_fail(VKPHI_ERR_ARG, "generate_run needs a session, parameters and a result");
    memset(out, 0, sizeof *out);
    out->eog_token = -1;
    out->stop_index = -1;
    s->n_gen = 0;
    if (s->running) return vkphi_fail(VKPHI_ERR_ARG, "generate_run during a step-wise run");
    if (!s->primed || !s->logits_valid || s->n_cache == 0)
        return vkphi_fail(VKPHI_ERR_ARG, "nothing to generate from: call generate_prefill before each generate_run");
    s->primed = false;
    int rc = run_begin(s, p, on_text, user);
    if (rc != VKPHI_OK) return rc;
    // One token at a time, each evaluated into s->logits.
    const int32_t *ids;
    uint32_t pos, n;
    while (rc == VKPHI_OK && (n = generate_pending(s, &ids, &pos)) > 0) {
        rc = model_eval(s->m, s->seq, ids, n, pos, s->logits, NULL);
        if (rc == VKPHI_OK) rc = generate_step(s, n, s->logits);
    }
    if (rc != VKPHI_OK) run_stop(s, GENERATE_FINISH_NONE); // a failed evaluation
    int end_rc = generate_end(s, out);
    return rc != VKPHI_OK ? rc : end_rc;
}
