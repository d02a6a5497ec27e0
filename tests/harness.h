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

// Deterministic random numbers for test inputs.
void test_seed(uint64_t seed);
uint32_t test_rand_u32(void);
float test_rand_uniform(float lo, float hi);
float test_rand_normal(void);

// Largest |a[i]-b[i]| / (atol + rtol*|b[i]|) over n values: <= 1 passes.
double test_max_rel_err(const float *a, const float *b, size_t n, double atol, double rtol);

// ---- GPU tests ----
#include "buffer.h"
#include "commands.h"
#include "device.h"
#include "kernels.h"

typedef struct test_gpu {
    device *dev;
    kernels *k;
    cmd_ctx *cmd;
} test_gpu;

// True when there is a Vulkan device (VKPHI_LIMITS applied); tests that need one
// skip otherwise.
bool test_vulkan_available(void);
// Opens the default device (lavapipe in CI) with the validation layer as the
// environment asks; false (and a message) when there is no Vulkan device.
bool test_gpu_open(test_gpu *g);
// Checks that the validation layer reported nothing, then frees everything.
void test_gpu_close(test_gpu *g);
// A device buffer holding a copy of n floats (or bytes, for the _bytes form).
gpu_buffer test_upload(test_gpu *g, const void *data, uint64_t bytes);
void test_download(test_gpu *g, const gpu_buffer *b, void *out, uint64_t bytes);

// Mean over rows of KL(softmax(ref row) || softmax(ours row)), rows of n logits;
// *top1 (may be NULL) gets the fraction of rows whose argmax agrees.
double test_mean_kl(const float *ref, const float *ours, uint32_t rows, uint32_t n, double *top1);
