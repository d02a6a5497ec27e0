// SPDX-License-Identifier: MIT
// Compiling without running (`vkphi kernels`): every pipeline the runtime would
// create on a device, for one model or for every weight type, with the
// specialization constants, workgroup and subgroup sizes it picks there; each
// timed, and with the compiler's figures where the driver reports them
// (pipeline_stats.h). No buffer is allocated and nothing is submitted, so it runs on
// devices that cannot execute (RADV's null devices, device_info.compile_only).
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "gguf.h"
#include "pipeline_stats.h"

// Which kernels: those a model's forward pass runs (its matrices' weight types,
// its KV cache's type, its head dimension), or with `all` every kernel the device
// can run: every weight type and family, both KV cache types.
typedef struct kernel_report_request {
    bool all;
    bool types[GGML_TYPE_COUNT]; // model_matrix_types
    bool kv_q8;
    uint32_t head_dim;
} kernel_report_request;

typedef struct kernel_report_entry {
    char kernel[48];   // the shader's name, "matvec_q4_k"
    char variant[24];  // "" or "4 tokens" (matrix-vector), "16-token tile" (narrow tiles)
    uint32_t local_size, subgroup_size; // subgroup_size: required, 0 for the driver's choice
    uint32_t shared_bytes;              // shared memory the kernel declares at these constants
    uint32_t n_spec, spec[8];
    double compile_ms;
    int rc;           // VKPHI_OK, or the failure (then error says why)
    char error[256];
    pipeline_stats stats; // n 0 where the driver reports none
} kernel_report_entry;

// One path of the device policy (kernels/policy.c) on a device: its name, its
// setting ("on", "off", "32", "driver's") and the rule or variable that chose it.
typedef struct kernel_path_choice {
    const char *path;
    char value[16];
    const char *why;
} kernel_path_choice;
#define KERNEL_POLICY_PATHS 5
// The device policy for a device as the environment now sets it; returns the count.
uint32_t kernel_report_policy(const device_info *info, kernel_path_choice out[KERNEL_POLICY_PATHS]);

typedef struct kernel_report {
    device_info device;
    bool coopmat, f16math;   // the kernel policy on this device: the paths it takes
    kernel_path_choice policy[KERNEL_POLICY_PATHS];
    uint32_t n;
    kernel_report_entry *entry;
    uint32_t validation_messages; // of the validation layer (VKPHI_VALIDATE=1) while compiling
    double total_ms;
} kernel_report;

// Creates device `device_index` (-1: the usual choice, device_create) for
// compiling only, compiles every pipeline of the request one after another and
// fills r. A pipeline that fails is recorded in its entry; the call fails only
// when the device does. Free with kernel_report_free.
int kernel_report_make(int device_index, const kernel_report_request *rq, kernel_report *r);
void kernel_report_free(kernel_report *r);
