// SPDX-License-Identifier: MIT
// The device layer under other GPUs' limits: VKPHI_LIMITS parsing and what it
// overrides, the Vulkan version a device is used at, timestamps that wrap, and
// checks over every embedded SPIR-V module that lavapipe alone would never catch.
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "get_rows.h"
#include "harness_gpu.h"
#include "kernels.h"
#include "memory.h"
#include "pipeline.h"
#include "push_constants.h"
#include "shaders.h"

// ---- SPIR-V: read the embedded modules ----

// Calls fn on every instruction (opcode, operands) of a module.
typedef void (*spv_fn)(uint32_t op, const uint32_t *w, uint32_t len, void *ctx);
static void spv_walk(const struct shader_code *code, spv_fn fn, void *ctx) {
    const uint32_t *w = code->code;
    size_t n = code->size / 4;
    for (size_t i = 5; i < n;) {
        uint32_t len = w[i] >> 16;
        if (len == 0 || i + len > n) break;
        fn(w[i] & 0xffff, w + i + 1, len - 1, ctx);
        i += len;
    }
}

struct spv_facts {
    bool sg_arith;        // OpCapability GroupNonUniformArithmetic
    uint32_t glsl_set;    // id of the GLSL.std.450 import
    uint32_t unpack_half; // OpExtInst UnpackHalf2x16 (GLSL.std.450 62)
    uint32_t pack_half;   // OpExtInst PackHalf2x16 (58)
    bool coop_nv, coop_khr;   // OpCapability CooperativeMatrixNV (5357), CooperativeMatrixKHR (6022)
    uint32_t coop_nv_ops;     // NV cooperative-matrix instructions (5358-5362)
    uint32_t coop_khr_types;  // OpTypeCooperativeMatrixKHR (4456)
};
static void spv_collect(uint32_t op, const uint32_t *w, uint32_t len, void *ctx) {
    struct spv_facts *f = ctx;
    if (op == 17 && len == 1 && w[0] == 63) f->sg_arith = true;
    if (op == 17 && len == 1 && w[0] == 5357) f->coop_nv = true;
    if (op == 17 && len == 1 && w[0] == 6022) f->coop_khr = true;
    if (op >= 5358 && op <= 5362) f->coop_nv_ops++;
    if (op == 4456 && len == 6) f->coop_khr_types++;
    if (op == 11 && len >= 2 && !strncmp((const char *)(w + 1), "GLSL.std.450", 12)) f->glsl_set = w[0];
    if (op == 12 && len >= 4 && w[2] == f->glsl_set) { // type, id, set, instruction
        if (w[3] == 62) f->unpack_half++;
        if (w[3] == 58) f->pack_half++;
    }
}

static bool starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

// Quantized-weight kernels read f16 block scales, which real weights have as
// subnormal halves; unpackHalf2x16 may flush those (no DenormPreserve), so these
// modules must decode halves by integer arithmetic. The KV-cache store must round
// by itself: packHalf2x16's rounding is the driver's. Every module that uses
// subgroup arithmetic has a build without it, and that build does not declare it.
// The checks of one table of modules (the runtime's, the tests'); quant[i]: module i
// is a quantized-weight module.
static void check_modules(const struct shader_code *table, int n, const bool *quant, uint32_t *quant_modules,
                          uint32_t *nosg) {
    for (int i = 0; i < n; i++) {
        const struct shader_code *code = &table[i];
        struct spv_facts f = {0};
        spv_walk(code, spv_collect, &f);
        // The cooperative-matrix modules: rewritten from NV to KHR (cmake/spv_coopmat.c),
        // A, B and accumulator types.
        if (strstr(code->name, "coop"))
            CHECK(f.coop_khr && !f.coop_nv && f.coop_nv_ops == 0 && f.coop_khr_types == 3,
                  "%s: KHR capability %d, NV capability %d, %u NV instructions, %u KHR matrix types (want 3)", code->name,
                  f.coop_khr, f.coop_nv, f.coop_nv_ops, f.coop_khr_types);
        else
            CHECK(!f.coop_khr && !f.coop_nv, "%s declares cooperative matrices", code->name);
        if (quant[i]) {
            (*quant_modules)++;
            CHECK(f.unpack_half == 0, "%s decodes %u halves with unpackHalf2x16: subnormal block scales may be flushed",
                  code->name, f.unpack_half);
        }
        if (starts_with(code->name, "kv_store"))
            CHECK(f.pack_half == 0, "%s rounds with packHalf2x16, whose rounding the driver chooses", code->name);
        if (f.sg_arith) CHECK(code->nosg != NULL, "%s uses subgroup arithmetic and has no build without it", code->name);
        if (code->nosg) {
            struct spv_facts g = {0};
            spv_walk(code->nosg, spv_collect, &g);
            CHECK(!g.sg_arith, "%s still declares subgroup arithmetic", code->nosg->name);
            (*nosg)++;
        }
    }
}

