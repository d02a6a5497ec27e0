// SPDX-License-Identifier: MIT
// The server's slots, queue and baton. See engine.h for the design.
//
// Locking: one mutex (e->mu) guards the queue, the slots' assignments, the baton and
// every task's shared fields. A slot thread calls into the model only while it holds
// the baton (e->owner == its index) and never while it holds the mutex. The baton
// changes hands inside generate_run's text callback, which runs after a token has
// been sampled and before it is evaluated: at that point the model is idle, so the
// next slot may use it.
#include "engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

// Prompt tokens evaluated per turn of the baton: a long prompt does not stall the
// other slots for longer than this.
#define SRV_PREFILL_CHUNK 256
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
    srv_task *next;        // queue link
    struct srv_slot *slot; // while running
    srv_buf out;           // generated text not taken yet
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
    uint32_t idx;
    generate_session *gs; // used only by this slot's thread, or under e->mu while idle
    pthread_t thread;
    bool started;
    pthread_cond_t cv;  // a task was assigned, the baton arrived, or the task was cancelled
    srv_task *task;     // the running task, NULL when idle
    bool wants;         // waiting for or holding the baton
    uint64_t last_used; // e->clock when it last finished a task
    size_t kv_held;     // tokens in its cache, as of its last step (under e->mu)
} srv_slot;

