// SPDX-License-Identifier: MIT
// CPU token sampler; the order of operations and its costs are described in sampler.h.
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

// Histogram used by top-p when top-k is off: bin b holds the tokens whose logit is
// b/8 to (b+1)/8 below the largest; the last bin holds everything lower. Multiplying
// by a power of two is exact, so bin edges are too; 1/8 nat keeps the one bin that
// gets sorted small.
enum { HIST_BINS = 512, HIST_PER_NAT = 8 }; // bins cover 64 nats

// Logits are scanned in blocks of this many (see struct sampler).
enum { BLOCK = 64 };

// Relative slack for top-p's "cumulative >= p" (see sampler.h, step 4).
#define TOP_P_SLACK 1e-6

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct sampler {
    sampler_params p;
    uint32_t n_vocab;
    uint64_t rng[4]; // xoshiro256** state

    // Penalty window: the last repeat_last_n accepted tokens, with per-token counts and
    // the list of distinct tokens in it, so penalties cost O(distinct), not O(vocab).
    int32_t *ring;        // (repeat_last_n) oldest entry at ring_head once full
    uint32_t ring_len;    // entries held, <= repeat_last_n
    uint32_t ring_head;   // slot the next token goes to
    uint32_t *count;      // (n_vocab) occurrences of each token in the window
    uint32_t *slot;       // (n_vocab) position in distinct[] of a token with count > 0
    int32_t *distinct;    // (min(repeat_last_n, n_vocab)) tokens with count > 0
    uint32_t n_distinct;

    // Per-call scratch. Blocks of BLOCK logits let the top-k scan skip whole blocks
    // and the draw find its token without a token-by-token running sum.
    float *work;     // (n_vocab) sanitized, penalised logits
    float *bmax;     // (n_blocks) largest of work[] in each block
    float *ex;       // (n_vocab) exp(work - max), for top-p without top-k
    uint16_t *bin;   // (n_vocab) histogram bin of each token, for top-p without top-k
    cand *cand;      // (n_vocab) candidates while selecting
    int32_t *out_id; // (n_vocab) survivors' ids
    float *out_p;    // (n_vocab) survivors' logits, then weights, then probabilities
    double *bsum;    // (n_blocks) sums of out_p by block of BLOCK survivors
};

// ---- random numbers: splitmix64 to seed, xoshiro256** to draw ----

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t st[4])
{
    const uint64_t result = rotl64(st[1] * 5, 7) * 9;
    const uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl64(st[3], 45);
    return result;
}

static void rng_seed(uint64_t st[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        st[i] = splitmix64(&seed); // four distinct outputs (a bijection of the counter): never all zero
}

// Uniform in [0, 1) with 53 random bits.
static double rng_uniform(uint64_t st[4]) { return (double)(rng_next(st) >> 11) * 0x1.0p-53; }

// ---- settings, creation ----

sampler_params sampler_default_params(void)
{
    return (sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .repeat_last_n = 64,
        .penalize_prompt = true,
        .seed = 0,
    };
}

static int check_params(const sampler_params *p, uint32_t n_vocab)
{
    if (n_vocab == 0 || n_vocab > INT32_MAX)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: vocabulary size %u is out of range", n_vocab);
    if (!isfinite(p->temperature) || p->temperature < 0)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: temperature %g must be >= 0 (0 = greedy)",
                          p->temperature);
    if (p->top_k < 0)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: top_k %d must be >= 0 (0 = off)", p->top_k);
    if (!(p->top_p >= 0 && p->top_p <= 1))
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: top_p %g must be in [0, 1] (1 = off)", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: min_p %g must be in [0, 1] (0 = off)", p->min_p);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: repeat_penalty %g must be > 0 (1 = off)",
                          p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: presence_penalty %g and frequency_penalty %g must be finite",
                          p->presence_penalty, p->frequency_penalty);
    if (p->repeat_last_n < 0)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler: repeat_last_n %d must be >= 0 (0 = no penalties)",
                          p->repeat_last_n);
    return VKPHI_OK;
}