static void test_spirv(void) {
    uint32_t quant_modules = 0, nosg = 0;
    // The quantized-weight modules: each weight family's build for a type of blocks
    // (kernels.h), and its build without subgroup arithmetic. (The packed-f16 tiles,
    // FAMILY_MATMUL_H, work in halves by design.)
    bool quant_module[SHADER_COUNT] = {0};
    for (int f = 0; f < FAMILY_COUNT; f++)
        for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
            const struct shader_code *code = kernels_weight_shader((enum kernel_family)f, t);
            if (f == FAMILY_MATMUL_H || !code || quant_block_elems(t) == 1) continue;
            quant_module[code - shader_table] = true;
            if (code->nosg) quant_module[code->nosg - shader_table] = true;
        }
    check_modules(shader_table, SHADER_COUNT, quant_module, &quant_modules, &nosg);
    CHECK(quant_modules >= 3 * 19, "only %u quantized-weight modules found", quant_modules);
    CHECK(nosg >= 2, "only %u modules have builds without subgroup arithmetic", nosg);

    // The tests' own kernels (tests/shaders/): the row lookup's builds for types of
    // blocks decode halves the same way.
    bool test_quant[TEST_SHADER_COUNT] = {0};
    uint32_t test_quant_modules = 0, test_nosg = 0;
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct shader_code *code = get_rows_shader(t);
        if (code && quant_block_elems(t) > 1) test_quant[code - test_shader_table] = true;
    }
    check_modules(test_shader_table, TEST_SHADER_COUNT, test_quant, &test_quant_modules, &test_nosg);
    CHECK(test_quant_modules >= 19, "only %u quantized row-lookup modules found", test_quant_modules);
}

// Timestamps: a 36-bit counter that wrapped between two stamps.
static void test_ticks(void) {
    CHECK(cmd_ticks_between(100, 250, 64) == 150, "plain difference");
    CHECK(cmd_ticks_between((1ull << 36) - 10, 5, 36) == 15, "36-bit wrap: %llu",
          (unsigned long long)cmd_ticks_between((1ull << 36) - 10, 5, 36));
    // Bits above the valid ones are not to be trusted either.
    CHECK(cmd_ticks_between(0xabc0000000000000ull | 7, 0x1230000000000000ull | 9, 36) == 2, "garbage above 36 bits");
}

static const device_info *first_info(device_info **infos, uint32_t *n) {
    if (device_list(infos, n) != VKPHI_OK || *n == 0) return NULL;
    return &(*infos)[0];
}

