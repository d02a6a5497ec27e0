// SPDX-License-Identifier: MIT
// Generation sessions: the stop-string scan; greedy generation equal to the argmax
// of the CPU reference at every step; prefix reuse (a two-turn chat prefills only
// the new turn, and gives what a fresh sequence gives); stop strings that span
// tokens; held-back text released; max tokens; end tokens; abort; a full context;
// seeded sampling; bad calls; step-wise generation of two sequences through one
// model_eval_batch per step, equal to generate_run's.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "common.h"
#include "generate.h"
#include "harness.h"
#include "mkmodel.h"
#include "model.h"
#include "ref_model.h"
#include "tokenizer.h"

// ---- the stop-string scan, no model needed ----

static void test_find_stop(void) {
    const char *stops[] = {"END", "", "\n\n", "xyz"};
    int which;
    size_t hold;
    long at = generate_find_stop("abc END def", 11, stops, 4, &which, &hold);
    CHECK(at == 4 && which == 0, "match at %ld (%d)", at, which);
    at = generate_find_stop("abc\n\nEND", 8, stops, 4, &which, &hold);
    CHECK(at == 3 && which == 2, "earliest match: at %ld which %d", at, which);
    at = generate_find_stop("abc EN", 6, stops, 4, &which, &hold);
    CHECK(at == -1 && which == -1 && hold == 2, "partial 'EN': at %ld hold %zu", at, hold);
    at = generate_find_stop("abc\n", 4, stops, 4, &which, &hold);
    CHECK(at == -1 && hold == 1, "partial newline: hold %zu", hold);
    at = generate_find_stop("abcxy", 5, stops, 4, &which, &hold);
    CHECK(at == -1 && hold == 2, "partial xyz: hold %zu", hold);
    at = generate_find_stop("abc", 3, stops, 4, &which, &hold);
    CHECK(at == -1 && hold == 0, "nothing to hold: %zu", hold);
    at = generate_find_stop("E", 1, stops, 4, &which, &hold);
    CHECK(at == -1 && hold == 1, "text shorter than the stop: hold %zu", hold);
    at = generate_find_stop("abc", 3, NULL, 0, &which, &hold);
    CHECK(at == -1 && hold == 0, "no stop strings");
    const char *same[] = {"aab"};
    at = generate_find_stop("xaaa", 4, same, 1, &which, &hold);
    CHECK(at == -1 && hold == 2, "self-overlapping prefix: hold %zu", hold);
}

// ---- with a model ----

typedef struct collect {
    char text[8192];
    size_t len;
    size_t pieces[512]; // text length after each callback
    size_t n_calls;
    size_t abort_after;    // 0: never
    const char *forbidden; // must never appear in what was handed out
    bool saw_forbidden;
} collect;

static bool on_text(const char *text, size_t len, void *user) {
    collect *c = user;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
        c->text[c->len] = 0;
    }
    if (c->n_calls < 512) c->pieces[c->n_calls] = c->len;
    c->n_calls++;
    if (c->forbidden && strstr(c->text, c->forbidden)) c->saw_forbidden = true;
    return !(c->abort_after && c->n_calls >= c->abort_after);
}

static int argmax(const float *x, uint32_t n) {
    int best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int)i;
    return best;
}

// Greedy tokens must be the CPU reference's argmax after the prompt and after each
// generated token. A near tie (within `tie` of the reference's best logit) is allowed
// to go either way: the GPU's f16 KV cache rounds differently.
static void check_against_ref(const char *path, const int32_t *prompt, size_t n_prompt, const int32_t *gen,
                              size_t n_gen) {
    ref_model *r = ref_model_load(path, 0);
    CHECK(r != NULL, "ref_model_load %s: %s", path, vkphi_last_error());
    if (!r) return;
    uint32_t V = ref_model_config(r)->n_vocab, pos = 0;
    float *logits = malloc(sizeof(float) * V);
    for (size_t i = 0; i < n_prompt; i++)
        ref_model_eval(r, prompt[i], pos++, logits);
    size_t exact = 0, ties = 0, wrong = 0;
    const float tie = 0.02f;
    for (size_t i = 0; i < n_gen; i++) {
        int best = argmax(logits, V);
        if (best == gen[i])
            exact++;
        else if (logits[best] - logits[gen[i]] <= tie)
            ties++;
        else {
            wrong++;
            fprintf(stderr, "step %zu: generated %d (ref logit %.4f), reference argmax %d (%.4f)\n", i, gen[i],
                    logits[gen[i]], best, logits[best]);
        }
        if (i + 1 < n_gen) ref_model_eval(r, gen[i], pos++, logits);
    }
    printf("greedy vs CPU reference: %zu steps, %zu exact, %zu near ties\n", n_gen, exact, ties);
    CHECK(wrong == 0, "%zu of %zu greedy steps differ from the CPU reference's argmax", wrong, n_gen);
    CHECK(ties <= n_gen / 10, "too many near ties (%zu of %zu)", ties, n_gen);
    free(logits);
    ref_model_free(r);
}

