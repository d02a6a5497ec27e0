// SPDX-License-Identifier: MIT
// The server's scheduler: --parallel N slots, each a generation session on its own
// KV-cache sequence of one shared model, fed from one first-come-first-served queue.
//
// One engine thread drives the model (which is not thread-safe) in steps. Each step
// is one model_eval_batch call: every decoding slot contributes its one token, and
// slots with prompt left to evaluate add chunks of it up to a per-step token budget,
// so a long prompt does not stall the others. Then each slot samples its own token
// with its own settings and streams it. A request waits in the queue while every
// slot is busy; it is never dropped. A free slot whose cache starts with the longest
// part of a waiting prompt takes it, and only the rest of the prompt is evaluated.
//
// Batching does not change what a request gets: a prompt is cut into chunks at
// positions that do not depend on the load (multiples of a fixed chunk size), and a
// token's logits do not depend on the rest of its batch (model_eval_batch's promise),
// so a request among others sees the same evaluations of its tokens as alone.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "vkphi.h"

typedef struct srv_engine srv_engine;
typedef struct srv_task srv_task;

enum srv_outcome {
    SRV_OUTCOME_OK,        // finished: see srv_task_finish
    SRV_OUTCOME_CANCELLED, // srv_task_cancel, or the server is shutting down
    SRV_OUTCOME_FAILED,    // an evaluation failed: srv_task_error says why
};

typedef struct srv_usage {
    uint32_t prompt;     // prompt tokens
    uint32_t cached;     // of those, already in the slot's cache (not evaluated again)
    uint32_t completion; // tokens sampled, an end token included
} srv_usage;

// Starts the engine thread with n_slots slots on sequences 0..n_slots-1 of m (loaded
// with n_seq >= n_slots); a step evaluates at most max_step tokens (the model's
// ubatch), which must exceed n_slots. NULL and vkphi_last_error() on failure.
srv_engine *srv_engine_create(model *m, const tokenizer *t, uint32_t n_slots, uint32_t max_step);
// Cancels every task (queued or running), refuses new ones, and waits for the
// engine thread to end. Safe to call more than once.
void srv_engine_shutdown(srv_engine *e);
// Shuts down if needed and frees the engine (every task must have been released).
void srv_engine_destroy(srv_engine *e);
// A snapshot of the slots, the queue and the totals since the start, for /health
// and /metrics. Token totals are those of the tasks' usage (srv_usage): prompt and
// cached count when a task ends, generated tokens as they are sampled.
typedef struct srv_stats {
    uint32_t slots, busy, queued;
    uint64_t kv_held, kv_capacity; // tokens in the slots' caches; slots x context
    uint64_t tasks;                // tasks that ran on a slot and ended (any outcome)
    uint64_t prompt_tokens, cached_tokens, generated_tokens;
    double run_s;        // seconds those tasks held their slots, summed
    uint64_t steps, step_tokens; // model_eval_batch calls (one per step) and the tokens in them
    double tokens_per_s; // generated over the last rate_window_s whole seconds
    uint32_t rate_window_s;
} srv_stats;
void srv_engine_stats(srv_engine *e, srv_stats *st);

// A request for n_prompt tokens of prompt and the generation settings of p. The task
// takes over prompt, the n_stop strings of stop and the array itself, and bias (all
// malloc'd, any may be NULL); p->stop and p->bias are ignored. The caller holds one
// reference. NULL when memory runs out (nothing is taken over then).
srv_task *srv_task_create(srv_engine *e, int32_t *prompt, uint32_t n_prompt, const generate_params *p, char **stop,
                          size_t n_stop, generate_logit_bias *bias, size_t n_bias);
void srv_task_retain(srv_task *t);
void srv_task_release(srv_task *t);

// Queues the task. False when the server is shutting down (the task is then done
// and cancelled).
bool srv_engine_submit(srv_task *t);
// Waits up to timeout_ms until the task has text not yet taken or is done, and
// appends the new text (valid UTF-8) to *out. Returns true once the task is done
// and all of its text has been taken. *oom is set when *out could not grow.
bool srv_task_take(srv_task *t, int timeout_ms, srv_buf *out, bool *oom);
// Stops the task as soon as possible: a queued task leaves the queue, a running one
// frees its slot after the current step. Nothing happens once it is done.
void srv_task_cancel(srv_task *t);

// Results, meaningful once srv_task_take has returned true.
enum srv_outcome srv_task_outcome(srv_task *t);
enum generate_finish srv_task_finish(srv_task *t);
srv_usage srv_task_usage(srv_task *t);
const char *srv_task_error(srv_task *t); // "" unless the outcome is FAILED
// Seconds spent in the queue, and from the start of the prefill to the end.
void srv_task_times(srv_task *t, double *queued_s, double *run_s);