// VKPHI_LIMITS: each key lowers (or raises) what the device reports, never the
// other way, and a malformed list is one sentence.
static void test_limits(void) {
    const char *saved = getenv(DEVICE_LIMITS_ENV);
    char *keep = saved ? strdup(saved) : NULL;
    unsetenv(DEVICE_LIMITS_ENV);
    device_info *base_infos, *infos;
    uint32_t n;
    const device_info *base = first_info(&base_infos, &n);
    if (!base) { free(keep); return; }
    CHECK(base->limits[0] == 0, "no override without VKPHI_LIMITS");
    // The shape the kernels use is one the device lists: f16 x f16 -> f32, subgroup scope.
    bool listed = false;
    for (uint32_t i = 0; i < base->n_coopmat_shapes; i++) {
        const device_coopmat_shape *c = &base->coopmat_shapes[i];
        listed |= c->m == base->coopmat_m && c->n == base->coopmat_n && c->k == base->coopmat_k && c->a_type == 0 &&
                  c->b_type == 0 && c->c_type == 1 && c->result_type == 1 && c->scope == 3;
    }
    CHECK(base->coopmat == listed && (base->coopmat || base->coopmat_m + base->coopmat_n + base->coopmat_k == 0) &&
              (!base->coopmat || 32 % base->coopmat_k == 0),
          "cooperative matrix %d at %ux%ux%u, among the %u shapes listed: %d", base->coopmat, base->coopmat_m,
          base->coopmat_n, base->coopmat_k, base->n_coopmat_shapes, listed);
    printf("%s: cooperative matrix %s", base->name, base->coopmat ? "yes" : "no");
    if (base->coopmat) printf(", %ux%ux%u", base->coopmat_m, base->coopmat_n, base->coopmat_k);
    printf(" (%u shapes listed)\n", base->n_coopmat_shapes);

    setenv(DEVICE_LIMITS_ENV, "offset_align=256,storage_range=64M,max_alloc=1G,shared=16K,wg=128,discrete,"
                              "no_push_descriptors,no_subgroup_arith,no_coopmat,no_int_dot,no_fp16,api=1.2", 1);
    const device_info *o = first_info(&infos, &n);
    CHECK(o != NULL, "%s", vkphi_last_error());
    if (o) {
        CHECK(o->min_storage_offset_align == (base->min_storage_offset_align > 256 ? base->min_storage_offset_align : 256),
              "offset_align %llu", (unsigned long long)o->min_storage_offset_align);
        CHECK(o->max_storage_buffer_range <= (64u << 20), "storage_range %llu", (unsigned long long)o->max_storage_buffer_range);
        CHECK(o->max_alloc_size <= (1ull << 30), "max_alloc");
        CHECK(o->max_shared_memory <= 16384 && o->max_workgroup_invocations <= 128, "shared, wg");
        CHECK(o->type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU && !o->unified_memory, "discrete");
        CHECK(!o->push_descriptor && !o->subgroup_arith && !o->coopmat && !o->int_dot && !o->fp16, "features off");
        CHECK(o->coopmat_m == 0 && o->coopmat_n == 0 && o->coopmat_k == 0, "no cooperative-matrix shape for the kernels");
        CHECK(o->effective_api == VK_API_VERSION_1_2 || o->effective_api < VK_API_VERSION_1_2, "api 1.2: %u.%u",
              VK_API_VERSION_MAJOR(o->effective_api), VK_API_VERSION_MINOR(o->effective_api));
        CHECK(strstr(o->limits, "offset_align=256") != NULL, "the override is shown");
        free(infos);
    }
    // A larger value than the driver's is no override: limits only get stricter.
    setenv(DEVICE_LIMITS_ENV, "storage_range=64G,offset_align=1", 1);
    o = first_info(&infos, &n);
    if (o) {
        CHECK(o->max_storage_buffer_range == base->max_storage_buffer_range, "storage_range raised");
        CHECK(o->min_storage_offset_align == base->min_storage_offset_align, "offset_align lowered");
        free(infos);
    }
    const char *bad[] = {"offset_align=3", "storage_range=", "wg=lots", "api=1.1", "frobnicate", "discrete=1", "shared=0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(DEVICE_LIMITS_ENV, bad[i], 1);
        int rc = device_list(&infos, &n);
        CHECK(rc == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "VKPHI_LIMITS"), "'%s' accepted (%d: %s)", bad[i], rc,
              vkphi_last_error());
        if (rc == VKPHI_OK) free(infos);
    }

    // At API 1.2 (instance), a 1.3 device is used through the extensions: subgroup
    // size control and integer dot product must be enabled as extensions, not as
    // 1.3 core features that a 1.2 instance may not use.
    setenv(DEVICE_LIMITS_ENV, "api=1.2", 1);
    device *d;
    if (device_create(-1, &d) == VKPHI_OK) {
        const device_info *info = device_get_info(d);
        CHECK(info->effective_api < VK_API_VERSION_1_3, "used at 1.3 under a 1.2 instance");
        if (info->subgroup_size_control)
            CHECK(device_extension_enabled(d, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME),
                  "subgroup size control used without its extension at API 1.2");
        if (info->int_dot)
            CHECK(device_extension_enabled(d, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME),
                  "integer dot product used without its extension at API 1.2");
        CHECK(device_validation_messages(d) == 0, "validation messages at API 1.2");
        device_destroy(d);
    } else {
        CHECK(false, "device at API 1.2: %s", vkphi_last_error());
    }

    // Kernels that ask for more shared memory or larger workgroups than the device
    // offers are refused with the numbers; prefill attention picks smaller tiles.
    setenv(DEVICE_LIMITS_ENV, "shared=16K,wg=128", 1);
    if (device_create(-1, &d) == VKPHI_OK) {
        pipeline p;
        const uint32_t push = sizeof(struct push_swiglu);
        const struct shader_code *swiglu = &shader_table[SHADER_SWIGLU];
        pipeline_desc big = {.code = swiglu, .n_bindings = 2, .push_size = push, .n_spec = 1, .spec = {128},
                             .shared_bytes = 16385};
        CHECK(pipeline_create(d, NULL, &big, &p) == VKPHI_ERR_UNSUPPORTED && strstr(vkphi_last_error(), "16385 bytes"),
              "too much shared memory: %s", vkphi_last_error());
        pipeline_desc wide = {.code = swiglu, .n_bindings = 2, .push_size = push, .n_spec = 1, .spec = {256}};
        CHECK(pipeline_create(d, NULL, &wide, &p) == VKPHI_ERR_UNSUPPORTED && strstr(vkphi_last_error(), "256"),
              "too wide a workgroup: %s", vkphi_last_error());
        kernels *k = kernels_create(d);
        const pipeline *attn = k ? kernels_get(k, KERNEL_ATTN_PREFILL_F16) : NULL;
        CHECK(attn && attn->spec[1] * attn->spec[2] < 16 * 32, "prefill attention at 16 KiB: %s",
              attn ? "the 16 x 32 tiles" : vkphi_last_error());
        const pipeline *norm = k ? kernels_get(k, KERNEL_RMSNORM) : NULL;
        CHECK(norm && norm->local_size <= 128, "rmsnorm within 128 invocations");
        kernels_destroy(k);
        device_destroy(d);
    } else {
        CHECK(false, "device at API 1.2: %s", vkphi_last_error());
    }
    free(base_infos);
    if (keep) setenv(DEVICE_LIMITS_ENV, keep, 1); else unsetenv(DEVICE_LIMITS_ENV);
    free(keep);
}

