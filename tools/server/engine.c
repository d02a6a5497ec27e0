// SPDX-License-Identifier: MIT
// The server's slots, queue and engine thread. See engine.h for the design.
//
// Locking: one mutex (e->mu) guards the queue, the slots' assignments and every
// task's shared fields. Only the engine thread calls into the model and the slots'
// sessions, and never while it holds the mutex; the sessions' text callback takes it
// to hand text to the waiting client.
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkphi.h"

// A prompt is evaluated in chunks cut at the positions that are multiples of the
// chunk size (SRV_CHUNK, less when the step limit is small), whatever the load, so
// that a request alone and among others sees the same evaluations of its tokens.
#define SRV_CHUNK 128
// Tokens per step: every decoding slot's one token, then one prompt chunk of each
// prompting request, oldest first, while they fit (at least one chunk a step, so
// that prompts always move). A step with prompt chunks in it costs about this many tokens' evaluation,
// which is how long the decoding slots wait for their next token meanwhile.
#define SRV_STEP_BUDGET 384
// The tokens/s gauge counts the generated tokens of the last SRV_RATE_WINDOW whole
// seconds, in one-second buckets.
#define SRV_RATE_WINDOW 10

enum task_state { TASK_NEW, TASK_QUEUED, TASK_RUNNING, TASK_DONE };

struct srv_task {
    srv_engine *e;
    int refs;
    int32_t *prompt; // [n_prompt]
    uint32_t n_prompt;
    generate_params params; // params.stop points at stop
    char **stop;            // [n_stop] owned
    size_t n_stop;
    generate_logit_bias *bias; // [n_bias] owned

    // Shared, under e->mu.
    enum task_state state;
    bool cancel;
    srv_task *next; // queue link
    srv_buf out;    // generated text not taken yet
    bool out_oom;
    enum srv_outcome outcome;
    enum generate_finish finish;
    srv_usage usage;
    char error[256];
    pthread_cond_t cv; // signalled when text arrives and at the end
    double t_submit, t_start, t_end;
    uint32_t n_counted; // generated tokens already added to the engine's totals
};

typedef struct srv_slot {
    srv_engine *e;
    generate_session *gs; // the engine thread's
    srv_task *task;       // the running task, NULL when idle (under e->mu)
    uint64_t last_used;   // e->clock when it last finished a task
    size_t kv_held;       // tokens in its cache as of the last step (under e->mu)
    uint64_t order;       // e->clock when the task got the slot: prompts go oldest first
    // The engine thread's own.
    srv_task *run;   // task, as the engine saw it at the start of the step
    bool started;    // generate_start has run for it
    uint32_t reused; // prompt tokens the task found in the cache
    uint32_t take;   // its tokens in this step's batch
    int row;         // its row of logits in this step, -1 for none
    bool cancelled;  // its task was cancelled (as of the start of the step)
    int rc;          // VKPHI_OK, or why the task failed (error says it)
    char error[256];
} srv_slot;

struct srv_engine {
    model *m;
    const tokenizer *t;
    uint32_t n_vocab;
    pthread_mutex_t mu;
    pthread_cond_t cv; // a task was queued or cancelled, or the engine is stopping
    srv_slot *slots;
    uint32_t n_slots;
    srv_task *head, *tail; // the queue, oldest first
    uint32_t n_queued;
    bool stopping;
    pthread_t thread;
    bool started;
    uint64_t clock;
    uint32_t chunk, budget; // prompt chunk size; tokens per step (the first chunk may pass it)
    uint32_t max_step;      // tokens per step never more than this (the model's ubatch)
    // The engine thread's: one step's batch and its logits.
    model_token *batch; // [max_step]
    float *logits;      // [n_slots][n_vocab]: a slot wants one row a step at most
    // Totals for /metrics, under mu. Generated tokens are added as they are sampled
    // (so a rate over them is live); the prompt counts when a task ends.
    uint64_t n_tasks, n_prompt, n_cached, n_generated;
    uint64_t n_steps, n_step_tokens;      // model_eval_batch calls and the tokens in them
    double run_s;                         // seconds tasks spent on slots, summed
    int64_t win_sec[SRV_RATE_WINDOW];     // the second each bucket counts
    uint64_t win_tokens[SRV_RATE_WINDOW]; // tokens generated in that second
};

static void init_cond(pthread_cond_t *cv) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

