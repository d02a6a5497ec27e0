// SPDX-License-Identifier: MIT
// vkphi plan: where a model's weights, KV cache and scratch would go on each
// device (runtime/gpu/memory.h), the contexts that fit, and the decode speed each
// placement allows. With --model-size 14B, the same for every Phi-4 download,
// without a file: "which file fits my card?".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

static void usage(FILE *out) {
    fprintf(out, "usage: vkphi plan -m MODEL [-c N] [--kv f16|q8_0] [--device N|all] [--measure]\n"
                 "       vkphi plan --model-size 14B [--kv f16|q8_0] [--device N|all] [--measure]\n\n"
                 "Says, per device, where each part of a model would go: the weights layer by layer\n"
                 "in device-local memory while its budget lasts, the rest in host-visible system\n"
                 "memory the GPU reads over the bus; the KV cache and scratch in device-local memory\n"
                 "first. Then the largest context that fits with f16 and with q8_0 KV, and the\n"
                 "decode tokens/s each placement allows (every weight is read once per token) at\n"
                 "each heap's bandwidth: measured with the bandwidth kernel under --measure, else\n"
                 "estimated from the heap type. Loads nothing onto the device.\n\n"
                 "  -m, --model FILE     a Phi-4 GGUF file\n"
                 "  --model-size 14B     no file: every Phi-4 (14B) quantization people download, from\n"
                 "                       our own tensor types where we make that mix, else the\n"
                 "                       published file size\n"
                 "  -c, --ctx N          plan this context (default: the one vkphi run would pick)\n"
                 "  --kv f16|q8_0        KV cache type (default f16)\n"
                 "  --ubatch N           most prompt tokens per step, which sizes the scratch (default 512)\n"
                 "  --device N|all       the device to plan for (default: VKPHI_DEVICE or the best one)\n"
                 "  --measure            measure each heap's bandwidth (takes a few seconds per device)\n"
                 "  -h, --help           this text\n");
}

// The Phi-4 files people download (issue 13's table, sizes in GB = 1e9 bytes), and
// the mixes our recipes make, whose sizes we compute from Phi-4's tensor shapes.
// (Where a recipe of ours also makes a mix the table gives a size for, the plan and
// the GB column use our per-tensor types: IQ4_XS 8.26 GB without an importance
// matrix, where the published file, made with one, is 7.94.)
static const struct download {
    const char *name;
    double gb;
} downloads[] = {
    {"F16", 0},      {"Q8_0", 0},      {"Q6_K", 0},       {"Q5_K_M", 0},    {"Q5_K_S", 0},
    {"Q5_0", 10.2},  {"Q4_1", 9.27},   {"Q4_K_M", 0},     {"IQ4_NL", 8.38}, {"Q4_K_S", 0},
    {"Q4_0", 0},     {"IQ4_XS", 7.94}, {"Q3_K_L", 0},     {"Q3_K_M", 0},    {"IQ3_M", 6.91},
    {"Q3_K_S", 0},   {"IQ3_XS", 6.25}, {"Q2_K_L", 6.05},  {"Q2_K", 5.55},   {"IQ2_M", 5.11},
    {"IQ2_S", 4.73}, {"IQ2_XS", 4.49}, {"IQ2_XXS", 4.07}, {"IQ1_M", 3.6},   {"IQ1_S", 3.32},
};

struct opts {
    const char *model, *size;
    uint32_t n_ctx, n_ubatch;
    bool ctx_given, q8, measure, all;
    int device;
};

// The bandwidth of each place: measured, or estimated from the device type.
static void place_gbps(const device_info *info, const struct opts *o, double gbps[MEM_N_PLACES],
                       bool measured[MEM_N_PLACES]) {
    for (int p = 0; p < MEM_N_PLACES; p++) {
        gbps[p] = memory_estimate_gbps(info, (enum mem_place)p);
        measured[p] = false;
    }
    if (!o->measure) return;
    device *d;
    if (device_create((int)info->index, &d) != VKPHI_OK) {
        fprintf(stderr, "vkphi: warning: cannot open %s to measure: %s\n", info->name, vkphi_last_error());
        return;
    }
    for (int p = 0; p < MEM_N_PLACES; p++) {
        bandwidth_result r;
        int heap[MEM_N_PLACES];
        memory_pick_heaps(info, heap);
        if (heap[p] < 0) continue; // nothing goes there: the estimate is never used
        if (bandwidth_measure_place(d, (enum mem_place)p, &r) == VKPHI_OK) {
            gbps[p] = r.median_gb_per_s;
            measured[p] = true;
        } else {
            fprintf(stderr, "vkphi: warning: %s memory of %s not measured (%s): estimated instead\n",
                    memory_place_name((enum mem_place)p), info->name, vkphi_last_error());
        }
    }
    device_destroy(d);
}

