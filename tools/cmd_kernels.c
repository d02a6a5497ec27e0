// SPDX-License-Identifier: MIT
// vkphi kernels: compiles every pipeline the runtime would use on a device, for a
// model or for every weight type, and prints each one's compile time and the
// compiler's figures (registers, spills, shared memory, waves). Compile-only:
// it runs on devices that cannot execute, like RADV's null devices.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi kernels [-m MODEL | --all] [--device N] [--kv f16|q8_0] [--stats] [--json]\n\n"
               "Compiles every compute pipeline vkphi would create on the device, with the\n"
               "specialization constants, workgroup and subgroup sizes it picks there, and\n"
               "prints each one's compile time (no pipeline cache). Nothing is allocated and\n"
               "nothing runs, so it works on devices that only compile (RADV_FORCE_FAMILY).\n\n"
               "  -m MODEL       the kernels this model's forward pass runs (its weight types,\n"
               "                 its head dimension, the KV cache type of --kv)\n"
               "  --all          every kernel the device can run, every weight type (the default)\n"
               "  --device N     the device (vkphi devices); default as for the other commands\n"
               "  --stats        the compiler's figures, where the driver reports them\n"
               "                 (VK_KHR_pipeline_executable_properties): VGPRs, SGPRs, spills,\n"
               "                 LDS, scratch, waves per SIMD on AMD\n"
               "  --json         one JSON object on stdout, every figure the driver gives\n\n"
               "Exits 1 when a pipeline fails to compile, or, with VKPHI_VALIDATE=1, when the\n"
               "validation layer reports anything.\n");
}

