// SPDX-License-Identifier: MIT
// What model_load (model.h) is asked for. A header of its own so that the struct
// model in model_internal.h can hold a copy without including model.h, whose
// implementation (model.c) includes model_internal.h.
#pragma once
#include <stdbool.h>
#include <stdint.h>

enum kv_type { KV_F16, KV_Q8_0 };

typedef struct model_params {
    int device;            // -1: VKPHI_DEVICE or the best device
    uint32_t n_ctx;        // tokens per sequence; 0: the trained context if it fits, else the most that fits
    uint32_t n_seq;        // sequences (server slots), each with n_ctx tokens of KV cache; 0 means 1
    uint32_t n_ubatch;     // most tokens per forward step (prefill); 0: 512
    enum kv_type kv;
    bool quiet;            // do not log the memory plan (it goes to vkphi_log at INFO level)
    // Called while the weights upload, with the fraction done (0..1); may be NULL.
    void (*on_progress)(double fraction, void *user);
    void *progress_user;
} model_params;
