// SPDX-License-Identifier: MIT
// Text generation over one KV-cache sequence of a loaded model: prompt prefill that
// reuses what the cache already holds, then sample / check for the end / append to
// the cache / stream the text, one token at a time.
//
// A session is bound to one sequence index of the model (model_params.n_seq gives a
// model several; the server keeps one session per slot). It remembers the token ids
// whose keys and values are in that sequence of the cache, so a new prompt that
// starts with them (the next turn of a chat, a conversation the server has seen)
// only evaluates the new suffix.
//
// Threads: a model is not thread-safe and neither is a session. Several sessions may
// share one model, but every call on any of them (and every other call on the model)
// must be serialized by the caller, e.g. one worker thread or one mutex per model.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

typedef struct generate_logit_bias {
    int32_t token;
    float bias; // added to the token's logit before sampling; -INFINITY bans it
} generate_logit_bias;

typedef struct generate_params {
    sampler_params sampling;
    int32_t max_tokens;      // most tokens to sample; < 0: until the end or the context is full
    const char *const *stop; // stop strings (UTF-8), matched on the generated text; may be NULL
    size_t n_stop;
    const generate_logit_bias *bias; // may be NULL
    size_t n_bias;
    bool special; // also stream the text of special tokens other than the end ones
    // For tests: the first n_force tokens of the answer are these instead of sampled
    // ones (each still goes through the end-token check, the stop strings and the
    // streaming as a sampled one does); sampling takes over after them. May be NULL.
    const int32_t *force;
    size_t n_force;
} generate_params;

// max_tokens -1, the sampler's defaults, no stop strings, no bias.
generate_params generate_default_params(void);

enum generate_finish {
    GENERATE_FINISH_NONE = 0,
    GENERATE_FINISH_STOP,   // an end-of-generation token or a stop string
    GENERATE_FINISH_LENGTH, // max_tokens reached, or the context is full (context_full says which)
    GENERATE_FINISH_ABORT,  // the callback asked to stop
};
const char *generate_finish_name(enum generate_finish f); // "stop", "length", "abort", "none"

typedef struct generate_stats {
    uint32_t n_prompt; // tokens of the last prompt given to generate_prefill
    uint32_t n_reused; // of those, already in the cache (not evaluated again)
    double prompt_s;   // seconds evaluating the other n_prompt - n_reused
    uint32_t n_gen;    // tokens sampled by the last generate_run (an end token included)
    double gen_s;      // seconds from the first sampled token to the end of the run
    double ttft_s;     // seconds from the start of generate_prefill to the first sampled token
} generate_stats;

typedef struct generate_result {
    enum generate_finish finish;
    bool context_full;     // finish is LENGTH because the cache has no room for another token
    int32_t eog_token;     // the end-of-generation token that stopped it, or -1
    int stop_index;        // index in params.stop of the stop string that matched, or -1
    const int32_t *tokens; // the tokens sampled, the end token excluded (valid until the next call)
    size_t n_tokens;
    generate_stats stats;
} generate_result;

// Called with each piece of text as soon as it is final: valid UTF-8 (pieces never
// split a character), never part of a matched stop string. Also called with len 0
// after a token whose text is still held back (an incomplete character, the possible
// start of a stop string), so that it can ask to stop at every token. Returning false
// ends the run with GENERATE_FINISH_ABORT. text is not NUL-terminated.
typedef bool (*generate_text_fn)(const char *text, size_t len, void *user);

typedef struct generate_session generate_session;

// A session on sequence seq of m (seq < model_n_seq(m)); the cache of that sequence
// counts as empty. t must stay alive as long as the session. NULL and an error on
// a bad argument or out of memory.
generate_session *generate_session_create(model *m, const tokenizer *t, uint32_t seq);
void generate_session_destroy(generate_session *s);

// Makes the cache hold exactly ids[0..n): keeps the longest common prefix of ids and
// what the cache holds, and evaluates the rest (at least the last token, to have its
// logits, unless those are still at hand). *n_reused (may be NULL) gets the number of
// tokens kept. Errors: n == 0 or more tokens than the context (VKPHI_ERR_ARG), a token
// outside the vocabulary (VKPHI_ERR_ARG), a failed evaluation (the cache then keeps
// only the common prefix).
int generate_prefill(generate_session *s, const int32_t *ids, size_t n, uint32_t *n_reused);

