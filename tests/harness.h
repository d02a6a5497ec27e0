// SPDX-License-Identifier: MIT
// A tiny test harness: CHECK records a failure and goes on; the test's main
// returns test_finish(), which prints "N passed, M failed" and the exit code.
#pragma once
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int test_passed, test_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            test_passed++;                                                                 \
        } else {                                                                           \
            test_failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

// Ends the test: prints the tally; returns 1 when a check failed, 77 (skipped: ctest
// shows "Not Run") when nothing was checked because ../shared is absent, else 0.
int test_finish(void);
// Messages of the Vulkan validation layer in this process (test_finish fails the
// test on any); 0 in the tests without Vulkan, which do not link harness_gpu.c.
uint32_t test_validation_messages(void);
// Ends the test as skipped (ctest shows "Not Run"), with the reason.
int test_skip(const char *why);

// Directory of ../shared (VKPHI_SHARED_DIR: the reference models) for `what`, the part
// of the test that needs it. When it is absent: NULL, and the part is skipped (a
// "skipped: WHAT: ../shared is absent" line; the test still passes if the rest does,
// see test_finish) or, when VKPHI_REQUIRE_SHARED is set (CI has ../shared), failed.
// tests/lib.sh's have_shared is the same for the shell tests.
const char *test_shared_dir(const char *what);
// Directory of tests/data.
const char *test_data_dir(void);
// Phi-4's tokenizer GGUF, the one the runtime embeds (runtime/convert/phi4-tokenizer.gguf).
const char *test_tokenizer_path(void);

// Deterministic random numbers for test inputs.
void test_seed(uint64_t seed);
uint32_t test_rand_u32(void);
float test_rand_uniform(float lo, float hi);
float test_rand_normal(void);

// Largest |a[i]-b[i]| / (atol + rtol*|b[i]|) over n values: <= 1 passes.
double test_max_rel_err(const float *a, const float *b, size_t n, double atol, double rtol);

// Mean over rows of KL(softmax(ref row) || softmax(ours row)), rows of n logits;
// *top1 (may be NULL) gets the fraction of rows whose argmax agrees.
double test_mean_kl(const float *ref, const float *ours, uint32_t rows, uint32_t n, double *top1);