sampler *sampler_create(const sampler_params *p, uint32_t n_vocab)
{
    if (!p) {
        vkphi_fail(VKPHI_ERR_ARG, "sampler: no settings given");
        return NULL;
    }
    if (check_params(p, n_vocab) != VKPHI_OK)
        return NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) {
        vkphi_fail(VKPHI_ERR_NOMEM, "sampler: out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    uint32_t window = (uint32_t)p->repeat_last_n;
    uint32_t n_dist = window < n_vocab ? window : n_vocab;
    s->ring = malloc((window ? window : 1) * sizeof *s->ring);
    s->count = calloc(n_vocab, sizeof *s->count);
    s->slot = malloc(n_vocab * sizeof *s->slot);
    s->distinct = malloc((n_dist ? n_dist : 1) * sizeof *s->distinct);
    uint32_t n_blocks = (n_vocab + BLOCK - 1) / BLOCK;
    s->work = malloc(n_vocab * sizeof *s->work);
    s->bmax = malloc(n_blocks * sizeof *s->bmax);
    s->ex = malloc(n_vocab * sizeof *s->ex);
    s->bin = malloc(n_vocab * sizeof *s->bin);
    s->bsum = malloc(n_blocks * sizeof *s->bsum);
    s->cand = malloc(n_vocab * sizeof *s->cand);
    s->out_id = malloc(n_vocab * sizeof *s->out_id);
    s->out_p = malloc(n_vocab * sizeof *s->out_p);
    if (!s->ring || !s->count || !s->slot || !s->distinct || !s->work || !s->bmax || !s->ex ||
        !s->bin || !s->bsum || !s->cand || !s->out_id || !s->out_p) {
        sampler_destroy(s);
        vkphi_fail(VKPHI_ERR_NOMEM, "sampler: out of memory for a vocabulary of %u", n_vocab);
        return NULL;
    }
    rng_seed(s->rng, p->seed);
    return s;
}

void sampler_destroy(sampler *s)
{
    if (!s)
        return;
    free(s->ring);
    free(s->count);
    free(s->slot);
    free(s->distinct);
    free(s->work);
    free(s->bmax);
    free(s->ex);
    free(s->bin);
    free(s->bsum);
    free(s->cand);
    free(s->out_id);
    free(s->out_p);
    free(s);
}

// ---- penalty window ----

static void window_push(sampler *s, int32_t token)
{
    const uint32_t cap = (uint32_t)s->p.repeat_last_n;
    if (s->ring_len == cap) { // full: the oldest entry leaves
        int32_t old = s->ring[s->ring_head];
        if (--s->count[old] == 0) { // swap-remove from distinct[]
            uint32_t at = s->slot[old];
            int32_t last = s->distinct[--s->n_distinct];
            s->distinct[at] = last;
            s->slot[last] = at;
        }
    } else {
        s->ring_len++;
    }
    s->ring[s->ring_head] = token;
    s->ring_head = s->ring_head + 1 == cap ? 0 : s->ring_head + 1;
    if (s->count[token]++ == 0) {
        s->slot[token] = s->n_distinct;
        s->distinct[s->n_distinct++] = token;
    }
}

int sampler_accept(sampler *s, int32_t token)
{
    if (!s)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler_accept: no sampler");
    if (token < 0 || (uint32_t)token >= s->n_vocab)
        return vkphi_fail(VKPHI_ERR_ARG, "sampler_accept: token %d is outside the vocabulary of %u",
                          token, s->n_vocab);
    if (s->p.repeat_last_n > 0)
        window_push(s, token);
    return VKPHI_OK;
}

int sampler_accept_prompt(sampler *s, const int32_t *tokens, uint32_t n)
{
    if (!s || (n && !tokens))
        return vkphi_fail(VKPHI_ERR_ARG, "sampler_accept_prompt: no sampler or no tokens");
    if (!s->p.penalize_prompt)
        return VKPHI_OK;
    // Every token is checked and pushed; the window keeps the last repeat_last_n.
    int rc = VKPHI_OK;
    for (uint32_t i = 0; i < n; i++)
        if (sampler_accept(s, tokens[i]) != VKPHI_OK)
            rc = VKPHI_ERR_ARG;
    return rc;
}

void sampler_reset(sampler *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_distinct; i++)
        s->count[s->distinct[i]] = 0;
    s->n_distinct = 0;
    s->ring_len = 0;
    s->ring_head = 0;
    rng_seed(s->rng, s->p.seed);
}