static generate_params greedy(int32_t max_tokens) {
    generate_params p = generate_default_params();
    p.sampling.temperature = 0;
    p.max_tokens = max_tokens;
    return p;
}

// ---- step-wise generation: two sessions whose tokens go through one
// model_eval_batch per step ----

typedef struct stepper {
    generate_session *s;
    collect c;
} stepper;

// Steps every session until all are done: each step evaluates every session's
// pending tokens (at most max_chunk of a prompt) in one model_eval_batch call.
static bool step_all(model *m, stepper *st, int n, uint32_t max_chunk) {
    uint32_t V = model_get_config(m)->n_vocab;
    model_token batch[512];
    float *logits = malloc(sizeof(float) * V * (size_t)n);
    bool ok = logits != NULL;
    for (int rounds = 0; ok && rounds < 1000; rounds++) {
        uint32_t nb = 0, took[4] = {0};
        int row[4], rows = 0;
        for (int i = 0; i < n; i++) {
            const int32_t *ids;
            uint32_t pos, k = generate_pending(st[i].s, &ids, &pos);
            took[i] = k < max_chunk ? k : max_chunk;
            for (uint32_t j = 0; j < took[i] && nb < 512; j++)
                batch[nb++] = (model_token){ids[j], generate_seq(st[i].s), pos + j, j + 1 == k};
            // The rows of logits come in batch order, one per token that wants them.
            row[i] = took[i] && took[i] == k ? rows++ : -1;
        }
        if (nb == 0) break;
        int rc = model_eval_batch(m, batch, nb, logits);
        CHECK(rc == VKPHI_OK, "model_eval_batch: %s", vkphi_last_error());
        for (int i = 0; ok && rc == VKPHI_OK && i < n; i++)
            if (took[i]) {
                rc = generate_step(st[i].s, took[i], row[i] >= 0 ? logits + (size_t)row[i] * V : NULL);
                CHECK(rc == VKPHI_OK, "generate_step: %s", vkphi_last_error());
            }
        ok = rc == VKPHI_OK;
    }
    free(logits);
    for (int i = 0; i < n; i++)
        ok &= generate_done(st[i].s);
    return ok;
}

