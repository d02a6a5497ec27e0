// SPDX-License-Identifier: MIT
#include "quantize.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "quant.h"
#include "quant_recipe.h"

#define MAX_THREADS 64

// Rows [begin, end) of one tensor: dequantize each from the source type, quantize
// it to the destination type.
struct job {
    const gguf_tensor *t;
    uint32_t dst_type;
    uint8_t *dst;
    uint64_t begin, end;
    int rc;
};

static void *convert_rows(void *arg) {
    struct job *j = arg;
    uint64_t n = j->t->ne[0];
    uint64_t src_rb = quant_row_bytes(j->t->type, n), dst_rb = quant_row_bytes(j->dst_type, n);
    float *row = malloc(n * sizeof *row);
    if (!row) { j->rc = VKPHI_ERR_NOMEM; return NULL; }
    for (uint64_t r = j->begin; r < j->end && !j->rc; r++) {
        j->rc = quant_dequantize_row(j->t->type, (const uint8_t *)j->t->data + r * src_rb, row, n);
        if (!j->rc) j->rc = quant_quantize_row(j->dst_type, row, j->dst + r * dst_rb, n, NULL);
    }
    free(row);
    return NULL;
}

static int layer_of(const char *name) {
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

int quantize_file(const char *in_path, const char *out_path, const char *recipe, int n_threads,
                  void (*on_progress)(double fraction, void *user), void *user) {
    if (!quant_recipe_known(recipe))
        return vkphi_fail(VKPHI_ERR_ARG, "unknown quantization type '%s' (known: %s)", recipe, quant_recipe_names());
    recipe = quant_recipe_canonical(recipe);
    gguf_file *f = gguf_open(in_path);
    if (!f) return VKPHI_ERR_FORMAT;
    uint32_t n_layer = 0;
    const char *arch = NULL;
    char key[128];
    if (gguf_get_str(f, "general.architecture", &arch)) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        gguf_get_u32(f, key, &n_layer);
    }
    int64_t nt = gguf_n_tensors(f);
    uint32_t *types = calloc((size_t)nt + 1, sizeof *types);
    gguf_writer *w = gguf_writer_create();
    int rc = types && w ? VKPHI_OK : vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    for (int64_t i = 0; !rc && i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    if (!rc) gguf_writer_set_u32(w, "general.file_type", quant_recipe_file_type(recipe));
    uint64_t total = 0, done = 0;
    for (int64_t i = 0; !rc && i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        bool vector = t->n_dims == 1 || t->ne[1] == 1;
        if (!vector && t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16) {
            rc = vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s: tensor %s is already %s; quantize from an F32, F16 or BF16 file",
                            in_path, t->name, quant_type_name(t->type));
            break;
        }
        types[i] = vector ? t->type : quant_recipe_type(recipe, t->name, layer_of(t->name), (int)n_layer, (uint32_t)t->ne[0]);
        gguf_writer_add_tensor(w, t->name, types[i], t->n_dims, t->ne);
        total += t->size;
    }
    if (!rc) rc = gguf_writer_begin(w, out_path);
    if (n_threads <= 0) n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    for (int64_t i = 0; !rc && i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (types[i] == t->type) {
            rc = gguf_writer_write_data(w, t->data, t->size);
        } else {
            uint64_t rows = t->size / quant_row_bytes(t->type, t->ne[0]);
            uint64_t bytes = rows * quant_row_bytes(types[i], t->ne[0]);
            uint8_t *dst = malloc(bytes ? bytes : 1);
            if (!dst) { rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory converting %s", t->name); break; }
            struct job jobs[MAX_THREADS];
            pthread_t tid[MAX_THREADS];
            bool started[MAX_THREADS] = {0};
            int n = rows < (uint64_t)n_threads ? (int)rows : n_threads;
            for (int k = 0; k < n; k++) {
                jobs[k] = (struct job){t, types[i], dst, rows * k / n, rows * (k + 1) / n, 0};
                if (k + 1 < n) started[k] = pthread_create(&tid[k], NULL, convert_rows, &jobs[k]) == 0;
                if (!started[k]) convert_rows(&jobs[k]); // the last slice, or a thread that did not start
            }
            for (int k = 0; k < n; k++) {
                if (started[k]) pthread_join(tid[k], NULL);
                if (!rc && jobs[k].rc) rc = vkphi_fail(jobs[k].rc, "could not convert tensor %s to %s", t->name,
                                                       quant_type_name(types[i]));
            }
            if (!rc) rc = gguf_writer_write_data(w, dst, bytes);
            free(dst);
        }
        done += t->size;
        if (on_progress && total) on_progress((double)done / total, user);
    }
    if (!rc) rc = gguf_writer_finish(w);
    if (rc) unlink(out_path);
    gguf_writer_free(w);
    gguf_close(f);
    free(types);
    return rc;
}