// Under `discrete`, device buffers are not mapped: data goes through staging.
static void test_discrete_staging(void) {
    const char *saved = getenv(DEVICE_LIMITS_ENV);
    char *keep = saved ? strdup(saved) : NULL;
    setenv(DEVICE_LIMITS_ENV, "discrete", 1);
    device *d;
    if (device_create(-1, &d) == VKPHI_OK) {
        gpu_buffer b;
        float in[1000], out[1000];
        for (int i = 0; i < 1000; i++) in[i] = (float)i * 0.5f;
        CHECK(buffer_create(d, sizeof in, BUFFER_DEVICE, "a test buffer", &b) == VKPHI_OK, "%s", vkphi_last_error());
        CHECK(b.mapped == NULL, "a device buffer is mapped on a discrete GPU");
        CHECK(buffer_write(d, &b, 0, in, sizeof in) == VKPHI_OK, "%s", vkphi_last_error());
        CHECK(buffer_read(d, &b, 0, out, sizeof out) == VKPHI_OK, "%s", vkphi_last_error());
        CHECK(memcmp(in, out, sizeof in) == 0, "staging round trip");
        buffer_destroy(d, &b);
        device_destroy(d);
    }
    if (keep) setenv(DEVICE_LIMITS_ENV, keep, 1); else unsetenv(DEVICE_LIMITS_ENV);
    free(keep);
}

