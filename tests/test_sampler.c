// SPDX-License-Identifier: MIT
// Sampler: greedy, top-k, top-p, min-p, temperature and penalties against known
// distributions and against a full-sort reference on a 100352-token vocabulary;
// seeding; NaN/inf logits; and the time per call (printed, not asserted).
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "harness.h"
#include "sampler.h"

#define PHI4_VOCAB 100352u

static sampler_params plain(void) // every filter off, temperature 1
{
    sampler_params p = sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void logits_from_probs(const double *prob, uint32_t n, float *logits)
{
    for (uint32_t i = 0; i < n; i++)
        logits[i] = prob[i] > 0 ? (float)log(prob[i]) : -INFINITY;
}

// Draws `draws` tokens into freq[n] (fractions). Returns the number of out-of-range ids.
static int histogram(sampler *s, const float *logits, uint32_t n, int draws, double *freq)
{
    int bad = 0;
    memset(freq, 0, n * sizeof *freq);
    for (int i = 0; i < draws; i++) {
        int32_t t = sampler_sample(s, logits);
        if (t < 0 || (uint32_t)t >= n)
            bad++;
        else
            freq[t] += 1.0 / draws;
    }
    return bad;
}

// Pearson chi-square of observed fractions against expected probabilities; bins with
// zero expectation must be empty (else +inf). Also returns the largest |difference|.
static double chi_square(const double *freq, const double *expect, uint32_t n, int draws, double *max_diff)
{
    double chi = 0, md = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = freq[i] - expect[i];
        md = fmax(md, fabs(d));
        if (expect[i] == 0) {
            if (freq[i] != 0)
                chi = INFINITY;
            continue;
        }
        chi += d * d * draws / expect[i];
    }
    *max_diff = md;
    return chi;
}

// Checks the drawn distribution against `expect` (renormalised): only tokens with
// expect > 0 appear, max |diff| < 0.012 and chi-square below the 99.99% quantile for
// up to 10 degrees of freedom (33.7). With 20000 draws one standard deviation of a
// frequency is at most 0.0035.
static void check_distribution(const char *what, sampler *s, const float *logits, const double *expect,
                               uint32_t n)
{
    enum { DRAWS = 20000 };
    double freq[64];
    int bad = histogram(s, logits, n, DRAWS, freq);
    double md;
    double chi = chi_square(freq, expect, n, DRAWS, &md);
    CHECK(bad == 0, "%s: %d ids out of range", what, bad);
    CHECK(chi < 33.7 && md < 0.012, "%s: chi-square %.2f, max |freq - p| %.4f", what, chi, md);
    for (uint32_t i = 0; i < n; i++)
        CHECK((expect[i] == 0) == (freq[i] == 0), "%s: token %u drawn %.4f, expected %.4f", what, i,
              freq[i], expect[i]);
}

static void test_params(void)
{
    sampler_params d = sampler_default_params();
    CHECK(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f &&
              d.repeat_penalty == 1.0f && d.presence_penalty == 0 && d.frequency_penalty == 0 &&
              d.repeat_last_n == 64 && d.penalize_prompt,
          "defaults");
    sampler *s = sampler_create(&d, 10);
    CHECK(s != NULL, "defaults create: %s", vkphi_last_error());
    sampler_destroy(s);
    sampler_destroy(NULL);

    struct {
        const char *what;
        sampler_params p;
    } bad[9];
    for (int i = 0; i < 9; i++)
        bad[i].p = d;
    bad[0].what = "temperature < 0", bad[0].p.temperature = -0.5f;
    bad[1].what = "temperature NaN", bad[1].p.temperature = NAN;
    bad[2].what = "top_k < 0", bad[2].p.top_k = -1;
    bad[3].what = "top_p > 1", bad[3].p.top_p = 1.5f;
    bad[4].what = "min_p < 0", bad[4].p.min_p = -0.1f;
    bad[5].what = "repeat_penalty 0", bad[5].p.repeat_penalty = 0;
    bad[6].what = "presence inf", bad[6].p.presence_penalty = INFINITY;
    bad[7].what = "repeat_last_n < 0", bad[7].p.repeat_last_n = -1;
    bad[8].what = "top_p NaN", bad[8].p.top_p = NAN;
    for (int i = 0; i < 9; i++) {
        sampler *b = sampler_create(&bad[i].p, 10);
        CHECK(b == NULL && vkphi_last_error()[0] != 0, "%s accepted", bad[i].what);
        sampler_destroy(b);
    }
    CHECK(sampler_create(&d, 0) == NULL, "vocabulary 0 accepted");
    CHECK(sampler_create(NULL, 10) == NULL, "NULL settings accepted");
    printf("bad settings are refused, e.g. \"%s\"\n", vkphi_last_error());
}

