// SPDX-License-Identifier: MIT
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int test_passed, test_failed;
static int shared_skipped; // parts skipped for lack of ../shared

// Messages of the Vulkan validation layer in this process: harness_gpu.c's, in the
// tests that link it; none in the tests without Vulkan.
__attribute__((weak)) uint32_t test_validation_messages(void) { return 0; }

int test_finish(void) {
    if (test_validation_messages() > 0) {
        test_failed++;
        fprintf(stderr, "FAIL: the Vulkan validation layer reported %u messages\n", test_validation_messages());
    }
    if (shared_skipped) {
        printf("%d passed, %d failed, %d skipped (../shared is absent)\n", test_passed, test_failed, shared_skipped);
    } else {
        printf("%d passed, %d failed\n", test_passed, test_failed);
    }
    if (test_failed) return 1;
    return shared_skipped && !test_passed ? 77 : 0;
}

int test_skip(const char *why) {
    printf("skipped: %s\n", why);
    return 77;
}

const char *test_shared_dir(const char *what) {
    const char *d = getenv("VKPHI_SHARED_DIR"), *require = getenv("VKPHI_REQUIRE_SHARED");
    struct stat st;
    if (d && stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return d;
    if (require && *require && strcmp(require, "0") != 0) {
        test_failed++;
        fprintf(stderr, "FAIL %s: ../shared (VKPHI_SHARED_DIR=%s) is missing and VKPHI_REQUIRE_SHARED=%s\n", what,
                d ? d : "", require);
    } else {
        shared_skipped++;
        printf("skipped: %s: ../shared is absent (VKPHI_SHARED_DIR=%s)\n", what, d ? d : "");
    }
    return NULL;
}

const char *test_data_dir(void) {
    const char *d = getenv("VKPHI_TEST_DATA");
    return d ? d : "tests/data";
}

const char *test_tokenizer_path(void) {
    const char *p = getenv("VKPHI_TOKENIZER_GGUF");
    return p ? p : "runtime/convert/phi4-tokenizer.gguf";
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void test_seed(uint64_t seed) { rng_state = seed * 0x9e3779b97f4a7c15ull + 1; }

uint32_t test_rand_u32(void) { // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

float test_rand_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((test_rand_u32() >> 8) * (1.0 / 16777216.0));
}

float test_rand_normal(void) {
    double u1 = ((test_rand_u32() >> 8) + 0.5) / 16777216.0;
    double u2 = ((test_rand_u32() >> 8) + 0.5) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

double test_max_rel_err(const float *a, const float *b, size_t n, double atol, double rtol) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) worst = e; // NaN propagates as worst
        if (isnan(e)) return INFINITY;
    }
    return worst;
}

double test_mean_kl(const float *ref, const float *ours, uint32_t rows, uint32_t n, double *top1) {
    double sum = 0;
    uint32_t agree = 0;
    for (uint32_t r = 0; r < rows; r++) {
        const float *a = ref + (size_t)r * n, *b = ours + (size_t)r * n;
        double ma = -INFINITY, mb = -INFINITY, za = 0, zb = 0, k = 0;
        uint32_t ia = 0, ib = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (a[i] > ma) ma = a[i], ia = i;
            if (b[i] > mb) mb = b[i], ib = i;
        }
        for (uint32_t i = 0; i < n; i++) za += exp(a[i] - ma), zb += exp(b[i] - mb);
        for (uint32_t i = 0; i < n; i++) {
            double la = a[i] - ma - log(za), lb = b[i] - mb - log(zb);
            k += exp(la) * (la - lb);
        }
        sum += k;
        agree += ia == ib;
    }
    if (top1) *top1 = rows ? (double)agree / rows : 1.0;
    return rows ? sum / rows : 0.0;
}