// The figures of the text table, by RADV's names; other drivers' appear with --json.
static const struct { const char *name, *head; } columns[] = {
    {"VGPRs", "VGPRs"}, {"SGPRs", "SGPRs"}, {"Spilled VGPRs", "spillV"}, {"Spilled SGPRs", "spillS"},
    {"LDS size", "LDS"}, {"Scratch size", "scratch"}, {"Subgroups per SIMD", "waves"}, {"Instructions", "instrs"},
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static void print_text(const kernel_report *r, bool stats) {
    const device_info *d = &r->device;
    printf("device %u: %s, %s %s%s\n", d->index, d->name, d->driver_name, d->driver_info,
           d->compile_only ? " (compiles only)" : "");
    printf("subgroup %u (%u-%u), shared memory %u bytes\n", d->subgroup_size, d->subgroup_min, d->subgroup_max,
           d->max_shared_memory);
    for (int i = 0; i < KERNEL_POLICY_PATHS; i++)
        printf("  %-21s %-4s %s\n", r->policy[i].path, r->policy[i].value, r->policy[i].why);
    printf("%-26s %-14s %5s %3s %6s %9s", "kernel", "variant", "wg", "sg", "shared", "compile");
    if (stats)
        for (size_t c = 0; c < N_COLUMNS; c++) printf(" %7s", columns[c].head);
    printf("\n");
    for (uint32_t i = 0; i < r->n; i++) {
        const kernel_report_entry *e = &r->entry[i];
        if (e->rc) {
            printf("%-26s %-14s FAILED: %s\n", e->kernel, e->variant, e->error);
            continue;
        }
        char sg[12] = "-";
        if (e->subgroup_size) snprintf(sg, sizeof sg, "%u", e->subgroup_size);
        printf("%-26s %-14s %5u %3s %6u %6.1f ms", e->kernel, e->variant, e->local_size, sg, e->shared_bytes,
               e->compile_ms);
        if (stats)
            for (size_t c = 0; c < N_COLUMNS; c++) {
                double v = pipeline_stat_value(&e->stats, columns[c].name);
                if (v < 0) printf(" %7s", "-");
                else printf(" %7.0f", v);
            }
        printf("\n");
    }
    if (stats && !d->pipeline_stats) printf("(the driver reports no compiler statistics)\n");
    printf("%u pipelines in %.0f ms\n", r->n, r->total_ms);
}

static void print_json(const kernel_report *r, bool stats) {
    const device_info *d = &r->device;
    printf("{\"device\": ");
    args_json_str(stdout, d->name);
    printf(", \"driver\": ");
    args_json_str(stdout, d->driver_name);
    printf(", \"driver_info\": ");
    args_json_str(stdout, d->driver_info);
    printf(", \"vendor_id\": %u, \"device_id\": %u, \"compile_only\": %s, \"subgroup_size\": %u, "
           "\"subgroup_min\": %u, \"subgroup_max\": %u, \"shared_memory\": %u, \"coopmat\": %s, \"f16math\": %s, "
           "\"validation_messages\": %u, \"total_ms\": %.1f,\n",
           d->vendor_id, d->device_id, d->compile_only ? "true" : "false", d->subgroup_size, d->subgroup_min,
           d->subgroup_max, d->max_shared_memory, r->coopmat ? "true" : "false", r->f16math ? "true" : "false",
           r->validation_messages, r->total_ms);
    printf(" \"policy\": {");
    for (int i = 0; i < KERNEL_POLICY_PATHS; i++) {
        printf("%s", i ? ", " : "");
        args_json_str(stdout, r->policy[i].path);
        printf(": {\"value\": ");
        args_json_str(stdout, r->policy[i].value);
        printf(", \"why\": ");
        args_json_str(stdout, r->policy[i].why);
        printf("}");
    }
    printf("},\n \"kernels\": [");
    for (uint32_t i = 0; i < r->n; i++) {
        const kernel_report_entry *e = &r->entry[i];
        printf("%s\n  {\"kernel\": ", i ? "," : "");
        args_json_str(stdout, e->kernel);
        printf(", \"variant\": ");
        args_json_str(stdout, e->variant);
        printf(", \"ok\": %s", e->rc ? "false" : "true");
        if (e->rc) {
            printf(", \"error\": ");
            args_json_str(stdout, e->error);
            printf("}");
            continue;
        }
        printf(", \"workgroup\": %u, \"subgroup\": %u, \"shared_bytes\": %u, \"spec\": [", e->local_size,
               e->subgroup_size, e->shared_bytes);
        for (uint32_t s = 0; s < e->n_spec; s++) printf("%s%u", s ? ", " : "", e->spec[s]);
        printf("], \"compile_ms\": %.2f", e->compile_ms);
        if (stats) {
            printf(", \"stats\": {");
            for (uint32_t s = 0; s < e->stats.n; s++) {
                printf("%s", s ? ", " : "");
                args_json_str(stdout, e->stats.stat[s].name);
                printf(": %.17g", e->stats.stat[s].value);
            }
            printf("}");
        }
        printf("}");
    }
    printf("\n]}\n");
}

int cmd_kernels(int argc, char **argv) {
    // The times are of real compiles: Mesa's own shader cache (and NVIDIA's) would
    // answer a second run from disk. Set the variables to choose otherwise.
    setenv("MESA_SHADER_CACHE_DISABLE", "true", 0);
    setenv("__GL_SHADER_DISK_CACHE", "0", 0);
    cli_args a;
    args_init(&a, 0);
    bool all = false, stats = false, json = false;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            args_free(&a);
            return 0;
        } else if (!strcmp(argv[i], "--all")) {
            all = true;
        } else if (!strcmp(argv[i], "--stats")) {
            stats = true;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else {
            int k = args_parse(&a, ARGS_MODEL, argc, argv, &i);
            if (k < 0) rc = 1;
            else if (k == 0) rc = args_fail("unknown option '%s' for kernels (see vkphi kernels --help)", argv[i]);
        }
    }
    if (!rc && all && a.model) rc = args_fail("-m and --all exclude each other");
    kernel_report_request rq = {.all = !a.model, .kv_q8 = a.mp.kv == KV_Q8_0};
    if (!rc && a.model) {
        gguf_file *f = gguf_open(a.model);
        model_config cfg;
        if (!f || model_config_read(f, &cfg) != VKPHI_OK) {
            rc = args_fail("%s", vkphi_last_error());
        } else {
            rq.head_dim = cfg.head_dim;
            model_matrix_types(f, rq.types);
        }
        gguf_close(f);
    }
    kernel_report r;
    if (!rc && kernel_report_make(a.mp.device, &rq, &r) != VKPHI_OK) rc = args_fail("%s", vkphi_last_error());
    args_free(&a);
    if (rc) return rc;
    if (json) print_json(&r, stats);
    else print_text(&r, stats);
    uint32_t failed = 0;
    for (uint32_t i = 0; i < r.n; i++) failed += r.entry[i].rc != VKPHI_OK;
    if (failed) fprintf(stderr, "vkphi: error: %u of %u pipelines failed to compile\n", failed, r.n);
    if (r.validation_messages)
        fprintf(stderr, "vkphi: error: the validation layer reported %u messages\n", r.validation_messages);
    rc = failed || r.validation_messages ? 1 : 0;
    kernel_report_free(&r);
    return rc;
}