static void test_greedy(void)
{
    enum { N = 1000 };
    float *x = malloc(N * sizeof *x);
    test_seed(1);
    for (int i = 0; i < N; i++)
        x[i] = 3 * test_rand_normal();
    int32_t arg = 0;
    for (int i = 1; i < N; i++)
        if (x[i] > x[arg])
            arg = i;
    sampler_params p = sampler_default_params();
    p.temperature = 0;
    int32_t got[3];
    uint64_t seeds[3] = {1, 99, 0xdeadbeefcafef00dull};
    for (int k = 0; k < 3; k++) {
        p.seed = seeds[k];
        sampler *s = sampler_create(&p, N);
        got[k] = sampler_sample(s, x);
        for (int r = 0; r < 50; r++)
            CHECK(sampler_sample(s, x) == arg, "greedy changes between calls");
        sampler_destroy(s);
    }
    CHECK(got[0] == arg && got[1] == arg && got[2] == arg, "greedy %d %d %d, argmax %d", got[0], got[1],
          got[2], arg);
    // ties go to the lower id
    float t[5] = {1, 5, 2, 5, 5};
    sampler *s = sampler_create(&p, 5);
    CHECK(sampler_sample(s, t) == 1, "greedy tie");
    const int32_t *ids;
    const float *pr;
    CHECK(sampler_candidates(s, t, &ids, &pr) == 1 && ids[0] == 1 && pr[0] == 1.0f, "greedy candidates");
    sampler_destroy(s);
    free(x);
}

static void test_top_k(void)
{
    // 10 tokens in shuffled order; top-3 are ids 7 (0.3), 2 (0.2), 5 (0.15).
    const double prob[10] = {0.05, 0.02, 0.2, 0.08, 0.1, 0.15, 0.04, 0.3, 0.03, 0.03};
    float x[10];
    logits_from_probs(prob, 10, x);
    sampler_params p = plain();
    p.top_k = 3;
    p.seed = 5;
    sampler *s = sampler_create(&p, 10);
    double expect[10] = {0};
    expect[7] = 0.3 / 0.65, expect[2] = 0.2 / 0.65, expect[5] = 0.15 / 0.65;
    check_distribution("top-k 3", s, x, expect, 10);
    sampler_destroy(s);

    p.top_k = 1; // top-k 1 is greedy whatever the temperature
    s = sampler_create(&p, 10);
    int ok = 1;
    for (int i = 0; i < 200; i++)
        ok &= sampler_sample(s, x) == 7;
    CHECK(ok, "top-k 1 is not the argmax");
    sampler_destroy(s);

    p.top_k = 10; // = n_vocab: off
    s = sampler_create(&p, 10);
    check_distribution("top-k = vocab", s, x, prob, 10);
    sampler_destroy(s);
}