static void print_heaps(const device_info *info) {
    printf("device %u: %s (%s)\n", info->index, info->name, device_type_name(info->type));
    mem_model none = {0};
    mem_plan p;
    memory_plan(info, &none, 0, false, &p);
    for (int i = 0; i < MEM_N_PLACES; i++) {
        char a[24], b[24];
        if (p.heap[i] < 0) {
            printf("  %-6s heap: none%s\n", memory_place_name((enum mem_place)i),
                   i == MEM_HOST ? " (every buffer must fit the device-local heap)" : "");
            continue;
        }
        const device_heap *h = &info->heaps[p.heap[i]];
        printf("  %-6s heap %d: %s, %s usable (free budget less a margin)%s\n", memory_place_name((enum mem_place)i),
               p.heap[i], memory_size_str(h->size, a), memory_size_str(p.avail[i], b),
               info->heaps_simulated ? ", simulated by VKPHI_HEAPS" : "");
    }
}

static void print_speed(const double gbps[MEM_N_PLACES], const bool measured[MEM_N_PLACES], const mem_plan *p) {
    char host[48] = "";
    if (p->heap[MEM_HOST] >= 0) snprintf(host, sizeof host, ", host %.1f GB/s", gbps[MEM_HOST]);
    printf("  decode: at most %.1f tokens/s (every weight read once per token; device %.1f GB/s%s, %s)\n",
           memory_decode_tps(p, gbps), gbps[MEM_DEVICE], host,
           measured[MEM_DEVICE] && (measured[MEM_HOST] || p->heap[MEM_HOST] < 0) ? "measured"
           : measured[MEM_DEVICE] || measured[MEM_HOST] ? "partly measured, partly estimated from the heap type"
                                                        : "estimated from the heap type");
}

// One device, one model file.
static int plan_file(const device_info *info, const struct opts *o, const mem_model *mm, const char *label) {
    print_heaps(info);
    const char *why = "";
    uint32_t ctx = o->ctx_given && o->n_ctx ? o->n_ctx : memory_default_context(info, mm, o->q8, &why);
    uint32_t f16 = memory_max_context(info, mm, false, false), q8 = memory_max_context(info, mm, true, false);
    uint32_t f16_dev = memory_max_context(info, mm, false, true), q8_dev = memory_max_context(info, mm, true, true);
    printf("  model: %s\n", label);
    printf("  largest context: %u tokens with f16 KV, %u with q8_0 (every weight in device-local memory: %u and %u; "
           "trained %u)\n",
           f16, q8, f16_dev, q8_dev, mm->n_ctx_train);
    if (!ctx) {
        printf("  does not fit: even one token of context needs more memory than the device has; use a smaller "
               "quantization\n");
        return 0;
    }
    if (o->ctx_given && o->n_ctx)
        printf("  context: %u tokens (-c)\n", ctx);
    else
        printf("  context: %u tokens (%s)\n", ctx, why);
    mem_plan p;
    memory_plan(info, mm, ctx, o->q8, &p);
    if (!p.fits) {
        char a[24], b[24];
        printf("  does not fit at %u tokens: needs %s, %s usable%s%s\n", ctx, memory_size_str(p.need, a),
               memory_size_str(p.have, b), p.why[0] ? "; " : "", p.why);
        return 0;
    }
    for (int i = 0; i < MEM_N_PLACES; i++) {
        if (p.heap[i] < 0) continue;
        char layers[64], t[24], av[24], w[24], k[24], s[24];
        memory_plan_layers(&p, (enum mem_place)i, layers, sizeof layers);
        uint32_t kv_layers = i == MEM_DEVICE ? p.kv_layers_device : p.n_layer - p.kv_layers_device;
        printf("  %-6s %s of %s: weights %s (%s), KV cache %s (%u layer%s, %s), scratch %s\n",
               memory_place_name((enum mem_place)i), memory_size_str(p.weights[i] + p.kv[i] + p.scratch[i], t),
               memory_size_str(p.avail[i], av), memory_size_str(p.weights[i], w), layers, memory_size_str(p.kv[i], k),
               kv_layers, kv_layers == 1 ? "" : "s", p.kv_q8 ? "q8_0" : "f16", memory_size_str(p.scratch[i], s));
    }
    double gbps[MEM_N_PLACES];
    bool measured[MEM_N_PLACES];
    place_gbps(info, o, gbps, measured);
    print_speed(gbps, measured, &p);
    // The other placements: each largest context pushes the most weights out.
    mem_plan pf, pq;
    memory_plan(info, mm, f16 ? f16 : 1, false, &pf);
    memory_plan(info, mm, q8 ? q8 : 1, true, &pq);
    char lf[64], lq[64];
    memory_plan_layers(&pf, MEM_HOST, lf, sizeof lf);
    memory_plan_layers(&pq, MEM_HOST, lq, sizeof lq);
    if (f16 && q8)
        printf("  at the largest contexts: %u tokens f16 %.1f tokens/s (host: %s), %u tokens q8_0 %.1f tokens/s (host: "
               "%s)\n",
               f16, memory_decode_tps(&pf, gbps), lf, q8, memory_decode_tps(&pq, gbps), lq);
    return 0;
}