// Adds n generated tokens to the totals and to this second's bucket; e->mu held.
static void count_generated(srv_engine *e, uint64_t n) {
    if (!n) return;
    e->n_generated += n;
    int64_t sec = (int64_t)vkphi_now();
    size_t i = (size_t)(sec % SRV_RATE_WINDOW);
    if (e->win_sec[i] != sec) {
        e->win_sec[i] = sec;
        e->win_tokens[i] = 0;
    }
    e->win_tokens[i] += n;
}

// ---- tasks ----

static void task_free(srv_task *t) {
    free(t->prompt);
    for (size_t i = 0; i < t->n_stop; i++)
        free(t->stop[i]);
    free(t->stop);
    free(t->bias);
    srv_buf_free(&t->out);
    pthread_cond_destroy(&t->cv);
    free(t);
}

// Drops one reference; e->mu held.
static void task_unref_locked(srv_task *t) {
    if (--t->refs == 0) task_free(t);
}

srv_task *srv_task_create(srv_engine *e, int32_t *prompt, uint32_t n_prompt, const generate_params *p, char **stop,
                          size_t n_stop, generate_logit_bias *bias, size_t n_bias) {
    srv_task *t = calloc(1, sizeof *t);
    if (!t) {
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory queuing a request");
        return NULL;
    }
    t->e = e;
    t->refs = 1;
    t->prompt = prompt;
    t->n_prompt = n_prompt;
    t->params = *p;
    t->stop = stop;
    t->n_stop = n_stop;
    t->params.stop = (const char *const *)stop;
    t->params.n_stop = n_stop;
    t->bias = bias;
    t->params.bias = bias;
    t->params.n_bias = n_bias;
    t->state = TASK_NEW;
    init_cond(&t->cv);
    return t;
}

void srv_task_retain(srv_task *t) {
    pthread_mutex_lock(&t->e->mu);
    t->refs++;
    pthread_mutex_unlock(&t->e->mu);
}

void srv_task_release(srv_task *t) {
    if (!t) return;
    srv_engine *e = t->e;
    pthread_mutex_lock(&e->mu);
    task_unref_locked(t);
    pthread_mutex_unlock(&e->mu);
}

// Marks t done and drops the engine's reference; e->mu held.
static void task_done_locked(srv_task *t, enum srv_outcome outcome) {
    t->state = TASK_DONE;
    t->outcome = outcome;
    t->t_end = vkphi_now();
    pthread_cond_broadcast(&t->cv);
    task_unref_locked(t);
}

// ---- the queue ----

// Hands queued tasks, oldest first, to idle slots: to the one whose cache shares the
// longest prefix with the prompt, the least recently used among equals. e->mu held.
// (The engine thread leaves an idle slot's session alone, so its cache can be read.)
static void dispatch_locked(srv_engine *e) {
    while (e->head) {
        srv_task *t = e->head;
        srv_slot *best = NULL;
        size_t best_common = 0;
        for (uint32_t i = 0; i < e->n_slots; i++) {
            srv_slot *s = &e->slots[i];
            if (s->task) continue;
            size_t n_cached;
            const int32_t *cached = generate_cached(s->gs, &n_cached);
            size_t c = common_prefix(cached, n_cached, t->prompt, t->n_prompt);
            if (!best || c > best_common || (c == best_common && s->last_used < best->last_used)) {
                best = s;
                best_common = c;
            }
        }
        if (!best) return;
        e->head = t->next;
        if (!e->head) e->tail = NULL;
        e->n_queued--;
        t->next = NULL;
        t->state = TASK_RUNNING;
        t->t_start = vkphi_now();
        best->task = t;
        best->order = ++e->clock;
    }
}

static void queue_remove_locked(srv_engine *e, srv_task *t) {
    srv_task **p = &e->head, *prev = NULL;
    while (*p && *p != t) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p) return;
    *p = t->next;
    if (e->tail == t) e->tail = prev;
    t->next = NULL;
    e->n_queued--;
}

bool srv_engine_submit(srv_task *t) {
    srv_engine *e = t->e;
    pthread_mutex_lock(&e->mu);
    t->t_submit = vkphi_now();
    t->refs++; // the engine's, dropped when the task is done
    if (e->stopping || t->cancel) {
        snprintf(t->error, sizeof t->error, "the server is shutting down");
        task_done_locked(t, SRV_OUTCOME_CANCELLED);
        pthread_mutex_unlock(&e->mu);
        return false;
    }
    t->state = TASK_QUEUED;
    if (e->tail)
        e->tail->next = t;
    else
        e->head = t;
    e->tail = t;
    e->n_queued++;
    dispatch_locked(e);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return true;
}