static void test_stepwise(model *m, const tokenizer *t, generate_session *s, generate_session *s1,
                          const int32_t *prompt, size_t n_prompt, const char *path) {
    // References from generate_prefill + generate_run on fresh caches: a greedy answer,
    // and one with a stop string, a logit bias and max_tokens.
    const char *text2 = "A second prompt, of another length, for the other sequence:";
    int32_t *prompt2 = NULL;
    size_t n_prompt2 = 0;
    CHECK(tokenizer_encode(t, text2, strlen(text2), false, &prompt2, &n_prompt2) == VKPHI_OK, "encode");
    generate_result res;
    generate_params p1 = greedy(20);
    collect r1 = {0}, r2 = {0};
    generate_reset(s);
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK &&
              generate_run(s, &p1, on_text, &r1, &res) == VKPHI_OK,
          "reference run 1");
    int32_t g1[32];
    size_t n1 = res.n_tokens;
    memcpy(g1, res.tokens, n1 * sizeof *g1);
    enum generate_finish f1 = res.finish;
    // Prompt 2 with its plain first token banned, then with a stop string: two
    // characters from the middle of that answer.
    generate_params p2 = greedy(16);
    generate_reset(s1);
    CHECK(generate_prefill(s1, prompt2, n_prompt2, NULL) == VKPHI_OK &&
              generate_run(s1, &p2, on_text, &r2, &res) == VKPHI_OK,
          "reference run 2 (plain)");
    generate_logit_bias ban = {res.n_tokens ? res.tokens[0] : 0, -INFINITY};
    p2.bias = &ban;
    p2.n_bias = 1;
    r2 = (collect){0};
    CHECK(generate_prefill(s1, prompt2, n_prompt2, NULL) == VKPHI_OK &&
              generate_run(s1, &p2, on_text, &r2, &res) == VKPHI_OK,
          "reference run 2 (banned)");
    char stop[8] = "\x01";
    if (r2.len >= 8) snprintf(stop, sizeof stop, "%.2s", r2.text + r2.len / 2);
    const char *stops[] = {stop};
    p2.stop = stops;
    p2.n_stop = 1;
    r2 = (collect){0};
    CHECK(generate_prefill(s1, prompt2, n_prompt2, NULL) == VKPHI_OK &&
              generate_run(s1, &p2, on_text, &r2, &res) == VKPHI_OK,
          "reference run 2");
    CHECK(res.finish == GENERATE_FINISH_STOP && res.stop_index == 0, "the stop string '%s' ends reference run 2", stop);
    int32_t g2[32];
    size_t n2 = res.n_tokens;
    memcpy(g2, res.tokens, n2 * sizeof *g2);
    enum generate_finish f2 = res.finish;
    CHECK(n2 == 0 || g2[0] != ban.token, "the banned token was sampled");

    // Both step-wise at once, each prompt in one piece as generate_prefill does it.
    stepper st[2] = {{.s = s}, {.s = s1}};
    generate_reset(s);
    generate_reset(s1);
    uint32_t reused = 99;
    CHECK(generate_start(s, prompt, n_prompt, &p1, on_text, &st[0].c, &reused) == VKPHI_OK && reused == 0,
          "generate_start: %s", vkphi_last_error());
    CHECK(generate_start(s1, prompt2, n_prompt2, &p2, on_text, &st[1].c, NULL) == VKPHI_OK, "generate_start 2");
    CHECK(generate_start(s, prompt, n_prompt, &p1, NULL, NULL, NULL) == VKPHI_ERR_ARG, "a second start during a run");
    const int32_t *ids;
    uint32_t pos;
    CHECK(generate_pending(s, &ids, &pos) == n_prompt && pos == 0 && ids[0] == prompt[0],
          "the whole prompt is pending");
    CHECK(!generate_done(s) && step_all(m, st, 2, 512), "stepping two sessions");
    CHECK(generate_end(s, &res) == VKPHI_OK, "end 1");
    CHECK(res.finish == f1 && res.n_tokens == n1 && !memcmp(res.tokens, g1, n1 * sizeof *g1) && st[0].c.len == r1.len &&
              !memcmp(st[0].c.text, r1.text, r1.len),
          "step-wise beside another sequence: \"%s\" (%s), alone with generate_run: \"%s\" (%s)", st[0].c.text,
          generate_finish_name(res.finish), r1.text, generate_finish_name(f1));
    CHECK(res.stats.n_prompt == n_prompt && res.stats.n_gen >= n1 && res.stats.ttft_s >= res.stats.prompt_s,
          "step-wise stats");
    CHECK(generate_end(s1, &res) == VKPHI_OK, "end 2");
    CHECK(res.finish == f2 && res.n_tokens == n2 && !memcmp(res.tokens, g2, n2 * sizeof *g2) && st[1].c.len == r2.len &&
              !memcmp(st[1].c.text, r2.text, r2.len) && !strstr(st[1].c.text, stop),
          "step-wise with a stop string '%s' and a bias: \"%s\" (%s), generate_run: \"%s\" (%s)", stop, st[1].c.text,
          generate_finish_name(res.finish), r2.text, generate_finish_name(f2));
    printf("step-wise: %zu and %zu tokens, the same as generate_run's\n", n1, n2);

    // The prompt in chunks of 7 tokens (no logits until the last), then decoding;
    // greedy against the CPU reference.
    st[0].c = (collect){0};
    generate_reset(s);
    CHECK(generate_start(s, prompt, n_prompt, &p1, on_text, &st[0].c, NULL) == VKPHI_OK, "start chunked");
    CHECK(generate_step(s, (uint32_t)n_prompt + 1, NULL) == VKPHI_ERR_ARG, "more tokens than pending must fail");
    CHECK(step_all(m, st, 1, 7), "stepping in chunks of 7");
    CHECK(generate_end(s, &res) == VKPHI_OK && res.n_tokens > 0, "end chunked");
    int32_t gc[32];
    size_t nc = res.n_tokens;
    memcpy(gc, res.tokens, nc * sizeof *gc);
    if (res.eog_token >= 0) gc[nc++] = res.eog_token;
    check_against_ref(path, prompt, n_prompt, gc, nc);

    // Prefix reuse: the prompt plus the answer so far evaluates only what the cache lacks.
    int32_t *more = malloc((n_prompt + nc + 1) * sizeof *more);
    memcpy(more, prompt, n_prompt * sizeof *more);
    memcpy(more + n_prompt, gc, res.n_tokens * sizeof *more);
    size_t n_more = n_prompt + res.n_tokens, n_cached;
    generate_cached(s, &n_cached);
    p1.max_tokens = 2;
    CHECK(generate_start(s, more, n_more, &p1, NULL, NULL, &reused) == VKPHI_OK && reused == n_cached &&
              generate_pending(s, &ids, &pos) == n_more - n_cached && pos == n_cached,
          "step-wise prefix reuse: %u reused of %zu cached, %zu in the prompt", reused, n_cached, n_more);
    // Ended early: ABORT, and the cache holds only what was evaluated.
    uint32_t k = generate_pending(s, &ids, &pos);
    if (k > 1) CHECK(generate_step(s, k - 1, NULL) == VKPHI_OK, "step without logits");
    CHECK(generate_end(s, &res) == VKPHI_OK && res.finish == GENERATE_FINISH_ABORT && res.n_tokens == 0,
          "ended early: %s", generate_finish_name(res.finish));
    generate_cached(s, &n_cached);
    CHECK(n_cached == n_more - 1 && generate_done(s), "after an early end the cache holds %zu tokens, want %zu",
          n_cached, n_more - 1);
    // The last pending token without logits is refused.
    CHECK(generate_start(s, more, n_more, &p1, NULL, NULL, NULL) == VKPHI_OK && generate_pending(s, &ids, &pos) == 1 &&
              generate_step(s, 1, NULL) == VKPHI_ERR_ARG,
          "the last pending token needs its logits");
    generate_end(s, NULL);
    free(more);
    free(prompt2);
}