static void test_top_p(void)
{
    // 0.5, 0.3, 0.15, 0.05 at ids 2, 0, 3, 1
    const double prob[4] = {0.3, 0.05, 0.5, 0.15};
    float x[4];
    logits_from_probs(prob, 4, x);
    sampler_params p = plain();
    p.seed = 11;

    p.top_p = 0.8f; // 0.5 + 0.3 reaches 0.8: exactly two
    sampler *s = sampler_create(&p, 4);
    const int32_t *ids;
    const float *pr;
    uint32_t m = sampler_candidates(s, x, &ids, &pr);
    CHECK(m == 2, "top-p 0.8 keeps %u", m);
    double e2[4] = {0.3 / 0.8, 0, 0.5 / 0.8, 0};
    check_distribution("top-p 0.8", s, x, e2, 4);
    sampler_destroy(s);

    p.top_p = 0.81f; // needs the third
    s = sampler_create(&p, 4);
    m = sampler_candidates(s, x, &ids, &pr);
    CHECK(m == 3, "top-p 0.81 keeps %u", m);
    double e3[4] = {0.3 / 0.95, 0, 0.5 / 0.95, 0.15 / 0.95};
    check_distribution("top-p 0.81", s, x, e3, 4);
    sampler_destroy(s);

    p.top_p = 0.5f; // the first alone reaches it
    s = sampler_create(&p, 4);
    m = sampler_candidates(s, x, &ids, &pr);
    CHECK(m == 1 && ids[0] == 2, "top-p 0.5 keeps %u", m);
    sampler_destroy(s);

    p.top_p = 0.0f; // always at least one
    s = sampler_create(&p, 4);
    m = sampler_candidates(s, x, &ids, &pr);
    CHECK(m == 1 && ids[0] == 2, "top-p 0 keeps %u", m);
    sampler_destroy(s);

    p.top_p = 0.96f; // all four
    s = sampler_create(&p, 4);
    m = sampler_candidates(s, x, &ids, &pr);
    CHECK(m == 4, "top-p 0.96 keeps %u", m);
    sampler_destroy(s);

    // top-p after top-k renormalises over the k kept: with k = 3 the three are
    // 0.5/0.95, 0.3/0.95, 0.15/0.95, so p = 0.84 (< 0.8/0.95 = 0.842) keeps two
    // and p = 0.85 keeps three.
    p.top_k = 3;
    p.top_p = 0.84f;
    s = sampler_create(&p, 4);
    CHECK(sampler_candidates(s, x, NULL, NULL) == 2, "top-k 3 + top-p 0.84");
    sampler_destroy(s);
    p.top_p = 0.85f;
    s = sampler_create(&p, 4);
    CHECK(sampler_candidates(s, x, NULL, NULL) == 3, "top-k 3 + top-p 0.85");
    sampler_destroy(s);
}