// Generates after the last generate_prefill: the first token comes from the logits
// of the last prompt token. Each sampled token that is not an end token is appended
// to the cache, except the last one of the run (it was never evaluated). To go on
// (the next chat turn, "continue"), call generate_prefill again with everything so
// far: what is cached is reused. Returns VKPHI_OK with *out filled whatever the
// finish reason, or an error code (no prefill since the last run, bad params, a
// failed evaluation; *out then holds what was generated so far). Built on the
// step-wise calls below, evaluating one token at a time with model_eval.
int generate_run(generate_session *s, const generate_params *p, generate_text_fn on_text, void *user,
                 generate_result *out);

// ---- step-wise generation ----
// The caller evaluates, the session samples: what a server does to evaluate the
// tokens of many sessions in one model_eval_batch call.
//
//   generate_start(s, prompt, n, &p, on_text, user, &reused);
//   while (!generate_done(s)) {
//       k = generate_pending(s, &ids, &pos);  // the rest of the prompt, or the last sampled token
//       evaluate ids[0..j) (j <= k) at positions pos.. of sequence generate_seq(s), with the
//       logits of the last one when j == k
//       generate_step(s, j, j == k ? logits : NULL);  // samples, streams, checks for the end
//   }
//   generate_end(s, &result);
//
// Same results as generate_prefill + generate_run for the same evaluations: prefix
// reuse, stop strings, logit bias, UTF-8-safe streaming, max_tokens, a full context,
// forced tokens. p's arrays (stop, bias, force) must stay valid until generate_end.

// Makes the prompt ids[0..n) (prefix reuse as in generate_prefill, nothing evaluated
// yet) and starts a run with p. When the logits after the prompt are still at hand,
// the first token is sampled at once (on_text may be called). Errors as
// generate_prefill's and generate_run's (bad prompt, bad params); the session is then
// not running.
int generate_start(generate_session *s, const int32_t *ids, size_t n, const generate_params *p,
                   generate_text_fn on_text, void *user, uint32_t *n_reused);
// The tokens to evaluate next, ids[0..k) at positions *pos.. (k returned; 0 once the
// run has ended): the rest of the prompt, or the one token sampled last. ids is valid
// until the next call on the session.
uint32_t generate_pending(const generate_session *s, const int32_t **ids, uint32_t *pos);
// The first n of the pending tokens have been evaluated (their K/V are in the cache).
// When they were all the pending ones, logits (n_vocab floats, the logits after the
// last of them) is needed, and the next token is sampled, streamed and checked as in
// generate_run; otherwise logits is ignored. Returns VKPHI_OK, or an error (a bad
// count, out of memory; the run has then ended).
int generate_step(generate_session *s, uint32_t n, const float *logits);
// True once the run has ended (or when none was started).
bool generate_done(const generate_session *s);
// Ends the run (one not finished yet ends as GENERATE_FINISH_ABORT, its held-back text
// dropped, its pending tokens forgotten: e.g. after a failed evaluation or a cancel)
// and fills *out (may be NULL) as generate_run does. Returns the run's error, if any.
int generate_end(generate_session *s, generate_result *out);
// The current prompt's and run's statistics (n_gen counts tokens as they are sampled).
const generate_stats *generate_session_stats(const generate_session *s);

// The token ids in the session's sequence of the cache (valid until the next call).
const int32_t *generate_cached(const generate_session *s, size_t *n);
// Forgets the cache contents (the next prefill evaluates everything).
void generate_reset(generate_session *s);
uint32_t generate_n_ctx(const generate_session *s);
uint32_t generate_seq(const generate_session *s);

// The stop-string scan used by generate_run, exposed for tests. text[0..len) is text
// not yet handed out. Returns the offset of the earliest complete match of any stop
// string (and its index in *which), or -1 when none matches; then *hold gets the length
// of the longest suffix of the text that could still be the start of a stop string
// (that much must be held back).
long generate_find_stop(const char *text, size_t len, const char *const *stop, size_t n_stop, int *which, size_t *hold);