// What the tests of one model share: the model, its tokenizer, sessions on its two
// sequences, a prompt, and the greedy answer to it (test_greedy writes those).
typedef struct gen_fixture {
    const char *path;
    model *m;
    tokenizer *t;
    generate_session *s, *s1; // sequences 0 and 1
    int32_t *prompt;
    size_t n_prompt;
    collect c0;    // the greedy answer's text as streamed
    int32_t g[64]; // its tokens, then its end token if it has one
    size_t n_g;    // its tokens before the end token
} gen_fixture;

// Bad calls.
static void test_bad_calls(const gen_fixture *fx) {
    model *m = fx->m;
    generate_session *s = fx->s;
    generate_result res;
    generate_params gp = greedy(4);
    CHECK(generate_run(s, &gp, on_text, NULL, &res) == VKPHI_ERR_ARG, "run before any prefill must fail");
    int32_t bad[] = {1, 2, (int32_t)model_get_config(m)->n_vocab};
    CHECK(generate_prefill(s, bad, 3, NULL) == VKPHI_ERR_ARG, "a token outside the vocabulary must fail");
    CHECK(generate_prefill(s, bad, 0, NULL) == VKPHI_ERR_ARG, "an empty prompt must fail");
    int32_t *big = calloc(300, sizeof *big);
    CHECK(generate_prefill(s, big, 300, NULL) == VKPHI_ERR_ARG, "a prompt longer than the context must fail");
    free(big);
}

// Greedy: the reference's argmax at every step.
static void test_greedy(gen_fixture *fx) {
    tokenizer *t = fx->t;
    generate_session *s = fx->s;
    const char *text = "The quick brown fox jumps over the lazy dog. Once upon a time";
    CHECK(tokenizer_encode(t, text, strlen(text), false, &fx->prompt, &fx->n_prompt) == VKPHI_OK, "encode");
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    uint32_t reused = 99;
    CHECK(generate_prefill(s, prompt, n_prompt, &reused) == VKPHI_OK, "prefill: %s", vkphi_last_error());
    CHECK(reused == 0, "a fresh session reuses nothing (%u)", reused);
    collect *c0 = &fx->c0;
    generate_params gp = greedy(24);
    generate_result res;
    CHECK(generate_run(s, &gp, on_text, c0, &res) == VKPHI_OK, "run: %s", vkphi_last_error());
    const size_t n_g = fx->n_g = res.n_tokens;
    int32_t *g = fx->g;
    memcpy(g, res.tokens, n_g * sizeof *g);
    if (res.eog_token >= 0) g[n_g] = res.eog_token;
    printf("greedy: %zu tokens, finish %s: \"%s\"\n", n_g, generate_finish_name(res.finish), c0->text);
    CHECK((res.finish == GENERATE_FINISH_LENGTH && n_g == 24) ||
              (res.finish == GENERATE_FINISH_STOP && res.eog_token >= 0),
          "greedy run: finish %s after %zu tokens", generate_finish_name(res.finish), n_g);
    CHECK(res.stats.n_prompt == n_prompt && res.stats.n_gen == n_g + (res.eog_token >= 0), "stats: %u prompt, %u gen",
          res.stats.n_prompt, res.stats.n_gen);
    CHECK(res.stats.ttft_s > 0 && res.stats.ttft_s >= res.stats.prompt_s, "ttft %.4f prompt %.4f", res.stats.ttft_s,
          res.stats.prompt_s);
    size_t n_cached;
    generate_cached(s, &n_cached);
    CHECK(n_cached == n_prompt + n_g - 1, "the last sampled token is not in the cache: %zu cached", n_cached);
    check_against_ref(fx->path, prompt, n_prompt, g, n_g + (res.eog_token >= 0));
    // The streamed text is the decoding of the tokens (special ones are not shown).
    {
        int32_t shown[64];
        size_t n_shown = 0;
        for (size_t i = 0; i < n_g; i++)
            if (!tokenizer_is_special(t, g[i])) shown[n_shown++] = g[i];
        char *dec;
        size_t dec_len;
        CHECK(tokenizer_decode(t, shown, n_shown, &dec, &dec_len) == VKPHI_OK, "decode");
        CHECK(dec_len == c0->len && !memcmp(dec, c0->text, dec_len), "streamed \"%s\" vs decoded \"%s\"", c0->text,
              dec);
        free(dec);
    }
}