void srv_task_cancel(srv_task *t) {
    srv_engine *e = t->e;
    pthread_mutex_lock(&e->mu);
    if (t->state != TASK_DONE && !t->cancel) {
        t->cancel = true;
        if (t->state == TASK_QUEUED) {
            queue_remove_locked(e, t);
            task_done_locked(t, SRV_OUTCOME_CANCELLED);
        } else if (t->state == TASK_RUNNING) {
            pthread_cond_signal(&e->cv); // its slot frees at the next step
        }
    }
    pthread_mutex_unlock(&e->mu);
}

bool srv_task_take(srv_task *t, int timeout_ms, srv_buf *out, bool *oom) {
    srv_engine *e = t->e;
    pthread_mutex_lock(&e->mu);
    if (t->out.len == 0 && t->state != TASK_DONE && timeout_ms > 0) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (t->out.len == 0 && t->state != TASK_DONE)
            if (pthread_cond_timedwait(&t->cv, &e->mu, &dl) != 0) break;
    }
    if (t->out.len) {
        if (srv_buf_put(out, t->out.p, t->out.len))
            srv_buf_clear(&t->out);
        else
            *oom = true;
    }
    bool done = t->state == TASK_DONE && t->out.len == 0;
    pthread_mutex_unlock(&e->mu);
    return done;
}

enum srv_outcome srv_task_outcome(srv_task *t) { return t->outcome; }
enum generate_finish srv_task_finish(srv_task *t) { return t->finish; }
srv_usage srv_task_usage(srv_task *t) { return t->usage; }
const char *srv_task_error(srv_task *t) { return t->error; }

void srv_task_times(srv_task *t, double *queued_s, double *run_s) {
    double start = t->t_start > 0 ? t->t_start : t->t_end;
    *queued_s = start - t->t_submit;
    *run_s = t->t_end - start;
}

// ---- the engine ----

// The sessions' text callback: hands the text to the waiting client. False (the run
// ends) once the task is cancelled or its text cannot be held.
static bool on_text(const char *text, size_t len, void *user) {
    srv_slot *s = user;
    srv_task *t = s->run;
    pthread_mutex_lock(&s->e->mu);
    if (len) {
        if (srv_buf_put(&t->out, text, len))
            pthread_cond_broadcast(&t->cv);
        else
            t->out_oom = true;
    }
    bool go_on = !t->cancel && !t->out_oom;
    pthread_mutex_unlock(&s->e->mu);
    return go_on;
}

static void slot_fail(srv_slot *s, int rc) {
    if (s->rc != VKPHI_OK) return;
    s->rc = rc;
    snprintf(s->error, sizeof s->error, "%s", vkphi_last_error());
}

// Ends the slot's task (its run ended, failed or was cancelled; res is the run's
// result) and frees the slot. e->mu held.
static void finish_locked(srv_engine *e, srv_slot *s, const generate_result *res) {
    srv_task *t = s->run;
    t->usage.prompt = t->n_prompt;
    t->usage.cached = s->reused;
    t->usage.completion = res->stats.n_gen;
    t->finish = res->finish;
    size_t n_held;
    generate_cached(s->gs, &n_held);
    s->kv_held = n_held;
    e->n_tasks++;
    e->n_prompt += t->n_prompt;
    e->n_cached += s->reused;
    if (res->stats.n_gen > t->n_counted) count_generated(e, res->stats.n_gen - t->n_counted);
    t->n_counted = res->stats.n_gen;
    e->run_s += vkphi_now() - t->t_start;
    enum srv_outcome outcome = SRV_OUTCOME_OK;
    if (t->out_oom) {
        snprintf(t->error, sizeof t->error, "out of memory holding the generated text");
        outcome = SRV_OUTCOME_FAILED;
    } else if (s->rc != VKPHI_OK) {
        snprintf(t->error, sizeof t->error, "%s", s->error[0] ? s->error : "the generation failed");
        outcome = SRV_OUTCOME_FAILED;
    } else if (t->cancel || res->finish == GENERATE_FINISH_ABORT) {
        snprintf(t->error, sizeof t->error, "%s",
                 e->stopping ? "the server is shutting down" : "the request was cancelled");
        outcome = SRV_OUTCOME_CANCELLED;
    }
    // Free the slot before the client hears the answer, so that the next turn of
    // the conversation, sent at once, finds this slot and its cache idle.
    s->task = s->run = NULL;
    s->last_used = ++e->clock;
    task_done_locked(t, outcome);
}

// A slot whose run goes on (not failed, cancelled or finished).
static bool slot_live(const srv_slot *s) {
    return s->run && s->rc == VKPHI_OK && !s->cancelled && !generate_done(s->gs);
}

