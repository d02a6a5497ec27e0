// SPDX-License-Identifier: MIT
#include "kernel_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "env.h"
#include "kernels.h"
#include "pipeline.h"
#include "select.h"

// Compiles one pipeline through `get` (the way the runtime asks for it) and records
// it; a pipeline already in the report (a narrow tile that is no narrower) is skipped.
static void compile_one(kernels *k, kernel_report *r, enum kernel_id id, uint32_t tokens, const char *variant) {
    device *d = kernels_device(k);
    const enum kernel_family f = kernel_family_of(id);
    const double t0 = vkphi_now();
    const pipeline *p = f == FAMILY_MATVEC ? kernels_get_vec(k, id, tokens)
                        : tokens ? kernels_get_matmul(k, id, tokens) : kernels_get(k, id);
    const double ms = 1e3 * (vkphi_now() - t0);
    for (uint32_t i = 0; p && i < r->n; i++)
        if (r->entry[i].rc == VKPHI_OK && r->entry[i].local_size == p->local_size &&
            !strcmp(r->entry[i].kernel, p->name) && !memcmp(r->entry[i].spec, p->spec, sizeof p->spec))
            return;
    kernel_report_entry *e = &r->entry[r->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->variant, sizeof e->variant, "%s", variant);
    e->compile_ms = ms;
    if (!p) {
        e->rc = VKPHI_ERR_VULKAN;
        snprintf(e->kernel, sizeof e->kernel, "kernel %d", (int)id);
        snprintf(e->error, sizeof e->error, "%s", vkphi_last_error());
        return;
    }
    snprintf(e->kernel, sizeof e->kernel, "%s", p->name);
    e->local_size = p->local_size;
    e->n_spec = PIPELINE_MAX_SPEC;
    while (e->n_spec && !p->spec[e->n_spec - 1]) e->n_spec--;
    memcpy(e->spec, p->spec, sizeof e->spec);
    e->subgroup_size = p->subgroup_size;
    e->shared_bytes = p->shared_bytes;
    if (pipeline_get_stats(d, p, &e->stats) != VKPHI_OK) {
        e->rc = VKPHI_ERR_VULKAN;
        snprintf(e->error, sizeof e->error, "%s", vkphi_last_error());
    }
}

// Every variant of a kernel the runtime may create: the matrix-vector kernels at
// each token count, the tiles narrowed for 16 and 32 tokens, the others once.
static void compile_variants(kernels *k, kernel_report *r, enum kernel_id id) {
    char v[24];
    switch (kernel_family_of(id)) {
    case FAMILY_MATVEC:
        for (uint32_t t = 1; t <= kernels_few_tokens(k); t++) {
            snprintf(v, sizeof v, t == 1 ? "%u token" : "%u tokens", t);
            compile_one(k, r, id, t, v);
        }
        break;
    case FAMILY_MATMUL:
    case FAMILY_MATMUL_H:
        compile_one(k, r, id, 0, "");
        compile_one(k, r, id, 32, "32-token tile");
        compile_one(k, r, id, 16, "16-token tile");
        break;
    default: compile_one(k, r, id, 0, ""); break;
    }
}

int kernel_report_make(int device_index, const kernel_report_request *rq, kernel_report *r) {
    memset(r, 0, sizeof *r);
    device *d;
    int rc = device_create_compiler(device_index, &d);
    if (rc) return rc;
    kernels *k = kernels_create(d);
    if (!k) { device_destroy(d); return VKPHI_ERR_NOMEM; }
    r->device = *device_get_info(d);
    r->coopmat = kernels_policy(k)->coopmat && r->device.coopmat;
    r->f16math = kernels_policy(k)->f16math && r->device.fp16;
    kernel_report_policy(&r->device, r->policy);
    enum kernel_id ids[KERNEL_COUNT];
    uint32_t n = 0;
    if (rq->all) {
        for (int id = 0; id < KERNEL_COUNT; id++)
            if (kernels_fit(k, (enum kernel_id)id)) ids[n++] = (enum kernel_id)id;
    } else {
        kernel_needs needs = {.kv_q8 = rq->kv_q8, .head_dim = rq->head_dim};
        memcpy(needs.types, rq->types, sizeof needs.types);
        n = kernels_model_list(k, &needs, ids);
    }
    r->entry = calloc((size_t)n * KERNEL_FEW_TOKENS + 1, sizeof *r->entry);
    if (!r->entry) rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    const double t0 = vkphi_now();
    for (uint32_t i = 0; !rc && i < n; i++) compile_variants(k, r, ids[i]);
    r->total_ms = 1e3 * (vkphi_now() - t0);
    kernels_destroy(k);
    r->validation_messages = device_validation_messages(d);
    device_destroy(d);
    return rc;
}

uint32_t kernel_report_policy(const device_info *info, kernel_path_choice out[KERNEL_POLICY_PATHS]) {
    _Static_assert(KERNEL_POLICY_PATHS == POLICY_PATHS, "one line per path");
    const vkphi_env env = vkphi_env_read();
    kernel_policy p;
    kernel_policy_decide(info, &env, &p);
    const bool on[POLICY_PATHS] = {p.coopmat && info->coopmat, p.f16math, p.int_dot};
    for (int i = 0; i < POLICY_PATHS; i++) {
        out[i].path = kernel_policy_path_name((enum policy_path)i);
        out[i].why = i == POLICY_COOPMAT && !info->coopmat
                         ? "the device has no usable ones (f16 x f16 -> f32 at subgroup scope, VK_KHR_cooperative_matrix)"
                         : p.why[i];
        if (i == POLICY_SUBGROUP && p.matvec_subgroup) snprintf(out[i].value, sizeof out[i].value, "%u", p.matvec_subgroup);
        else if (i == POLICY_SUBGROUP) snprintf(out[i].value, sizeof out[i].value, "%u", info->subgroup_size);
        else if (i == POLICY_MATVEC_TOKENS) snprintf(out[i].value, sizeof out[i].value, "%u", p.matvec_tokens);
        else snprintf(out[i].value, sizeof out[i].value, "%s", on[i] ? "on" : "off");
    }
    return POLICY_PATHS;
}

void kernel_report_free(kernel_report *r) {
    free(r->entry);
    memset(r, 0, sizeof *r);
}