// Max tokens, and the same prompt again: everything but the last prompt token reused.
static void test_max_tokens(const gen_fixture *fx) {
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    const collect *c0 = &fx->c0;
    const int32_t *g = fx->g;
    const size_t n_g = fx->n_g;
    generate_result res;
    generate_params gp;
    uint32_t reused;
    collect c1 = {0};
    CHECK(generate_prefill(s, prompt, n_prompt, &reused) == VKPHI_OK, "prefill again");
    CHECK(reused == n_prompt - 1, "same prompt again: %u reused, want %zu", reused, n_prompt - 1);
    gp = greedy(5);
    CHECK(generate_run(s, &gp, on_text, &c1, &res) == VKPHI_OK, "run");
    if (n_g >= 5) {
        CHECK(res.finish == GENERATE_FINISH_LENGTH && !res.context_full && res.n_tokens == 5,
              "max 5 tokens: finish %s, %zu tokens", generate_finish_name(res.finish), res.n_tokens);
        CHECK(!memcmp(res.tokens, g, 5 * sizeof *g), "greedy after prefix reuse gives the same tokens");
        CHECK(!strncmp(c0->text, c1.text, c1.len), "same text: \"%s\" vs \"%s\"", c1.text, c0->text);
    }
    gp = greedy(0);
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK &&
              generate_run(s, &gp, NULL, NULL, &res) == VKPHI_OK && res.finish == GENERATE_FINISH_LENGTH &&
              res.n_tokens == 0 && res.stats.n_gen == 0,
          "max_tokens 0 samples nothing");
}

// Stop strings spanning two tokens: find two neighbouring tokens with ASCII text.
static void test_stop_strings(const gen_fixture *fx) {
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    const collect *c0 = &fx->c0;
    generate_result res;
    generate_params gp;
    size_t k = 0, cut = 0;
    char stop[64] = "";
    for (size_t i = 1; i + 1 < c0->n_calls && i + 1 < 24 && !stop[0]; i++) {
        size_t a0 = c0->pieces[i - 1], a1 = c0->pieces[i], a2 = c0->pieces[i + 1];
        if (a1 - a0 < 2 || a2 - a1 < 1) continue;
        bool ascii = true;
        for (size_t j = a0; j < a2; j++)
            ascii &= (unsigned char)c0->text[j] < 0x80;
        if (!ascii) continue;
        // the last character of token i and the first of token i + 1, where
        // they first appear together
        snprintf(stop, sizeof stop, "%.*s", 2, c0->text + a1 - 1);
        if ((size_t)(strstr(c0->text, stop) - c0->text) != a1 - 1) {
            stop[0] = 0;
            continue;
        }
        k = i;
    }
    CHECK(stop[0] != 0, "no two neighbouring ASCII tokens in the greedy text \"%s\"", c0->text);
    if (stop[0]) {
        cut = (size_t)(strstr(c0->text, stop) - c0->text);
        collect c2 = {.forbidden = stop};
        const char *stops[] = {"never-appears", stop};
        gp = greedy(24);
        gp.stop = stops;
        gp.n_stop = 2;
        CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
        CHECK(generate_run(s, &gp, on_text, &c2, &res) == VKPHI_OK, "run with stop strings");
        printf("stop string \"%s\" across tokens %zu and %zu: \"%s\"\n", stop, k, k + 1, c2.text);
        CHECK(res.finish == GENERATE_FINISH_STOP && res.stop_index == 1 && res.eog_token < 0, "finish %s stop_index %d",
              generate_finish_name(res.finish), res.stop_index);
        CHECK(c2.len == cut && !memcmp(c2.text, c0->text, cut), "text before the stop: \"%s\", want \"%.*s\"", c2.text,
              (int)cut, c0->text);
        CHECK(!c2.saw_forbidden, "the stop string was handed out");

        // A stop string whose start appears but which never completes: the
        // held-back text comes out in the end, the whole text is unchanged.
        char never[80];
        snprintf(never, sizeof never, "%s\x01", stop);
        const char *stops2[] = {never};
        collect c3 = {0};
        gp.stop = stops2;
        gp.n_stop = 1;
        CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
        CHECK(generate_run(s, &gp, on_text, &c3, &res) == VKPHI_OK, "run");
        CHECK(c3.len == c0->len && !memcmp(c3.text, c0->text, c0->len), "held-back text released: \"%s\" vs \"%s\"",
              c3.text, c0->text);
        // While held back, the text of token k's last character was not handed out yet.
        CHECK(c3.n_calls > k && c3.pieces[k] < c0->pieces[k], "text was held back at token %zu (%zu vs %zu)", k,
              c3.pieces[k], c0->pieces[k]);
    }
}

