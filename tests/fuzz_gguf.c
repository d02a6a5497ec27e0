// SPDX-License-Identifier: MIT
// libFuzzer target for the GGUF reader (run by tests/fuzz.sh): opens the bytes
// with gguf_open_memory, reads every metadata value through every getter that
// applies, touches every tensor's first and last byte, dequantizes a first row
// where the type is supported, and runs model_check. Any crash, sanitizer report
// or leak is a finding.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gguf.h"
#include "model_config.h"
#include "quant.h"

static volatile uint64_t sink; // keeps the reads from being optimized away

static void walk_kv(const gguf_file *f, int64_t i) {
    const char *key = gguf_key_name(f, i);
    uint32_t u32;
    uint64_t u64, n, len;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    const char *s;
    enum gguf_type et;
    if (gguf_find_key(f, key) != i) abort(); // keys are unique: lookup must find this one
    sink += gguf_get_u32(f, key, &u32) ? u32 : 0;
    sink += gguf_get_u64(f, key, &u64) ? u64 : 0;
    sink += gguf_get_i32(f, key, &i32) ? (uint64_t)i32 : 0;
    sink += gguf_get_i64(f, key, &i64) ? (uint64_t)i64 : 0;
    sink += gguf_get_f32(f, key, &f32) && f32 == f32 ? 1 : 0;
    sink += gguf_get_f64(f, key, &f64) && f64 == f64 ? 1 : 0;
    sink += gguf_get_bool(f, key, &b) ? b : 0;
    if (gguf_get_str(f, key, &s)) sink += strlen(s);
    if (!gguf_get_arr(f, key, &et, &n)) return;
    if (et == GGUF_TYPE_STRING) {
        for (uint64_t k = 0; k < n; k++) {
            const char *e = gguf_get_arr_str(f, key, k, &len);
            if (!e) abort();
            if (len) sink += (uint8_t)e[0] + (uint8_t)e[len - 1];
        }
        if (gguf_get_arr_str(f, key, n, &len)) abort();
    } else if (et != GGUF_TYPE_ARRAY) {
        static const uint8_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        const uint8_t *d = gguf_get_arr_data(f, key);
        if (!d) abort();
        if (n) sink += d[0] + d[n * size[et] - 1];
    }
}

static void walk_tensor(const gguf_file *f, int64_t i) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    if (gguf_find_tensor(f, t->name) != t) abort();
    if (t->n_dims < 1 || t->n_dims > 4 || !quant_type_known(t->type)) abort();
    const uint8_t *d = t->data;
    if (t->size) sink += d[0] + d[t->size - 1];
    const uint64_t n = t->ne[0];
    if (quant_type_supported(t->type) && n && n <= 4096 && t->size >= quant_row_bytes(t->type, n)) {
        float *row = malloc(n * sizeof *row);
        if (quant_dequantize_row(t->type, d, row, n) != VKPHI_OK) abort();
        sink += row[n - 1] == row[n - 1];
        free(row);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = gguf_open_memory(data, size, "fuzz.gguf");
    if (!f) {
        if (!vkphi_last_error()[0]) abort(); // every refusal says why
        return 0;
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) walk_kv(f, i);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) walk_tensor(f, i);
    sink += (uint64_t)model_check(f);
    gguf_close(f);
    return 0;
}
