// SPDX-License-Identifier: MIT
// Token sampling on the CPU: repetition penalties, top-k, top-p, min-p and
// temperature over one row of logits, with a seeded random generator of its own.
// No Vulkan here: this module builds and tests anywhere.
//
// Order of operations in sampler_sample (llama.cpp's default chain):
//   0. NaN logits count as -inf; +inf counts as the largest finite float.
//   1. penalties, over the last repeat_last_n accepted tokens:
//        repeat:   logit > 0 ? logit / repeat_penalty : logit * repeat_penalty
//        then      logit -= presence_penalty * (count > 0) + frequency_penalty * count
//   2. temperature == 0: return the argmax (lowest id on ties); the generator is not used.
//   3. top-k: keep the k highest logits (ties broken by lower id).
//   4. top-p: softmax (temperature 1) over what top-k kept; keep the nucleus, the
//      smallest set of highest-probability tokens whose probabilities sum to >= top_p.
//      A cumulative sum within 1e-6 * top_p of top_p counts as reaching it, so that
//      float rounding cannot add a token (0.5 + 0.3 with top_p 0.8 keeps two).
//   5. min-p: keep tokens whose probability is >= min_p times the largest one's
//      (logit >= max_logit + ln(min_p)); the largest token always stays.
//   6. temperature: probabilities of the survivors ∝ exp(logit / temperature).
//   7. draw one token from them.
// At least one token (the argmax) always survives steps 3-5.
//
// Cost for a 100352-entry vocabulary (nothing sorts the whole vocabulary): one pass
// copies the logits and finds the max of each block of 64. Greedy then scans for the
// first max. Top-k keeps a k-entry heap, skipping blocks whose max cannot enter it.
// Top-p without top-k takes one vectorized pass for exp(logit - max) and the softmax
// denominator, bins the tokens min-p keeps by (max - logit) in 1/8 nat steps, and
// sorts only the bin where the cumulative mass crosses p. With every filter off, the
// weights are one vectorized pass. The draw walks block sums, then one block.
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct sampler_params {
    float temperature;       // 0.8; 0 = greedy (argmax, seed unused)
    int32_t top_k;           // 40; 0 (or >= n_vocab) = off
    float top_p;             // 0.95; 1 = off; in [0, 1]
    float min_p;             // 0.05; 0 = off; in [0, 1]
    float repeat_penalty;    // 1.0 = off; > 0
    float presence_penalty;  // 0 = off (OpenAI semantics; may be negative)
    float frequency_penalty; // 0 = off (OpenAI semantics; may be negative)
    int32_t repeat_last_n;   // 64: penalty window in tokens; 0 = no penalties at all
    bool penalize_prompt;    // true: sampler_accept_prompt adds the prompt to the window
    uint64_t seed;           // 0 by default; same seed + settings + logits -> same tokens
} sampler_params;

typedef struct sampler sampler;

// The defaults listed above.
sampler_params sampler_default_params(void);

// Checks the settings (NULL and VKPHI_ERR_ARG's sentence in vkphi_last_error() when
// one is out of range) and allocates the scratch for n_vocab logits.
sampler *sampler_create(const sampler_params *p, uint32_t n_vocab);
void sampler_destroy(sampler *s);

// Picks one token from logits[n_vocab] (read only). Returns its id, or -1 (with
// vkphi_last_error() set) when s or logits is NULL. All logits NaN or -inf: returns 0.
int32_t sampler_sample(sampler *s, const float *logits);

// Adds a generated token to the penalty window (the caller accepts what it keeps;
// sampler_sample does not). Returns VKPHI_OK, or VKPHI_ERR_ARG for an id outside
// [0, n_vocab), which is then ignored.
int sampler_accept(sampler *s, int32_t token);
// Adds prompt tokens to the penalty window when params.penalize_prompt is set
// (llama.cpp does); otherwise does nothing. Returns as sampler_accept.
int sampler_accept_prompt(sampler *s, const int32_t *tokens, uint32_t n);

// Empties the penalty window and restarts the generator from the seed.
void sampler_reset(sampler *s);
// Replaces the seed and restarts the generator from it (the window is kept).
void sampler_set_seed(sampler *s, uint64_t seed);

// For tests and inspection: applies step 1 to logits[n_vocab] in place, as
// sampler_sample would with the current window.
void sampler_apply_penalties(const sampler *s, float *logits);

// For tests and inspection (logprobs, "top alternatives"): runs steps 0-6 on logits and
// returns how many tokens survive; *ids and *probs (probabilities after temperature,
// summing to 1) point into the sampler's scratch, in no particular order, valid until
// the next call on s. Greedy gives the argmax with probability 1. Returns 0 (with
// vkphi_last_error() set) when s or logits is NULL.
uint32_t sampler_candidates(sampler *s, const float *logits, const int32_t **ids,
                            const float **probs);