// Abort from the callback.
static void test_abort(const gen_fixture *fx) {
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    const size_t n_g = fx->n_g;
    generate_result res;
    generate_params gp;
    collect c4 = {.abort_after = 3};
    gp = greedy(24);
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
    CHECK(generate_run(s, &gp, on_text, &c4, &res) == VKPHI_OK, "run");
    if (n_g >= 3)
        CHECK(res.finish == GENERATE_FINISH_ABORT && res.n_tokens == 3, "abort after 3 calls: %s, %zu tokens",
              generate_finish_name(res.finish), res.n_tokens);
}

// End-of-generation tokens stop it (pushed up with a logit bias).
static void test_end_tokens(const gen_fixture *fx) {
    tokenizer *t = fx->t;
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    generate_result res;
    generate_params gp;
    size_t n_cached;
    const char *eogs[] = {"<|im_end|>", "<|endoftext|>"};
    for (int e = 0; e < 2; e++) {
        int32_t id = tokenizer_token_id(t, eogs[e]);
        CHECK(id >= 0 && tokenizer_is_eog(t, id), "%s is an end token", eogs[e]);
        generate_logit_bias b = {id, 1000};
        collect c5 = {0};
        gp = greedy(24);
        gp.bias = &b;
        gp.n_bias = 1;
        CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
        CHECK(generate_run(s, &gp, on_text, &c5, &res) == VKPHI_OK, "run");
        generate_cached(s, &n_cached);
        CHECK(res.finish == GENERATE_FINISH_STOP && res.eog_token == id && res.n_tokens == 0 && c5.len == 0 &&
                  res.stats.n_gen == 1 && n_cached == n_prompt,
              "%s: finish %s eog %d, %zu tokens, %zu cached", eogs[e], generate_finish_name(res.finish), res.eog_token,
              res.n_tokens, n_cached);
    }
}

// Forced tokens (the tests' VKPHI_TEST_OUTPUT): emitted and streamed as sampled ones,
// an end token among them stops the run, sampling takes over after them.
static void test_forced(const gen_fixture *fx) {
    model *m = fx->m;
    tokenizer *t = fx->t;
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    generate_result res;
    generate_params gp;
    const char *forced = "Hello there<|im_end|>";
    int32_t *f = NULL;
    size_t nf = 0;
    CHECK(tokenizer_encode(t, forced, strlen(forced), true, &f, &nf) == VKPHI_OK && nf >= 3, "encode forced");
    collect c6 = {0};
    gp = greedy(24);
    gp.force = f;
    gp.n_force = nf;
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
    CHECK(generate_run(s, &gp, on_text, &c6, &res) == VKPHI_OK, "run forced");
    CHECK(res.finish == GENERATE_FINISH_STOP && res.n_tokens == nf - 1 && c6.len == 11 &&
              !memcmp(c6.text, "Hello there", 11),
          "forced: '%.*s', %zu tokens, %s", (int)c6.len, c6.text, res.n_tokens, generate_finish_name(res.finish));
    collect c7 = {0};
    gp.n_force = nf - 1; // without the end token: greedy sampling goes on after it
    gp.max_tokens = (int32_t)nf + 2;
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
    CHECK(generate_run(s, &gp, on_text, &c7, &res) == VKPHI_OK, "run forced then sampled");
    CHECK(res.n_tokens >= nf - 1 && !memcmp(res.tokens, f, (nf - 1) * sizeof *f) && c7.len >= 11 &&
              !memcmp(c7.text, "Hello there", 11),
          "forced then sampled: '%.*s'", (int)c7.len, c7.text);
    int32_t out_of_vocab = (int32_t)model_get_config(m)->n_vocab;
    gp.force = &out_of_vocab;
    gp.n_force = 1;
    CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
    CHECK(generate_run(s, &gp, NULL, NULL, &res) == VKPHI_ERR_ARG, "a forced token outside the vocabulary fails");
    free(f);
}