// Chooses each slot's tokens for this step (s->take): every decoding slot's one
// token, then one prompt chunk per prompting slot, oldest task first, within the budget.
static void plan_step(srv_engine *e) {
    uint32_t used = 0;
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        const int32_t *ids;
        uint32_t pos;
        s->take = 0;
        s->row = -1;
        if (slot_live(s) && generate_session_stats(s->gs)->n_gen > 0)
            used += s->take = generate_pending(s->gs, &ids, &pos);
    }
    bool chunked = false;
    for (;;) {
        srv_slot *oldest = NULL; // the oldest task whose prompt is not all in yet
        for (uint32_t i = 0; i < e->n_slots; i++) {
            srv_slot *s = &e->slots[i];
            if (slot_live(s) && !s->take && generate_session_stats(s->gs)->n_gen == 0 &&
                (!oldest || s->order < oldest->order))
                oldest = s;
        }
        if (!oldest) break;
        // One chunk: up to the next multiple of the chunk size (or the prompt's end).
        // Where the cuts fall, and that each chunk is a run of its own in the step,
        // depend on the prompt alone: model_eval_batch picks kernels by a run's
        // length, so this keeps a request's evaluations the same whatever the load.
        const int32_t *ids;
        uint32_t pos, left = generate_pending(oldest->gs, &ids, &pos);
        uint32_t n = (pos / e->chunk + 1) * e->chunk - pos;
        if (n > left) n = left;
        if (chunked ? used + n > e->budget : used + n > e->max_step) break;
        oldest->take = n;
        used += n;
        chunked = true;
    }
}

