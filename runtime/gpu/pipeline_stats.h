// SPDX-License-Identifier: MIT
// What a driver's compiler reports of one pipeline it built, through
// VK_KHR_pipeline_executable_properties, under the driver's own names. RADV (ACO)
// gives, among others, "SGPRs", "VGPRs", "Spilled SGPRs", "Spilled VGPRs", "LDS size"
// and "Scratch size" (bytes), "Subgroups per SIMD" (waves in flight), "Instructions",
// "Latency" and "Inverse Throughput" (ACO's estimates, in cycles).
#pragma once
#include <stdint.h>

#define PIPELINE_MAX_STATS 40

typedef struct pipeline_stat {
    char name[64];
    double value; // the driver's integer, unsigned, boolean or float figure
} pipeline_stat;

typedef struct pipeline_stats {
    uint32_t n;
    pipeline_stat stat[PIPELINE_MAX_STATS];
} pipeline_stats;

// The figure named `name`, or -1 when the driver does not report it.
static inline double pipeline_stat_value(const pipeline_stats *s, const char *name) {
    for (uint32_t i = 0; i < s->n; i++) {
        const char *a = s->stat[i].name, *b = name;
        while (*a && *a == *b) a++, b++;
        if (*a == *b) return s->stat[i].value;
    }
    return -1;
}