// Seeded sampling repeats; another seed (very likely) does not.
static void test_seeded(const gen_fixture *fx) {
    generate_session *s = fx->s;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    generate_result res;
    int32_t first[16];
    size_t n_first = 0;
    for (int rep = 0; rep < 3; rep++) {
        generate_params sp = generate_default_params();
        sp.max_tokens = 12;
        sp.sampling.temperature = 1.5f;
        sp.sampling.top_k = 0;
        sp.sampling.top_p = 1;
        sp.sampling.min_p = 0;
        sp.sampling.seed = rep < 2 ? 1234 : 99;
        CHECK(generate_prefill(s, prompt, n_prompt, NULL) == VKPHI_OK, "prefill");
        CHECK(generate_run(s, &sp, NULL, NULL, &res) == VKPHI_OK, "run");
        if (rep == 0) {
            n_first = res.n_tokens;
            memcpy(first, res.tokens, n_first * sizeof *first);
        } else if (rep == 1) {
            CHECK(res.n_tokens == n_first && !memcmp(res.tokens, first, n_first * sizeof *first),
                  "the same seed gives the same tokens");
        } else {
            CHECK(res.n_tokens != n_first || memcmp(res.tokens, first, n_first * sizeof *first),
                  "another seed gives other tokens");
        }
    }
}

// A two-turn chat: the second turn prefills only itself, and gives what a fresh
// sequence gives for the whole conversation.
static void test_chat_turns(const gen_fixture *fx) {
    tokenizer *t = fx->t;
    generate_session *s = fx->s;
    generate_session *s1 = fx->s1;
    generate_result res;
    generate_params gp;
    uint32_t reused;
    int32_t im_end = tokenizer_token_id(t, "<|im_end|>");
    chat_message turn1[] = {{"system", "You are terse."}, {"user", "Name a colour."}};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK(chat_build(t, turn1, 2, true, &ids, &n_ids) == VKPHI_OK, "chat_build");
    generate_reset(s);
    CHECK(generate_prefill(s, ids, n_ids, &reused) == VKPHI_OK && reused == 0, "turn 1 prefill (%u reused)", reused);
    gp = greedy(8);
    CHECK(generate_run(s, &gp, NULL, NULL, &res) == VKPHI_OK, "turn 1");
    // The conversation as the model saw it: the answer's tokens, <|im_end|>, turn 2.
    int32_t *conv = malloc((n_ids + res.n_tokens + 64) * sizeof *conv);
    size_t n_conv = 0;
    memcpy(conv, ids, n_ids * sizeof *conv), n_conv = n_ids;
    memcpy(conv + n_conv, res.tokens, res.n_tokens * sizeof *conv), n_conv += res.n_tokens;
    conv[n_conv++] = im_end;
    chat_message turn2 = {"user", "Another one?"};
    int32_t *u2 = NULL;
    size_t n_u2 = 0;
    CHECK(chat_build(t, &turn2, 1, true, &u2, &n_u2) == VKPHI_OK && n_u2 < 60, "chat_build turn 2");
    memcpy(conv + n_conv, u2, n_u2 * sizeof *conv), n_conv += n_u2;
    size_t before;
    generate_cached(s, &before);
    CHECK(generate_prefill(s, conv, n_conv, &reused) == VKPHI_OK, "turn 2 prefill: %s", vkphi_last_error());
    printf("two-turn chat: turn 2 is %zu tokens, %u reused from the cache, %zu evaluated\n", n_conv, reused,
           n_conv - reused);
    CHECK(reused == before && n_conv - reused == n_conv - before, "turn 2 reused %u of the %zu cached tokens", reused,
          before);
    CHECK(n_conv - reused <= n_u2 + 2, "turn 2 evaluated %zu tokens; the new turn is %zu", n_conv - reused, n_u2 + 1);
    gp = greedy(8);
    CHECK(generate_run(s, &gp, NULL, NULL, &res) == VKPHI_OK, "turn 2");
    int32_t a2[8];
    size_t n_a2 = res.n_tokens;
    memcpy(a2, res.tokens, n_a2 * sizeof *a2);
    CHECK(generate_prefill(s1, conv, n_conv, &reused) == VKPHI_OK && reused == 0, "fresh sequence prefill");
    CHECK(generate_run(s1, &gp, NULL, NULL, &res) == VKPHI_OK, "fresh sequence run");
    CHECK(res.n_tokens == n_a2 && !memcmp(res.tokens, a2, n_a2 * sizeof *a2),
          "turn 2 with the reused prefix differs from a fresh sequence");
    // Sequence 1's work did not disturb sequence 0.
    CHECK(generate_prefill(s, conv, n_conv, &reused) == VKPHI_OK && reused == n_conv - 1, "prefill again (%u)", reused);
    CHECK(generate_run(s, &gp, NULL, NULL, &res) == VKPHI_OK && res.n_tokens == n_a2 &&
              !memcmp(res.tokens, a2, n_a2 * sizeof *a2),
          "sequence 0 changed after sequence 1 ran");
    free(u2), free(conv), free(ids);
}