struct srv_engine {
    model *m;
    const tokenizer *t;
    pthread_mutex_t mu;
    srv_slot *slots;
    uint32_t n_slots;
    srv_task *head, *tail; // the queue, oldest first
    uint32_t n_queued;
    int owner; // index of the slot holding the baton, -1 when nobody does
    bool stopping;
    uint64_t clock;
    // Totals for /metrics, under mu. Generated tokens are added as they are sampled
    // (so a rate over them is live); the prompt counts when a task ends.
    uint64_t n_tasks, n_prompt, n_cached, n_generated;
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

// Brings the slot's cache size and its task's generated-token count up to date
// (from the slot's own thread: gs is its to read); e->mu held. Called from the text
// callback, when the cache holds the prompt and every sampled token but the newest
// (an end token is never cached, and is counted when the task ends).
static void count_progress(srv_slot *s, srv_task *t) {
    size_t n;
    generate_cached(s->gs, &n);
    s->kv_held = n;
    if (n + 1 > t->n_prompt) {
        uint32_t gen = (uint32_t)(n + 1 - t->n_prompt);
        if (gen > t->n_counted) {
            count_generated(s->e, gen - t->n_counted);
            t->n_counted = gen;
        }
    }
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
    t->slot = NULL;
    t->t_end = vkphi_now();
    pthread_cond_broadcast(&t->cv);
    task_unref_locked(t);
}

// ---- the baton ----

// Gives the baton to the next slot after `from` (cyclically, `from` itself last)
// that wants it, or to nobody. e->mu held.
static void baton_pass(srv_engine *e, uint32_t from) {
    for (uint32_t k = 1; k <= e->n_slots; k++) {
        srv_slot *s = &e->slots[(from + k) % e->n_slots];
        if (s->wants) {
            e->owner = (int)s->idx;
            pthread_cond_signal(&s->cv);
            return;
        }
    }
    e->owner = -1;
}

static void baton_release(srv_engine *e, srv_slot *s) {
    s->wants = false;
    if (e->owner == (int)s->idx) baton_pass(e, s->idx);
}

// Waits until s holds the baton. False (and s neither holds nor wants it) when
// s's task is cancelled meanwhile. e->mu held.
static bool baton_wait(srv_engine *e, srv_slot *s, srv_task *t) {
    while (e->owner != (int)s->idx && !t->cancel)
        pthread_cond_wait(&s->cv, &e->mu);
    if (t->cancel) {
        baton_release(e, s);
        return false;
    }
    return true;
}

static bool baton_acquire(srv_engine *e, srv_slot *s, srv_task *t) {
    s->wants = true;
    if (e->owner < 0) e->owner = (int)s->idx;
    return baton_wait(e, s, t);
}

// Lets every other slot that wants the baton have one turn first.
static bool baton_yield(srv_engine *e, srv_slot *s, srv_task *t) {
    baton_pass(e, s->idx);
    return baton_wait(e, s, t);
}

// ---- the queue ----

// Hands queued tasks, oldest first, to idle slots: to the one whose cache shares the
// longest prefix with the prompt, the least recently used among equals. e->mu held.
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
        t->slot = best;
        t->t_start = vkphi_now();
        best->task = t;
        pthread_cond_signal(&best->cv);
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
        } else if (t->state == TASK_RUNNING && t->slot) {
            pthread_cond_signal(&t->slot->cv);
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

// ---- the slots ----

typedef struct run_ctx {
    srv_slot *s;
    srv_task *t;
} run_ctx;

// generate_run's text callback: hands the text to the waiting client, then passes
// the baton round before the token is evaluated.
static bool on_text(const char *text, size_t len, void *user) {
    run_ctx *c = user;
    srv_engine *e = c->s->e;
    pthread_mutex_lock(&e->mu);
    bool go_on = true;
    if (len) {
        if (srv_buf_put(&c->t->out, text, len))
            pthread_cond_broadcast(&c->t->cv);
        else {
            c->t->out_oom = true;
            go_on = false;
        }
    }
    count_progress(c->s, c->t);
    if (go_on)
        go_on = baton_yield(e, c->s, c->t);
    else
        baton_release(e, c->s);
    pthread_mutex_unlock(&e->mu);
    return go_on;
}

// Runs t on slot s: the prompt in chunks (only what the cache lacks), then the
// generation, one token per turn of the baton.
static void run_task(srv_slot *s, srv_task *t) {
    srv_engine *e = s->e;
    size_t n_cached;
    const int32_t *cached = generate_cached(s->gs, &n_cached);
    size_t have = common_prefix(cached, n_cached, t->prompt, t->n_prompt);
    uint32_t reused = 0;
    int rc = VKPHI_OK;
    bool go_on;
    generate_result res = {0};
    char error[256] = "";

    pthread_mutex_lock(&e->mu);
    go_on = baton_acquire(e, s, t);
    pthread_mutex_unlock(&e->mu);

    // Each call makes the cache hold prompt[0..k): what the previous call left is kept.
    size_t k = have;
    for (bool first = true; go_on && (first || k < t->n_prompt); first = false) {
        k = k + SRV_PREFILL_CHUNK < t->n_prompt ? k + SRV_PREFILL_CHUNK : t->n_prompt;
        rc = generate_prefill(s->gs, t->prompt, k, first ? &reused : NULL);
        if (rc != VKPHI_OK) break;
        if (k < t->n_prompt) {
            pthread_mutex_lock(&e->mu);
            s->kv_held = k;
            go_on = baton_yield(e, s, t);
            pthread_mutex_unlock(&e->mu);
        }
    }
    if (rc != VKPHI_OK) snprintf(error, sizeof error, "%s", vkphi_last_error());
    if (go_on && rc == VKPHI_OK) {
        run_ctx c = {s, t};
        rc = generate_run(s->gs, &t->params, on_text, &c, &res);
        if (rc != VKPHI_OK) snprintf(error, sizeof error, "%s", vkphi_last_error());
    }

    pthread_mutex_lock(&e->mu);
    baton_release(e, s);
    t->usage.prompt = t->n_prompt;
    t->usage.cached = reused;
    t->usage.completion = res.stats.n_gen;
    t->finish = res.finish;
    size_t n_held;
    generate_cached(s->gs, &n_held);
    s->kv_held = n_held;
    e->n_tasks++;
    e->n_prompt += t->n_prompt;
    e->n_cached += reused;
    if (res.stats.n_gen > t->n_counted) count_generated(e, res.stats.n_gen - t->n_counted);
    t->n_counted = res.stats.n_gen;
    e->run_s += vkphi_now() - t->t_start;
    enum srv_outcome outcome = SRV_OUTCOME_OK;
    if (t->out_oom) {
        snprintf(t->error, sizeof t->error, "out of memory holding the generated text");
        outcome = SRV_OUTCOME_FAILED;
    } else if (rc != VKPHI_OK) {
        snprintf(t->error, sizeof t->error, "%s", error[0] ? error : "the generation failed");
        outcome = SRV_OUTCOME_FAILED;
    } else if (t->cancel || res.finish == GENERATE_FINISH_ABORT) {
        snprintf(t->error, sizeof t->error, "%s",
                 e->stopping ? "the server is shutting down" : "the request was cancelled");
        outcome = SRV_OUTCOME_CANCELLED;
    }
    // Free the slot before the client hears the answer, so that the next turn of
    // the conversation, sent at once, finds this slot and its cache idle.
    s->task = NULL;
    s->last_used = ++e->clock;
    task_done_locked(t, outcome);
    if (!e->stopping) dispatch_locked(e);
    pthread_mutex_unlock(&e->mu);
}

static void *slot_main(void *arg) {
    srv_slot *s = arg;
    srv_engine *e = s->e;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!s->task && !e->stopping)
            pthread_cond_wait(&s->cv, &e->mu);
        if (!s->task) break;
        srv_task *t = s->task;
        pthread_mutex_unlock(&e->mu);
        run_task(s, t); // returns with the slot freed and the queue dispatched
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

srv_engine *srv_engine_create(model *m, const tokenizer *t, uint32_t n_slots) {
    if (!m || !t || n_slots == 0 || n_slots > model_n_seq(m)) {
        vkphi_fail(VKPHI_ERR_ARG, "the server needs a model with at least %u sequence(s)", n_slots);
        return NULL;
    }
    srv_engine *e = calloc(1, sizeof *e);
    if (!e || !(e->slots = calloc(n_slots, sizeof *e->slots))) {
        free(e);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating the server's slots");
        return NULL;
    }
    e->m = m;
    e->t = t;
    e->n_slots = n_slots;
    e->owner = -1;
    pthread_mutex_init(&e->mu, NULL);
    for (uint32_t i = 0; i < n_slots; i++) {
        srv_slot *s = &e->slots[i];
        s->e = e;
        s->idx = i;
        init_cond(&s->cv);
        if (!(s->gs = generate_session_create(m, t, i))) {
            srv_engine_destroy(e);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (pthread_create(&s->thread, NULL, slot_main, s) != 0) {
            srv_engine_destroy(e);
            vkphi_fail(VKPHI_ERR_NOMEM, "cannot start the server's slot threads");
            return NULL;
        }
        s->started = true;
    }
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
    for (uint32_t i = 0; i < e->n_slots; i++) {
        srv_slot *s = &e->slots[i];
        if (s->task) s->task->cancel = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&e->mu);
    for (uint32_t i = 0; i < e->n_slots; i++)
        if (e->slots[i].started) {
            pthread_join(e->slots[i].thread, NULL);
            e->slots[i].started = false;
        }
}

void srv_engine_destroy(srv_engine *e) {
    if (!e) return;
    srv_engine_shutdown(e);
    for (uint32_t i = 0; i < e->n_slots; i++) {
        generate_session_destroy(e->slots[i].gs);
        pthread_cond_destroy(&e->slots[i].cv);
    }
    pthread_mutex_destroy(&e->mu);
    free(e->slots);
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
    // Whole seconds only: the current one is still filling.
    int64_t now = (int64_t)vkphi_now();
    uint64_t n = 0;
    for (size_t i = 0; i < SRV_RATE_WINDOW; i++)
        if (e->win_sec[i] < now && e->win_sec[i] >= now - SRV_RATE_WINDOW) n += e->win_tokens[i];
    st->tokens_per_s = (double)n / SRV_RATE_WINDOW;
    st->rate_window_s = SRV_RATE_WINDOW;
    pthread_mutex_unlock(&e->mu);
}