void sampler_set_seed(sampler *s, uint64_t seed)
{
    if (!s)
        return;
    s->p.seed = seed;
    rng_seed(s->rng, seed);
}

static bool penalties_on(const sampler *s)
{
    return s->n_distinct > 0 && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f ||
                                 s->p.frequency_penalty != 0.0f);
}

void sampler_apply_penalties(const sampler *s, float *logits)
{
    if (!s || !logits || !penalties_on(s))
        return;
    const float rp = s->p.repeat_penalty;
    for (uint32_t i = 0; i < s->n_distinct; i++) {
        const int32_t t = s->distinct[i];
        const uint32_t c = s->count[t]; // > 0
        float v = logits[t];
        if (rp != 1.0f)
            v = v > 0 ? v / rp : v * rp;
        v -= s->p.presence_penalty + s->p.frequency_penalty * (float)c;
        logits[t] = v;
    }
}

// ---- selection ----

static inline uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// NaN -> -inf and +inf -> FLT_MAX, so that logit - max is never NaN. Done on the bits
// without branches or float compares, which lets loops of it vectorize.
static inline uint32_t sanitize_bits(uint32_t b)
{
    const uint32_t nan = 0u - ((0x7f800000u - (b & 0x7fffffffu)) >> 31); // ones when NaN
    b = (b & ~nan) | (0xff800000u & nan);
    return b - (uint32_t)(b == 0x7f800000u);
}

static inline float sanitize(float v) { return bits_float(sanitize_bits(float_bits(v))); }

// An integer in the order of the (non-NaN) float values; the map is its own inverse.
static inline int32_t order_key(uint32_t b) { return (int32_t)(b ^ ((0u - (b >> 31)) & 0x7fffffffu)); }

static inline float key_float(int32_t k)
{
    const uint32_t b = (uint32_t)k;
    return bits_float(b ^ ((0u - (b >> 31)) & 0x7fffffffu));
}

// e^x for x <= 0 (including -inf; 0 below -87), within 1e-7 relative: a degree-7
// Taylor polynomial on x - n ln2 (|.| <= ln2 / 2) times 2^n. Branch-free integer
// selects, because with -ftrapping-math the compiler will not if-convert float ones,
// and a loop with branches does not vectorize; expf costs twice as much.
static inline float exp_neg(float x)
{
    const int32_t lim = 0x42ae0000; // 87.0f
    const int32_t mag = (int32_t)(float_bits(x) & 0x7fffffffu);
    const int32_t over = mag - lim;
    const int32_t keep = -(int32_t)((uint32_t)over >> 31); // all ones when |x| < 87
    const float xc = bits_float((uint32_t)(lim + (over & keep)) | 0x80000000u);
    // xc * log2(e) rounded to an integer n by the 1.5 * 2^23 trick: n sits in the low bits.
    const float shifted = xc * 1.44269504f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    const float r = (xc - n * 0.693145752f) - n * 1.42860677e-6f; // ln2 in two parts
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t scale = (float_bits(shifted) - 0x4b400000u + 127u) << 23; // 2^n, n in [-126, 0]
    return bits_float(float_bits(p * bits_float(scale)) & (uint32_t)keep);
}

static inline uint32_t block_end(uint32_t b0, uint32_t n) { return n - b0 < BLOCK ? n : b0 + BLOCK; }

// Sanitized copy of logits into work[], each block's largest value into bmax[].
static void load_logits(sampler *s, const float *logits)
{
    const uint32_t n = s->n_vocab;
    for (uint32_t b0 = 0; b0 < n; b0 += BLOCK) {
        const uint32_t e = block_end(b0, n);
        int32_t key = INT32_MIN;
        for (uint32_t i = b0; i < e; i++) {
            const uint32_t u = sanitize_bits(float_bits(logits[i]));
            s->work[i] = bits_float(u);
            const int32_t k = order_key(u);
            key = k > key ? k : key;
        }
        s->bmax[b0 / BLOCK] = key_float(key);
    }
}

static float block_max(const float *w, uint32_t b0, uint32_t n)
{
    float m = -INFINITY;
    for (uint32_t i = b0, e = block_end(b0, n); i < e; i++)
        m = w[i] > m ? w[i] : m;
    return m;
}