// A device made for compiling allocates nothing and submits nothing: buffers, arena
// blocks and submissions are refused with a sentence, while pipelines compile and,
// where the driver offers them, come with the compiler's figures.
static void test_compile_only(void) {
    device *d;
    if (device_create_compiler(-1, &d) != VKPHI_OK) {
        CHECK(0, "device_create_compiler: %s", vkphi_last_error());
        return;
    }
    CHECK(device_for_compiling(d), "a compiling device says so");
    gpu_buffer b;
    CHECK(buffer_create(d, 256, BUFFER_DEVICE, "a test buffer", &b) == VKPHI_ERR_ARG &&
              strstr(vkphi_last_error(), "compiling only"),
          "a buffer on a compiling device: %s", vkphi_last_error());
    kernels *k = kernels_create(d);
    const pipeline *p = k ? kernels_get(k, KERNEL_RMSNORM) : NULL;
    CHECK(p != NULL, "a pipeline compiles on a compiling device: %s", vkphi_last_error());
    pipeline_stats st;
    if (p) CHECK(pipeline_get_stats(d, p, &st) == VKPHI_OK && (st.n > 0) == device_get_info(d)->pipeline_stats,
                 "%u statistics where the driver %s them", st.n, device_get_info(d)->pipeline_stats ? "offers" : "lacks");
    cmd_ctx *c = NULL;
    if (cmd_create(d, &c) == VKPHI_OK) { // (a null device has no fences: nothing to submit with)
        CHECK(cmd_begin_reusable(c) == VKPHI_OK && cmd_end(c) == VKPHI_OK, "recording: %s", vkphi_last_error());
        CHECK(cmd_resubmit(c, true) == VKPHI_ERR_ARG, "a submission on a compiling device is refused");
    }
    cmd_destroy(c); // (also after a failed create)
    kernels_destroy(k);
    device_destroy(d);
}

// Memory types a buffer must never land in, and host buffers that must be coherent
// (buffer.c maps without flushing).
static void test_memory_types(void) {
    VkPhysicalDeviceMemoryProperties mp = {0};
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    const VkMemoryPropertyFlags types[] = {DL | VK_MEMORY_PROPERTY_PROTECTED_BIT, DL | VK_MEMORY_PROPERTY_DEVICE_COHERENT_BIT_AMD,
                                           DL | HV | HC | VK_MEMORY_PROPERTY_DEVICE_UNCACHED_BIT_AMD, HV | CA, DL, HV | HC,
                                           HV | HC | CA};
    mp.memoryTypeCount = sizeof types / sizeof types[0];
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) mp.memoryTypes[i].propertyFlags = types[i];
    CHECK(memory_type_pick(&mp, ~0u, DL, 0) == 4, "device-local: %d", memory_type_pick(&mp, ~0u, DL, 0));
    CHECK(memory_type_pick(&mp, ~0u, HV | HC, CA) == 6, "host, cached preferred: %d", memory_type_pick(&mp, ~0u, HV | HC, CA));
    CHECK(memory_type_pick(&mp, 0x3f, HV | HC, CA) == 5, "host when the cached type is not allowed");
    CHECK(memory_type_pick(&mp, 0x0b, HV | HC, 0) == -1, "only incoherent or AMD-uncached host types: none");
    CHECK(memory_type_pick(&mp, 0x07, DL, 0) == -1, "only protected and AMD types: none");
}

int main(void) {
    test_spirv();
    test_ticks();
    test_memory_types();
    if (!test_vulkan_available()) {
        test_finish();
        return test_skip("no Vulkan device");
    }
    test_limits();
    test_discrete_staging();
    test_compile_only();
    CHECK(device_validation_total() == 0, "%u validation messages", device_validation_total());
    return test_finish();
}