// A full context: LENGTH with context_full, every position used.
static void test_full_context(const gen_fixture *fx) {
    generate_session *s1 = fx->s1;
    const int32_t *prompt = fx->prompt;
    const size_t n_prompt = fx->n_prompt;
    generate_result res;
    generate_params gp;
    uint32_t reused;
    size_t n_cached;
    uint32_t n_ctx = generate_n_ctx(s1);
    int32_t *fill = malloc(n_ctx * sizeof *fill);
    for (uint32_t i = 0; i < n_ctx - 4; i++)
        fill[i] = prompt[i % n_prompt];
    gp = greedy(-1);
    gp.bias = NULL;
    CHECK(generate_prefill(s1, fill, n_ctx - 4, &reused) == VKPHI_OK, "prefill %u tokens: %s", n_ctx - 4,
          vkphi_last_error());
    CHECK(generate_run(s1, &gp, NULL, NULL, &res) == VKPHI_OK, "run to the end of the context");
    generate_cached(s1, &n_cached);
    if (res.eog_token < 0)
        CHECK(res.finish == GENERATE_FINISH_LENGTH && res.context_full && n_cached == n_ctx && res.n_tokens == 5,
              "full context: finish %s, full %d, %zu cached, %zu tokens", generate_finish_name(res.finish),
              res.context_full, n_cached, res.n_tokens);
    free(fill);
}

// Returns false (having checked nothing) when the GPU does not run the file's types.
static bool test_with_model(const char *path) {
    model_params mp = {.device = -1, .n_ctx = 256, .n_seq = 2, .n_ubatch = 64, .kv = KV_F16, .quiet = true};
    model *m;
    int rc = model_load(path, &mp, &m);
    if (rc == VKPHI_ERR_UNSUPPORTED) {
        printf("%s: %s\n", path, vkphi_last_error());
        return false;
    }
    if (rc != VKPHI_OK) {
        CHECK(false, "model_load %s: %s", path, vkphi_last_error());
        return true;
    }
    gen_fixture *fx = calloc(1, sizeof *fx);
    CHECK(fx != NULL, "out of memory");
    tokenizer *t = tokenizer_create(model_gguf(m));
    CHECK(t != NULL, "tokenizer: %s", vkphi_last_error());
    generate_session *s = generate_session_create(m, t, 0), *s1 = generate_session_create(m, t, 1);
    CHECK(s && s1, "generate_session_create: %s", vkphi_last_error());
    CHECK(generate_session_create(m, t, 2) == NULL, "a session on a sequence the model lacks must fail");
    if (fx && t && s && s1) {
        *fx = (gen_fixture){.path = path, .m = m, .t = t, .s = s, .s1 = s1};
        test_bad_calls(fx);
        test_greedy(fx);
        test_max_tokens(fx);
        test_stop_strings(fx);
        test_abort(fx);
        test_end_tokens(fx);
        test_forced(fx);
        test_seeded(fx);
        test_chat_turns(fx);
        test_stepwise(m, t, s, s1, fx->prompt, fx->n_prompt, path);
        test_full_context(fx);
        free(fx->prompt);
    }
    free(fx);
    generate_session_destroy(s);
    generate_session_destroy(s1);
    tokenizer_destroy(t);
    model_free(m);
    return true;
}

int main(void) {
    test_find_stop();
    // The Q8_0 reference model from ../shared (or a tiny model written here when
    // ../shared is absent); F16 when the GPU kernels do not run Q8_0.
    const char *types[] = {"Q8_0", "F16"};
    const char *shared = test_shared_dir("the reference model (a tiny model written here instead)");
    char tmpdir[] = "/tmp/vkphi-test-generate-XXXXXX";
    bool have_tmp = false, tested = false;
    for (int k = 0; k < 2 && !tested; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/reference/tiny-phi4-%s.gguf", shared ? shared : "", types[k]);
        bool made = false;
        if (!shared) {
            if (!have_tmp && !mkdtemp(tmpdir)) return test_skip("cannot make a temporary directory");
            have_tmp = true;
            snprintf(path, sizeof path, "%s/tiny-%s.gguf", tmpdir, types[k]);
            int rc = mkmodel_write(mkmodel_find_preset("tiny"), types[k], 7, 0, path);
            CHECK(rc == VKPHI_OK, "mkmodel_write: %s", vkphi_last_error());
            if (rc != VKPHI_OK) break;
            made = true;
        }
        printf("model: %s\n", path);
        tested = test_with_model(path);
        if (made) unlink(path);
    }
    if (have_tmp) rmdir(tmpdir);
    CHECK(tested, "the GPU ran none of the test models");
    return test_finish();
}