// One device, every Phi-4 download.
static int plan_sizes(const device_info *info, const struct opts *o) {
    const mkmodel_preset *pre = mkmodel_find_preset("phi-4");
    print_heaps(info);
    double gbps[MEM_N_PLACES];
    bool measured[MEM_N_PLACES];
    place_gbps(info, o, gbps, measured);
    printf("  Phi-4 (14B) files, %s KV cache, at the context vkphi run would pick (bandwidth device %.1f GB/s, host "
           "%.1f GB/s, %s):\n",
           o->q8 ? "q8_0" : "f16", gbps[MEM_DEVICE], gbps[MEM_HOST],
           measured[MEM_DEVICE] || measured[MEM_HOST] ? "measured" : "estimated from the heap type");
    printf("  %-8s %6s  %-9s %7s  %-58s %8s  %s\n", "file", "GB", "size", "context", "placement", "tokens/s",
           "largest context f16 / q8_0");
    for (size_t i = 0; i < sizeof downloads / sizeof downloads[0]; i++) {
        const struct download *d = &downloads[i];
        mem_model mm;
        if (mkmodel_memory_needs(pre, d->name, d->gb * 1e9, 1, o->n_ubatch, &mm))
            return args_fail("%s", vkphi_last_error());
        // The file: computed for the mixes we make (the token embedding included), else published.
        double gb = d->gb && !quant_recipe_known(d->name) ? d->gb : mkmodel_data_bytes(pre, d->name) / 1e9;
        const char *why;
        uint32_t ctx = o->ctx_given && o->n_ctx ? o->n_ctx : memory_default_context(info, &mm, o->q8, &why);
        uint32_t f16 = memory_max_context(info, &mm, false, false), q8 = memory_max_context(info, &mm, true, false);
        mem_plan p;
        memory_plan(info, &mm, ctx ? ctx : 1, o->q8, &p);
        char where[160], dl[64], hl[64], tps[16] = "-";
        if (!ctx || !p.fits) {
            snprintf(where, sizeof where, "does not fit");
        } else if (p.layers_device == p.n_layer && p.head_device) {
            snprintf(where, sizeof where, "all in device-local memory");
        } else {
            memory_plan_layers(&p, MEM_DEVICE, dl, sizeof dl);
            memory_plan_layers(&p, MEM_HOST, hl, sizeof hl);
            snprintf(where, sizeof where, "device: %s; host: %s", dl, hl);
        }
        if (ctx && p.fits) snprintf(tps, sizeof tps, "%.1f", memory_decode_tps(&p, gbps));
        char sz[24], cx[16] = "-";
        if (ctx && p.fits) snprintf(cx, sizeof cx, "%u", ctx);
        printf("  %-8s %6.2f  %-9s %7s  %-58s %8s  %u / %u\n", d->name, gb,
               memory_size_str(p.weights[0] + p.weights[1], sz), cx, where, tps, f16, q8);
        free((void *)mm.layer_bytes);
    }
    printf("  (GB: the file, computed from Phi-4's tensor shapes and our recipes' types, or the published file's size\n"
           "  for the mixes vkphi quantize does not make, spread over the matrices by their sizes; size: the weights\n"
           "  on the GPU, the token embedding staying on the host)\n");
    return 0;
}