// Heap of candidates with the worst at the root. "Worse" = lower logit, or the
// higher id on equal logits, so that ties keep the lower id.
static inline bool worse(cand a, cand b) { return a.logit < b.logit || (a.logit == b.logit && a.id > b.id); }

static void sift_down(cand *h, uint32_t n, uint32_t i)
{
    cand x = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(h[c + 1], h[c]))
            c++;
        if (!worse(h[c], x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int cmp_better_first(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

// Leaves the k best of work[] in c[0..k), best first; -inf logits never enter, so
// with fewer than k finite logits the tail holds -inf placeholders.
static void select_top_k(const sampler *s, uint32_t k, cand *c)
{
    const float *w = s->work;
    const uint32_t n = s->n_vocab;
    for (uint32_t i = 0; i < k; i++)
        c[i] = (cand){-INFINITY, INT32_MAX};
    float root = -INFINITY;
    for (uint32_t b0 = 0; b0 < n; b0 += BLOCK) {
        if (!(s->bmax[b0 / BLOCK] > root)) // most blocks, once the heap holds good tokens
            continue;
        for (uint32_t i = b0, e = block_end(b0, n); i < e; i++) {
            // A later id never beats an equal logit, so a strict compare is the whole test.
            if (w[i] > root) {
                c[0] = (cand){w[i], (int32_t)i};
                sift_down(c, k, 0);
                root = c[0].logit;
            }
        }
    }
    for (uint32_t m = k; m > 1; m--) { // heap sort: the worst goes to the end
        cand t = c[0];
        c[0] = c[m - 1];
        c[m - 1] = t;
        sift_down(c, m - 1, 0);
    }
}

// Histogram bin of d = max - logit >= 0 (+inf included), branch-free as exp_neg is:
// min(floor(d * HIST_PER_NAT), HIST_BINS - 1).
static inline uint32_t hist_bin(float d)
{
    const int32_t lim = 0x42800000; // 64.0f
    _Static_assert(HIST_BINS / HIST_PER_NAT == 64, "hist_bin's limit");
    const int32_t over = (int32_t)float_bits(d) - lim;
    const int32_t below = -(int32_t)((uint32_t)over >> 31);
    const uint32_t b = (uint32_t)(int32_t)(bits_float((uint32_t)(lim + (over & below))) * (float)HIST_PER_NAT);
    return b - (uint32_t)(b == HIST_BINS);
}

// Sum of x[0..n) in double, in eight independent lanes so that the adds vectorize.
static double sum_floats(const float *x, uint32_t n)
{
    double lane[8] = {0};
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += x[i + l];
    for (; i < n; i++)
        lane[0] += x[i];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// Top-p (and min-p) without top-k. The softmax denominator needs every token, but
// where the nucleus ends needs only the order of the tokens min-p keeps: a histogram
// of their mass by distance below the max finds the one bin where the cumulative mass
// crosses p, and only that bin's tokens are sorted. Leaves the survivors in c[0..m).
static uint32_t nucleus_all(sampler *s, float mx, float thr, float top_p, cand *c)
{
    const uint32_t n = s->n_vocab;
    const float *w = s->work;
    float *ex = s->ex;
    uint16_t *bin = s->bin;
    for (uint32_t i = 0; i < n; i++) { // vectorizes: cheaper for all than for some
        ex[i] = exp_neg(w[i] - mx);
        bin[i] = (uint16_t)hist_bin(mx - w[i]);
    }
    const double z = sum_floats(ex, n);
    // Four interleaved histograms, so that neighbours in the same bin do not wait on
    // each other's additions.
    double mass[4][HIST_BINS] = {{0}};
    for (uint32_t b0 = 0; b0 < n; b0 += BLOCK) {
        if (s->bmax[b0 / BLOCK] < thr)
            continue;
        for (uint32_t i = b0, e = block_end(b0, n); i < e; i++)
            if (w[i] >= thr)
                mass[i & 3][bin[i]] += ex[i];
    }
    const double target = (double)top_p * (1.0 - TOP_P_SLACK) * z;
    // bin_b: the first bin at which the cumulative mass reaches the target; every token
    // in the bins before it is in the nucleus, and the nucleus ends inside it. When
    // none does, min-p cuts before top-p would: all of them stay.
    uint32_t bin_b = HIST_BINS - 1;
    double before = 0;
    for (uint32_t b = 0; b < HIST_BINS; b++) {
        const double mb = (mass[0][b] + mass[1][b]) + (mass[2][b] + mass[3][b]);
        if (before + mb >= target) {
            bin_b = b;
            break;
        }
        before += mb;
    }
    // Collect sure members to the front and the crossing bin's tokens to the back.
    // Blocks whose max is below both cuts (one bin of slack for rounding) are skipped;
    // within a block, no branches: about a tenth of a flat distribution is kept, an
    // unpredictable branch. Both slots are written every time; they meet only at the
    // very end, with one flag set.
    float cut = bin_b + 2 < HIST_BINS ? mx - (float)(bin_b + 2) / HIST_PER_NAT : -INFINITY;
    cut = thr > cut ? thr : cut;
    uint32_t n_in = 0, n_edge = 0;
    for (uint32_t b0 = 0; b0 < n; b0 += BLOCK) {
        if (s->bmax[b0 / BLOCK] < cut)
            continue;
        for (uint32_t i = b0, e = block_end(b0, n); i < e; i++) {
            const float l = w[i];
            const uint32_t ok = (l >= thr) & (l != -INFINITY);
            const cand x = {l, (int32_t)i};
            c[n_in] = x;
            c[n - 1 - n_edge] = x;
            n_in += ok & (bin[i] < bin_b);
            n_edge += ok & (bin[i] == bin_b);
        }
    }
    cand *edge = c + n - n_edge;
    qsort(edge, n_edge, sizeof *edge, cmp_better_first);
    // Walk the crossing bin best first while the mass before each token is short of p.
    // Tokens cut by min-p are the tail of this order, so skipping them changes nothing
    // before them. Writing to c[n_in] never passes the entry being read.
    double cum = before;
    for (uint32_t j = 0; j < n_edge; j++) {
        if (n_in > 0 && cum >= target)
            break;
        const cand x = edge[j];
        cum += ex[x.id];
        c[n_in++] = x;
    }
    return n_in;
}

// Steps 0-5 of sampler.h: leaves the survivors' ids in out_id[0..m) and their logits
// in out_p[0..m), returns m, and the largest logit in *max_out (-inf when every logit
// is NaN or -inf; then m = 1 and the token is 0). With every filter off, all tokens
// are listed, -inf ones too (they weigh 0).
static uint32_t filter(sampler *s, const float *logits, float *max_out)
{
    const uint32_t n = s->n_vocab, n_blocks = (n + BLOCK - 1) / BLOCK;
    float *w = s->work;
    cand *c = s->cand;
    int32_t *ids = s->out_id;
    float *lg = s->out_p;

    load_logits(s, logits);
    if (penalties_on(s)) {
        sampler_apply_penalties(s, w);
        for (uint32_t i = 0; i < s->n_distinct; i++) {
            const uint32_t t = (uint32_t)s->distinct[i];
            w[t] = sanitize(w[t]);
        }
        for (uint32_t i = 0; i < s->n_distinct; i++) {
            const uint32_t b0 = (uint32_t)s->distinct[i] / BLOCK * BLOCK;
            s->bmax[b0 / BLOCK] = block_max(w, b0, n);
        }
    }
    float mx = -INFINITY;
    for (uint32_t b = 0; b < n_blocks; b++)
        mx = s->bmax[b] > mx ? s->bmax[b] : mx;
    *max_out = mx;

    if (mx == -INFINITY) {
        ids[0] = 0, lg[0] = -INFINITY;
        return 1;
    }
    if (s->p.temperature == 0.0f) { // the first block holding the max, then its first
        uint32_t b = 0;
        while (s->bmax[b] != mx)
            b++;
        uint32_t i = b * BLOCK;
        while (w[i] != mx)
            i++;
        ids[0] = (int32_t)i, lg[0] = mx;
        return 1;
    }

    const float thr = s->p.min_p > 0 ? mx + logf(s->p.min_p) : -INFINITY;
    const float top_p = s->p.top_p;
    const uint32_t k = (uint32_t)s->p.top_k;
    uint32_t m = 0;
    if (k > 0 && k < n) {
        select_top_k(s, k, c);
        m = k;
        while (c[m - 1].logit == -INFINITY) // fewer than k finite logits
            m--;
        if (top_p < 1.0f) {
            double z = 0;
            for (uint32_t j = 0; j < m; j++)
                z += exp_neg(c[j].logit - mx);
            const double target = (double)top_p * (1.0 - TOP_P_SLACK) * z;
            double cum = exp_neg(c[0].logit - mx);
            uint32_t keep = 1;
            while (keep < m && cum < target)
                cum += exp_neg(c[keep++].logit - mx);
            m = keep;
        }
        while (m > 1 && c[m - 1].logit < thr)
            m--;
    } else if (top_p < 1.0f) {
        m = nucleus_all(s, mx, thr, top_p, c);
    } else if (thr == -INFINITY) { // every token, -inf ones with weight 0: copies that vectorize
        for (uint32_t i = 0; i < n; i++)
            ids[i] = (int32_t)i;
        memcpy(lg, w, n * sizeof *lg);
        return n;
    } else {
        for (uint32_t b0 = 0; b0 < n; b0 += BLOCK) {
            if (s->bmax[b0 / BLOCK] < thr)
                continue;
            for (uint32_t i = b0, e = block_end(b0, n); i < e; i++)
                if (w[i] >= thr)
                    ids[m] = (int32_t)i, lg[m++] = w[i];
        }
        return m;
    }
    for (uint32_t j = 0; j < m; j++)
        ids[j] = c[j].id, lg[j] = c[j].logit;
    return m;
}

// Step 6: out_p[j] = exp((logit_j - max) / temperature), with sums by block in bsum[];
// returns the total (>= 1, since the max always survives).
static double weigh(sampler *s, uint32_t m, float mx)
{
    float *p = s->out_p;
    if (m == 1) {
        p[0] = 1.0f;
        s->bsum[0] = 1.0;
        return 1.0;
    }
    float inv_t = 1.0f / s->p.temperature;
    if (!(inv_t <= FLT_MAX))
        inv_t = FLT_MAX; // a subnormal temperature: 0 * inv_t must stay 0
    for (uint32_t j = 0; j < m; j++)
        p[j] = exp_neg((p[j] - mx) * inv_t);
    double total = 0;
    for (uint32_t b0 = 0; b0 < m; b0 += BLOCK)
        total += s->bsum[b0 / BLOCK] = sum_floats(p + b0, block_end(b0, m) - b0);
    return total;
}

int32_t sampler_sample(sampler *s, const float *logits)
{
    if (!s || !logits) {
        vkphi_fail(VKPHI_ERR_ARG, "sampler_sample: no sampler or no logits");
        return -1;
    }
    float mx;
    const uint32_t m = filter(s, logits, &mx);
    if (m == 1)
        return s->out_id[0];
    const double total = weigh(s, m, mx);
    const double u = rng_uniform(s->rng) * total;
    // Find the block, then the token, where the running sum first exceeds u.
    const uint32_t n_blocks = (m + BLOCK - 1) / BLOCK;
    uint32_t b = 0;
    double cum = 0;
    while (b + 1 < n_blocks && cum + s->bsum[b] <= u)
        cum += s->bsum[b++];
    const float *p = s->out_p;
    const uint32_t e = block_end(b * BLOCK, m);
    for (uint32_t j = b * BLOCK; j < e; j++) {
        cum += p[j];
        if (p[j] > 0 && u < cum)
            return s->out_id[j];
    }
    // Rounding put u past the block's own sum: the last token with weight before it.
    uint32_t j = e;
    while (j > 1 && p[j - 1] == 0)
        j--;
    return s->out_id[j - 1];
}

uint32_t sampler_candidates(sampler *s, const float *logits, const int32_t **ids, const float **probs)
{
    if (!s || !logits) {
        vkphi_fail(VKPHI_ERR_ARG, "sampler_candidates: no sampler or no logits");
        return 0;
    }
    float mx;
    const uint32_t m = filter(s, logits, &mx);
    const double total = weigh(s, m, mx);
    uint32_t kept = 0;
    for (uint32_t j = 0; j < m; j++) {
        const int32_t t = s->out_id[j];
        if (m > 1 && s->work[t] == -INFINITY) // listed by filter() with all filters off
            continue;
        s->out_id[kept] = t;
        s->out_p[kept++] = (float)(s->out_p[j] / total);
    }
    if (ids)
        *ids = s->out_id;
    if (probs)
        *probs = s->out_p;
    return kept;
}