// One step: starts the new tasks, evaluates one batch for all the others, lets each
// sample, and ends what is over.
static void engine_step(srv_engine *e) {
    pthread_mutex_lock(&e->mu);
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (s->task && !s->run) {
            s->run = s->task;
            s->started = false;
        }
        s->cancelled = s->run && s->run->cancel;
    }
    pthread_mutex_unlock(&e->mu);
    // New tasks: the prompt goes in (prefix reuse), nothing is evaluated yet. With
    // the logits at hand the first token is sampled (and streamed) at once.
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (!s->run || s->started) continue;
        s->started = true;
        s->rc = VKPHI_OK;
        s->error[0] = 0;
        s->reused = 0;
        int rc = generate_start(s->gs, s->run->prompt, s->run->n_prompt, &s->run->params, on_text, s, &s->reused);
        if (rc != VKPHI_OK) slot_fail(s, rc);
    }

    // The batch: each slot's tokens together, a row of logits for each slot whose
    // pending tokens all go in (rows come in batch order).
    plan_step(e);
    uint32_t n = 0, rows = 0;
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (!s->take) continue;
        const int32_t *ids;
        uint32_t pos, left = generate_pending(s->gs, &ids, &pos);
        for (uint32_t j = 0; j < s->take; j++)
            e->batch[n++] = (model_token){ids[j], generate_seq(s->gs), pos + j, j + 1 == left};
        if (s->take == left) s->row = (int)rows++;
    }
    if (n) {
        int rc = model_eval_batch(e->m, e->batch, n, rows ? e->logits : NULL);
        for (uint32_t i = 0; i < e->n_slots; i++) {
            srv_slot *s = &e->slots[i];
            if (!s->take) continue;
            if (rc != VKPHI_OK) {
                slot_fail(s, rc);
                continue;
            }
            // Samples and streams (on_text); the run ends here when it is over.
            const float *row = s->row >= 0 ? e->logits + (size_t)s->row * e->n_vocab : NULL;
            int src = generate_step(s->gs, s->take, row);
            if (src != VKPHI_OK) slot_fail(s, src);
        }
    }

    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (!s->run || slot_live(s)) continue;
        generate_result res;
        int rc = generate_end(s->gs, &res);
        if (rc != VKPHI_OK) slot_fail(s, rc);
        pthread_mutex_lock(&e->mu);
        finish_locked(e, s, &res);
        pthread_mutex_unlock(&e->mu);
    }
    pthread_mutex_lock(&e->mu);
    if (n) {
        e->n_steps++;
        e->n_step_tokens += n;
    }
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (!s->run) continue;
        size_t n_held;
        generate_cached(s->gs, &n_held);
        s->kv_held = n_held;
        uint32_t gen = generate_session_stats(s->gs)->n_gen;
        if (gen > s->run->n_counted) {
            count_generated(e, gen - s->run->n_counted);
            s->run->n_counted = gen;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg) {
    srv_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (!e->stopping) dispatch_locked(e);
        bool busy = false;
        for (uint32_t i = 0; i < e->n_slots; i++)
            busy |= e->slots[i].task != NULL;
        if (!busy) {
            if (e->stopping) break;
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        engine_step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

srv_engine *srv_engine_create(model *m, const tokenizer *t, uint32_t n_slots, uint32_t max_step) {
    if (!m || !t || n_slots == 0 || n_slots > model_n_seq(m)) {
        vkphi_fail(VKPHI_ERR_ARG, "the server needs a model with at least %u sequence(s)", n_slots);
        return NULL;
    }
    if (max_step <= n_slots) {
        vkphi_fail(VKPHI_ERR_ARG,
                   "a step of %u tokens (--ubatch) leaves no room for prompts beside %u decoding slots (--parallel)",
                   max_step, n_slots);
        return NULL;
    }
    srv_engine *e = calloc(1, sizeof *e);
    if (!e) {
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating the server's slots");
        return NULL;
    }
    e->m = m;
    e->t = t;
    e->n_vocab = model_get_config(m)->n_vocab;
    e->n_slots = n_slots;
    // Decode tokens and one chunk always fit in a step.
    e->max_step = max_step;
    e->chunk = max_step - n_slots < SRV_CHUNK ? max_step - n_slots : SRV_CHUNK;
    e->budget = max_step < SRV_STEP_BUDGET ? max_step : SRV_STEP_BUDGET;
    pthread_mutex_init(&e->mu, NULL);
    init_cond(&e->cv);
    e->slots = calloc(n_slots, sizeof *e->slots);
    e->batch = malloc(sizeof *e->batch * max_step);
    e->logits = malloc(sizeof *e->logits * (size_t)e->n_vocab * n_slots);
    if (!e->slots || !e->batch || !e->logits) {
        srv_engine_destroy(e);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating the server's slots");
        return NULL;
    }
    for (uint32_t i = 0; i < n_slots; i++) {
        srv_slot *s = &e->slots[i];
        s->e = e;
        if (!(s->gs = generate_session_create(m, t, i))) {
            srv_engine_destroy(e);
            return NULL;
        }
    }
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        srv_engine_destroy(e);
        vkphi_fail(VKPHI_ERR_NOMEM, "cannot start the server's engine thread");
        return NULL;
    }
    e->started = true;
    return e;
}

void srv_engine_shutdown(srv_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    while (e->head) {
        srv_task *t = e->head;
        queue_remove_locked(e, t);
        t->cancel = true;
        snprintf(t->error, sizeof t->error, "the server is shutting down");
        task_done_locked(t, SRV_OUTCOME_CANCELLED);
    }
    for (uint32_t i = 0; i < e->n_slots; i++)
        if (e->slots[i].task) e->slots[i].task->cancel = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (e->started) {
        pthread_join(e->thread, NULL);
        e->started = false;
    }
}

void srv_engine_destroy(srv_engine *e) {
    if (!e) return;
    srv_engine_shutdown(e);
    for (uint32_t i = 0; e->slots && i < e->n_slots; i++)
        generate_session_destroy(e->slots[i].gs);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e->slots);
    free(e->batch);
    free(e->logits);
    free(e);
}

void srv_engine_stats(srv_engine *e, srv_stats *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&e->mu);
    st->slots = e->n_slots;
    for (uint32_t i = 0; i < e->n_slots; i++) {
        st->busy += e->slots[i].task != NULL;
        st->kv_held += e->slots[i].kv_held;
    }
    st->queued = e->n_queued;
    st->kv_capacity = (uint64_t)e->n_slots * model_n_ctx(e->m);
    st->tasks = e->n_tasks;
    st->prompt_tokens = e->n_prompt;
    st->cached_tokens = e->n_cached;
    st->generated_tokens = e->n_generated;
    st->run_s = e->run_s;
    st->steps = e->n_steps;
    st->step_tokens = e->n_step_tokens;
    // Whole seconds only: the current one is still filling.
    int64_t now = (int64_t)vkphi_now();
    uint64_t n = 0;
    for (size_t i = 0; i < SRV_RATE_WINDOW; i++)
        if (e->win_sec[i] < now && e->win_sec[i] >= now - SRV_RATE_WINDOW) n += e->win_tokens[i];
    st->tokens_per_s = (double)n / SRV_RATE_WINDOW;
    st->rate_window_s = SRV_RATE_WINDOW;
    pthread_mutex_unlock(&e->mu);
}