int cmd_plan(int argc, char **argv) {
    struct opts o = {.n_ubatch = 512, .device = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!v) return args_fail("option '%s' needs a GGUF file", a);
            o.model = argv[++i];
        } else if (!strcmp(a, "--model-size")) {
            if (!v) return args_fail("option '%s' needs a size (14B)", a);
            o.size = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!args_parse_long(v, 0, 1 << 24, &n)) return args_fail("option '%s' wants a number of tokens", a);
            o.n_ctx = (uint32_t)n, o.ctx_given = true, i++;
        } else if (!strcmp(a, "--ubatch")) {
            if (!args_parse_long(v, 1, 1 << 16, &n))
                return args_fail("option '%s' wants a number of tokens from 1 to 65536", a);
            o.n_ubatch = (uint32_t)n, i++;
        } else if (!strcmp(a, "--kv")) {
            if (!v || (strcmp(v, "f16") && strcmp(v, "q8_0"))) return args_fail("option '%s' wants f16 or q8_0", a);
            o.q8 = !strcmp(argv[++i], "q8_0");
        } else if (!strcmp(a, "--device")) {
            if (v && !strcmp(v, "all"))
                o.all = true;
            else if (args_parse_long(v, 0, 1000, &n))
                o.device = (int)n;
            else
                return args_fail("option '%s' wants a device number (see vkphi devices) or all", a);
            i++;
        } else if (!strcmp(a, "--measure")) {
            o.measure = true;
        } else {
            return args_fail("unknown option '%s' for plan (see vkphi plan --help)", a);
        }
    }
    if (!o.model == !o.size)
        return args_fail("plan wants a model: -m FILE or --model-size 14B (see vkphi plan --help)");
    if (o.size && strcmp(o.size, "14B") && strcmp(o.size, "14b"))
        return args_fail("--model-size knows 14B (Phi-4), not '%s'", o.size);

    mem_model mm = {0};
    char label[512] = "";
    if (o.model) {
        gguf_file *f = gguf_open(o.model);
        if (!f) return args_fail("%s", vkphi_last_error());
        model_config c;
        int rc = model_config_read(f, &c);
        if (!rc) rc = model_memory_needs(f, &c, 1, o.n_ubatch, &mm);
        gguf_close(f);
        if (rc) return args_fail("%s", vkphi_last_error());
        if (o.ctx_given && o.n_ctx > c.n_ctx_train)
            return args_fail("a context of %u tokens is more than %s was trained for (%u)", o.n_ctx, o.model,
                             c.n_ctx_train);
        if (o.q8 && mm.kv_dim % 32)
            return args_fail("--kv q8_0 needs KV rows of a multiple of 32 values; %s has %u", o.model, mm.kv_dim);
        uint64_t w = mm.head_bytes;
        for (uint32_t l = 0; l < mm.n_layer; l++)
            w += mm.layer_bytes[l];
        char sz[24];
        snprintf(label, sizeof label, "%s: %s of weights on the GPU in %u layers and the head, trained context %u",
                 o.model, memory_size_str(w, sz), mm.n_layer, mm.n_ctx_train);
    }

    device_info *infos;
    uint32_t n;
    if (device_list(&infos, &n) != VKPHI_OK) {
        free((void *)mm.layer_bytes);
        return args_fail("%s", vkphi_last_error());
    }
    int pick = o.device;
    const char *env = getenv("VKPHI_DEVICE");
    if (pick < 0 && !o.all && env && *env) pick = atoi(env);
    if (pick < 0 && !o.all) { // as device_create picks: the discrete GPU with the most device-local memory, ...
        device *d;
        if (device_create(-1, &d) == VKPHI_OK) {
            pick = (int)device_get_info(d)->index;
            device_destroy(d);
        } else {
            pick = 0;
        }
    }
    int rc = 0;
    if (n == 0)
        rc = args_fail("no Vulkan device found");
    else if (!o.all && pick >= (int)n)
        rc = args_fail("device %d does not exist: there %s %u Vulkan device%s (see vkphi devices)", pick,
                       n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
    for (uint32_t i = 0; !rc && i < n; i++) {
        if (!o.all && (int)i != pick) continue;
        rc = o.model ? plan_file(&infos[i], &o, &mm, label) : plan_sizes(&infos[i], &o);
        if (o.all && i + 1 < n) printf("\n");
    }
    free(infos);
    free((void *)mm.layer_bytes);
    return rc;
}