static void test_min_p(void)
{
    // 0.4, 0.3, 0.2, 0.06, 0.04 at ids 4, 1, 3, 0, 2
    const double prob[5] = {0.06, 0.3, 0.04, 0.2, 0.4};
    float x[5];
    logits_from_probs(prob, 5, x);
    sampler_params p = plain();
    p.seed = 3;
    struct {
        float min_p;
        uint32_t keep;
    } cases[] = {{0.0f, 5}, {0.09f, 5}, {0.11f, 4}, {0.16f, 3}, {0.49f, 3}, {0.51f, 2}, {0.76f, 1}, {1.0f, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        p.min_p = cases[c].min_p;
        sampler *s = sampler_create(&p, 5);
        const int32_t *ids;
        const float *pr;
        uint32_t m = sampler_candidates(s, x, &ids, &pr);
        int ok = m == cases[c].keep;
        for (uint32_t j = 0; j < m && ok; j++)
            ok = prob[ids[j]] >= cases[c].min_p * 0.4;
        CHECK(ok, "min-p %.2f keeps %u, expected %u", cases[c].min_p, m, cases[c].keep);
        sampler_destroy(s);
    }
    p.min_p = 0.16f; // 0.4, 0.3, 0.2 remain
    sampler *s = sampler_create(&p, 5);
    double e[5] = {0, 0.3 / 0.9, 0, 0.2 / 0.9, 0.4 / 0.9};
    check_distribution("min-p 0.16", s, x, e, 5);
    sampler_destroy(s);
}

static void test_temperature(void)
{
    enum { N = 8 };
    float x[N];
    test_seed(4);
    for (int i = 0; i < N; i++)
        x[i] = test_rand_normal();
    const float temps[3] = {1.0f, 0.5f, 2.0f};
    for (int t = 0; t < 3; t++) {
        sampler_params p = plain();
        p.temperature = temps[t];
        p.seed = 100 + t;
        sampler *s = sampler_create(&p, N);
        double e[N], z = 0;
        for (int i = 0; i < N; i++)
            z += e[i] = exp(x[i] / temps[t]);
        for (int i = 0; i < N; i++)
            e[i] /= z;
        char what[64];
        snprintf(what, sizeof what, "temperature %.1f", temps[t]);
        check_distribution(what, s, x, e, N);
        sampler_destroy(s);
    }
    // The whole chain at once: top-k 4, top-p, min-p, temperature 0.7.
    const double prob[6] = {0.1, 0.35, 0.05, 0.25, 0.2, 0.05};
    logits_from_probs(prob, 6, x);
    sampler_params p = plain();
    p.top_k = 4;       // 0.35 0.25 0.2 0.1 (sum 0.9)
    p.top_p = 0.85f;   // /0.9: .389 .278 .222 (cum .889) -> three
    p.min_p = 0.6f;    // >= 0.21: .35 .25 .2 stay... 0.2 < 0.21 goes
    p.temperature = 0.7f;
    p.seed = 77;
    sampler *s = sampler_create(&p, 6);
    double e[6] = {0};
    e[1] = pow(0.35, 1 / 0.7), e[3] = pow(0.25, 1 / 0.7);
    double z = e[1] + e[3];
    e[1] /= z, e[3] /= z;
    check_distribution("chain", s, x, e, 6);
    sampler_destroy(s);
}

// ---- full-size vocabulary against a full-sort reference ----

static const float *g_ref_logits;
static int cmp_ref(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = g_ref_logits[i], y = g_ref_logits[j];
    if (x != y)
        return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

// The documented chain with a full sort, in double: returns the survivors (sorted ids)
// in ids[0..m), best first, and their probabilities by id in prob_by_id.
static uint32_t reference(const float *logits, uint32_t n, const sampler_params *p, int32_t *ids,
                          double *prob_by_id)
{
    float *x = malloc(n * sizeof *x);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = (int32_t)i;
        x[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    }
    g_ref_logits = x;
    qsort(ids, n, sizeof *ids, cmp_ref);
    uint32_t m = n;
    while (m > 1 && x[ids[m - 1]] == -INFINITY)
        m--;
    if (p->top_k > 0 && (uint32_t)p->top_k < m)
        m = (uint32_t)p->top_k;
    const double mx = x[ids[0]];
    if (p->top_p < 1) {
        double z = 0, cum = 0;
        for (uint32_t j = 0; j < m; j++)
            z += exp(x[ids[j]] - mx);
        uint32_t keep = 0;
        while (keep < m && (keep == 0 || cum < p->top_p * (1 - 1e-6) * z))
            cum += exp(x[ids[keep++]] - mx);
        m = keep;
    }
    while (m > 1 && exp(x[ids[m - 1]] - mx) < p->min_p)
        m--;
    double z = 0;
    memset(prob_by_id, 0, n * sizeof *prob_by_id);
    for (uint32_t j = 0; j < m; j++)
        z += prob_by_id[ids[j]] = exp((x[ids[j]] - mx) / p->temperature);
    for (uint32_t j = 0; j < m; j++)
        prob_by_id[ids[j]] /= z;
    free(x);
    return m;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void compare_with_reference(const char *what, const float *x, uint32_t n, sampler_params p)
{
    int32_t *ref_ids = malloc(n * sizeof *ref_ids);
    int32_t *got = malloc(n * sizeof *got);
    double *ref_p = malloc(n * sizeof *ref_p);
    uint32_t rm = reference(x, n, &p, ref_ids, ref_p);
    qsort(ref_ids, rm, sizeof *ref_ids, cmp_i32);

    sampler *s = sampler_create(&p, n);
    const int32_t *ids;
    const float *pr;
    uint32_t m = sampler_candidates(s, x, &ids, &pr);
    double worst = 0, sum = 0;
    for (uint32_t j = 0; j < m; j++) {
        got[j] = ids[j];
        sum += pr[j];
        if (ids[j] >= 0 && (uint32_t)ids[j] < n)
            worst = fmax(worst, fabs(pr[j] - ref_p[ids[j]]) / (1e-9 + ref_p[ids[j]]));
    }
    qsort(got, m, sizeof *got, cmp_i32);
    int same = m == rm && memcmp(got, ref_ids, m * sizeof *got) == 0;
    CHECK(same, "%s: %u survivors, reference %u", what, m, rm);
    CHECK(worst < 1e-4 && fabs(sum - 1) < 1e-5, "%s: probability rel. error %.2e, sum %.7f", what, worst, sum);
    // Draws come only from the survivors.
    int outside = 0;
    for (int i = 0; i < 300; i++) {
        int32_t t = sampler_sample(s, x);
        outside += !(t >= 0 && (uint32_t)t < n && ref_p[t] > 0);
    }
    CHECK(outside == 0, "%s: %d draws outside the survivors", what, outside);
    printf("  %-34s %6u survivors\n", what, m);
    sampler_destroy(s);
    free(ref_ids);
    free(got);
    free(ref_p);
}

static void test_full_vocab(void)
{
    const uint32_t n = PHI4_VOCAB;
    float *x = malloc(n * sizeof *x);
    float *q = malloc(n * sizeof *q);
    float *peak = malloc(n * sizeof *peak);
    float *holes = malloc(n * sizeof *holes);
    test_seed(9);
    for (uint32_t i = 0; i < n; i++) {
        x[i] = 3 * test_rand_normal();          // like the tiny reference model's logits
        q[i] = roundf(x[i] * 2) * 0.5f;         // many exact ties
        peak[i] = x[i] * 0.7f;
        holes[i] = i % 7 == 3 ? -INFINITY : i % 11 == 5 ? NAN : x[i] - 100.0f; // masked tokens
    }
    peak[4242] = 14; // one dominant token, a few plausible ones
    peak[17] = 12.5f;
    peak[99999] = 11;
    struct {
        const char *what;
        int32_t k;
        float p, min_p, t;
    } cfg[] = {
        {"k40 p0.95 min0.05 t0.8", 40, 0.95f, 0.05f, 0.8f},
        {"k0 p0.95 min0.05 t0.8", 0, 0.95f, 0.05f, 0.8f},
        {"k0 p0.95 min0 t0.8", 0, 0.95f, 0.0f, 0.8f},
        {"k0 p0.5 min0 t1", 0, 0.5f, 0.0f, 1.0f},
        {"k0 p0.999 min0 t1.5", 0, 0.999f, 0.0f, 1.5f},
        {"k0 p1 min0.01 t1", 0, 1.0f, 0.01f, 1.0f},
        {"k1000 p0.9 min0 t1", 1000, 0.9f, 0.0f, 1.0f},
        {"k0 p1 min0 t1 (everything)", 0, 1.0f, 0.0f, 1.0f},
    };
    const float *inputs[4] = {x, q, peak, holes};
    const char *names[4] = {"normal(0,3)", "ties", "peaked", "NaN/-inf"};
    for (int in = 0; in < 4; in++) {
        printf("%s logits, vocabulary %u:\n", names[in], n);
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            sampler_params p = plain();
            p.top_k = cfg[c].k, p.top_p = cfg[c].p, p.min_p = cfg[c].min_p, p.temperature = cfg[c].t;
            p.seed = 1234 + c;
            char what[96];
            snprintf(what, sizeof what, "%s %s", names[in], cfg[c].what);
            compare_with_reference(what, inputs[in], n, p);
        }
    }
    free(x);
    free(q);
    free(peak);
    free(holes);
}

// ---- penalties ----

static void test_penalties(void)
{
    enum { N = 10 };
    float base[N], x[N];
    for (int i = 0; i < N; i++)
        base[i] = (float)i - 3; // -3 .. 6
    sampler_params p = plain();
    p.repeat_last_n = 3;

    p.repeat_penalty = 2.0f;
    sampler *s = sampler_create(&p, N);
    sampler_accept(s, 8);
    sampler_accept(s, 1);
    sampler_accept(s, 8);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    int others = 1;
    for (int i = 0; i < N; i++)
        if (i != 8 && i != 1)
            others &= x[i] == base[i];
    CHECK(x[8] == 2.5f && x[1] == -4.0f && others, "repeat: x8 %g (5/2), x1 %g (-2*2)", x[8], x[1]);
    // The window keeps 3: a fourth token pushes the first 8 out, 8 then counts once.
    sampler_accept(s, 3);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    CHECK(x[8] == 2.5f && x[1] == -4.0f && x[3] == 0.0f && x[0] == -3.0f, "window slide");
    sampler_accept(s, 0); // window 8 3 0
    sampler_accept(s, 0); // window 3 0 0
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    CHECK(x[8] == 5.0f && x[1] == -2.0f && x[0] == -6.0f, "evicted tokens are not penalised");
    sampler_destroy(s);

    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    s = sampler_create(&p, N);
    sampler_accept(s, 8);
    sampler_accept(s, 1);
    sampler_accept(s, 8);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    others = 1;
    for (int i = 0; i < N; i++)
        if (i != 8 && i != 1)
            others &= x[i] == base[i];
    CHECK(x[8] == 4.0f && x[1] == -2.75f && others, "presence/frequency: x8 %g (5-.5-2*.25), x1 %g", x[8], x[1]);
    sampler_destroy(s);

    p.repeat_penalty = 2.0f; // all three: repeat first, then subtract
    s = sampler_create(&p, N);
    sampler_accept(s, 8);
    sampler_accept(s, 1);
    sampler_accept(s, 8);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    CHECK(x[8] == 1.5f && x[1] == -4.75f, "all penalties: x8 %g, x1 %g", x[8], x[1]);
    // The sampler uses the penalised logits: softmax over them, temperature 1.
    const int32_t *ids;
    const float *pr;
    uint32_t m = sampler_candidates(s, base, &ids, &pr);
    double z = 0, worst = 0;
    for (int i = 0; i < N; i++)
        z += exp(x[i]);
    for (uint32_t j = 0; j < m; j++)
        worst = fmax(worst, fabs(pr[j] - exp(x[ids[j]]) / z));
    CHECK(m == N && worst < 1e-6, "penalised softmax: %u survivors, error %.2e", m, worst);
    sampler_reset(s);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    CHECK(memcmp(x, base, sizeof x) == 0, "reset keeps penalties");
    CHECK(sampler_accept(s, N) == VKPHI_ERR_ARG && sampler_accept(s, -1) == VKPHI_ERR_ARG,
          "out-of-range token accepted");
    sampler_apply_penalties(s, x);
    CHECK(memcmp(x, base, sizeof x) == 0, "a refused token was counted");
    sampler_destroy(s);

    p.repeat_last_n = 0; // no window: nothing is penalised
    s = sampler_create(&p, N);
    sampler_accept(s, 8);
    memcpy(x, base, sizeof x);
    sampler_apply_penalties(s, x);
    CHECK(memcmp(x, base, sizeof x) == 0, "repeat_last_n 0 penalises");
    sampler_destroy(s);

    // Greedy outcomes flip exactly when the penalty crosses the runner-up.
    float g[N] = {0, 1, -1, 2, 5.0f, 0.5f, 3, 4.5f, -2, 1};
    struct {
        float rep, pres, freq;
        int32_t token; // accepted `accepts` times
        int accepts;
        int32_t want;
    } flips[] = {
        {1.0f, 0.0f, 0.0f, 4, 1, 4},  {1.2f, 0.0f, 0.0f, 4, 1, 7},  {1.05f, 0.0f, 0.0f, 4, 1, 4},
        {1.0f, 0.6f, 0.0f, 4, 1, 7},  {1.0f, 0.4f, 0.0f, 4, 1, 4},  {1.0f, 0.0f, 0.3f, 4, 1, 4},
        {1.0f, 0.0f, 0.3f, 4, 2, 7},  {1.0f, 0.0f, 0.3f, 4, 0, 4},  {1.0f, -0.6f, 0.0f, 7, 1, 7},
        {1.0f, -0.4f, 0.0f, 7, 1, 4}, {1.0f, 0.0f, -0.2f, 7, 3, 7}, {0.5f, 0.0f, 0.0f, 7, 1, 7},
    };
    for (size_t f = 0; f < sizeof flips / sizeof flips[0]; f++) {
        sampler_params gp = sampler_default_params();
        gp.temperature = 0;
        gp.repeat_last_n = 4;
        gp.repeat_penalty = flips[f].rep, gp.presence_penalty = flips[f].pres,
        gp.frequency_penalty = flips[f].freq;
        s = sampler_create(&gp, N);
        for (int a = 0; a < flips[f].accepts; a++)
            sampler_accept(s, flips[f].token);
        int32_t got = sampler_sample(s, g);
        CHECK(got == flips[f].want, "greedy flip %zu: got %d, want %d", f, got, flips[f].want);
        sampler_destroy(s);
    }
    // Repeat penalty below 1 raises a penalised token above the max (negative one too).
    sampler_params gp = sampler_default_params();
    gp.temperature = 0;
    gp.repeat_penalty = 0.1f;
    s = sampler_create(&gp, N);
    sampler_accept(s, 8); // -2 * 0.1 = -0.2: not enough
    CHECK(sampler_sample(s, g) == 4, "penalty < 1 on a negative logit");
    sampler_accept(s, 6); // 3 / 0.1 = 30
    CHECK(sampler_sample(s, g) == 6, "penalty < 1 on a positive logit");
    sampler_destroy(s);

    // Prompt tokens count only with penalize_prompt; window eviction restores.
    gp = sampler_default_params();
    gp.temperature = 0;
    gp.repeat_penalty = 1.2f;
    gp.repeat_last_n = 2;
    const int32_t prompt[1] = {4};
    for (int pen = 0; pen < 2; pen++) {
        gp.penalize_prompt = pen;
        s = sampler_create(&gp, N);
        CHECK(sampler_accept_prompt(s, prompt, 1) == VKPHI_OK, "accept_prompt");
        int32_t got = sampler_sample(s, g);
        CHECK(got == (pen ? 7 : 4), "penalize_prompt %d: got %d", pen, got);
        sampler_accept(s, 0);
        sampler_accept(s, 1);
        CHECK(sampler_sample(s, g) == 4, "token 4 left the window of 2");
        sampler_accept(s, 4);
        CHECK(sampler_sample(s, g) == 7, "accepted token 4 penalised");
        sampler_reset(s);
        CHECK(sampler_sample(s, g) == 4, "reset clears the window");
        sampler_destroy(s);
    }
}

// ---- seeds ----

static void run_sequence(sampler *s, int32_t *out, int len)
{
    enum { N = 500 };
    float x[N];
    test_seed(21);
    for (int t = 0; t < len; t++) {
        for (int i = 0; i < N; i++)
            x[i] = 2 * test_rand_normal();
        out[t] = sampler_sample(s, x);
        sampler_accept(s, out[t]);
    }
}

static void test_seeds(void)
{
    enum { LEN = 300 };
    int32_t a[LEN], b[LEN], c[LEN], d[LEN];
    sampler_params p = sampler_default_params();
    p.repeat_penalty = 1.1f;
    p.seed = 7;
    sampler *sa = sampler_create(&p, 500), *sb = sampler_create(&p, 500);
    p.seed = 8;
    sampler *sc = sampler_create(&p, 500);
    run_sequence(sa, a, LEN);
    run_sequence(sb, b, LEN);
    run_sequence(sc, c, LEN);
    int diff = 0;
    for (int i = 0; i < LEN; i++)
        diff += a[i] != c[i];
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, different tokens");
    CHECK(diff > LEN / 4, "seeds 7 and 8 differ at only %d of %d tokens", diff, LEN);
    sampler_reset(sa);
    run_sequence(sa, d, LEN);
    CHECK(memcmp(a, d, sizeof a) == 0, "reset does not repeat the sequence");
    sampler_reset(sc);
    sampler_set_seed(sc, 7);
    run_sequence(sc, d, LEN);
    CHECK(memcmp(a, d, sizeof a) == 0, "set_seed(7) does not repeat seed 7's sequence");
    sampler_destroy(sa);
    sampler_destroy(sb);
    sampler_destroy(sc);
}

// ---- NaN and infinities ----

static void test_nonfinite(void)
{
    enum { N = 16 };
    float x[N];
    const float temps[2] = {0.0f, 0.8f};
    for (int t = 0; t < 2; t++) {
        sampler_params p = sampler_default_params();
        p.temperature = temps[t];
        p.repeat_penalty = 1.3f;
        sampler *s = sampler_create(&p, N);
        sampler_accept(s, 3);

        for (int i = 0; i < N; i++)
            x[i] = NAN;
        CHECK(sampler_sample(s, x) == 0, "all NaN, t %.1f", temps[t]);
        for (int i = 0; i < N; i++)
            x[i] = -INFINITY;
        CHECK(sampler_sample(s, x) == 0, "all -inf, t %.1f", temps[t]);
        for (int i = 0; i < N; i++)
            x[i] = (i % 3) ? NAN : -INFINITY;
        CHECK(sampler_sample(s, x) == 0, "NaN and -inf, t %.1f", temps[t]);

        // NaN next to finite logits: never drawn.
        for (int i = 0; i < N; i++)
            x[i] = (i % 2) ? NAN : (float)i * 0.1f;
        int bad = 0;
        for (int r = 0; r < 2000; r++) {
            int32_t tok = sampler_sample(s, x);
            bad += tok < 0 || tok >= N || (tok % 2);
        }
        CHECK(bad == 0, "NaN tokens drawn %d times, t %.1f", bad, temps[t]);

        // +inf wins; two +inf: both possible when sampling, lower id when greedy.
        for (int i = 0; i < N; i++)
            x[i] = (float)i;
        x[5] = INFINITY;
        bad = 0;
        for (int r = 0; r < 200; r++)
            bad += sampler_sample(s, x) != 5;
        CHECK(bad == 0, "+inf token lost %d times, t %.1f", bad, temps[t]);
        x[11] = INFINITY;
        int seen5 = 0, seen11 = 0;
        bad = 0;
        for (int r = 0; r < 400; r++) {
            int32_t tok = sampler_sample(s, x);
            seen5 += tok == 5, seen11 += tok == 11, bad += tok != 5 && tok != 11;
        }
        CHECK(bad == 0 && seen5 > 0 && (temps[t] == 0 ? seen11 == 0 : seen11 > 0),
              "two +inf: %d %d %d, t %.1f", seen5, seen11, bad, temps[t]);
        // A huge logit, penalised: stays finite, no NaN.
        x[3] = INFINITY;
        int32_t tok = sampler_sample(s, x);
        CHECK(tok == 3 || tok == 5 || tok == 11, "+inf penalised: %d", tok);
        sampler_destroy(s);
    }
    // Fewer finite logits than top_k, the rest -inf.
    sampler_params p = sampler_default_params();
    p.top_k = 8;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    sampler *s = sampler_create(&p, N);
    for (int i = 0; i < N; i++)
        x[i] = -INFINITY;
    x[2] = 0.5f, x[9] = 0.2f, x[14] = 0.1f;
    int seen[N] = {0}, bad = 0;
    for (int r = 0; r < 3000; r++) {
        int32_t tok = sampler_sample(s, x);
        if (tok >= 0 && tok < N)
            seen[tok]++;
        bad += tok != 2 && tok != 9 && tok != 14;
    }
    CHECK(bad == 0 && seen[2] && seen[9] && seen[14], "top-k over -inf: %d bad", bad);
    CHECK(sampler_sample(NULL, x) == -1 && sampler_sample(s, NULL) == -1, "NULL arguments");
    sampler_destroy(s);
}

// ---- speed ----

static void time_config(const char *what, sampler_params p, const float *x, uint32_t n)
{
    sampler *s = sampler_create(&p, n);
    for (int i = 0; i < 64; i++) // fill the penalty window as generation would
        sampler_accept(s, (int32_t)((i * 7919u) % n));
    for (int i = 0; i < 5; i++)
        sampler_sample(s, x);
    const int reps = 200;
    double t0 = vkphi_now();
    for (int i = 0; i < reps; i++)
        sampler_sample(s, x);
    double us = (vkphi_now() - t0) / reps * 1e6;
    printf("  %-40s %8.1f us/sample\n", what, us);
    sampler_destroy(s);
}

static void test_speed(void)
{
    const uint32_t n = PHI4_VOCAB;
    float *x = malloc(n * sizeof *x);
    float *peak = malloc(n * sizeof *peak);
    test_seed(33);
    for (uint32_t i = 0; i < n; i++) {
        x[i] = 3 * test_rand_normal();
        peak[i] = 2 * test_rand_normal();
    }
    peak[100] = 18, peak[200] = 16.5f, peak[300] = 15;
    const float *inputs[2] = {x, peak};
    const char *names[2] = {"normal(0,3)", "peaked"};
    for (int in = 0; in < 2; in++) {
        printf("time per sample, vocabulary %u, %s logits:\n", n, names[in]);
        sampler_params p = sampler_default_params();
        time_config("defaults (k40 p0.95 min_p0.05 t0.8)", p, inputs[in], n);
        p.repeat_penalty = 1.1f, p.presence_penalty = 0.2f, p.frequency_penalty = 0.1f;
        time_config("defaults + penalties over 64 tokens", p, inputs[in], n);
        p = sampler_default_params();
        p.top_k = 0;
        time_config("k0 p0.95 min_p0.05", p, inputs[in], n);
        p.min_p = 0;
        time_config("k0 p0.95 min_p0", p, inputs[in], n);
        p.top_p = 1;
        time_config("k0 p1 min_p0 (temperature only)", p, inputs[in], n);
        p.temperature = 0;
        time_config("greedy", p, inputs[in], n);
    }
    free(x);
    free(peak);
}

int main(void)
{
    test_params();
    test_greedy();
    test_top_k();
    test_top_p();
    test_min_p();
    test_temperature();
    test_full_vocab();
    test_penalties();
    test_seeds();
    test_nonfinite();
    test_speed();
    return test_finish();
}
