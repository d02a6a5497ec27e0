// SPDX-License-Identifier: MIT
#include "quantize.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"
#include "gguf.h"
#include "quant.h"
#include "quant_recipe.h"

#define MAX_THREADS 64

// Rows [begin, end) of one tensor: dequantize each from the source type, quantize
// it to the destination type, with the tensor's column importance (or NULL).
struct job {
    const gguf_tensor *t;
    uint32_t dst_type;
    uint8_t *dst;
    const float *importance;
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
        if (!j->rc) j->rc = quant_quantize_row(j->dst_type, row, j->dst + r * dst_rb, n, j->importance);
    }
    free(row);
    return NULL;
}

// ---- importance matrices ----

// One matrix's per-column importance.
struct imatrix_entry {
    char *name;
    float *v;
    uint64_t n;
};

struct imatrix {
    struct imatrix_entry *e;
    uint64_t n;
};

static void imatrix_free(struct imatrix *m) {
    for (uint64_t i = 0; i < m->n; i++) free(m->e[i].name), free(m->e[i].v);
    free(m->e);
    m->e = NULL;
    m->n = 0;
}

static const float *imatrix_find(const struct imatrix *m, const char *name, uint64_t *n) {
    for (uint64_t i = 0; i < m->n; i++)
        if (!strcmp(m->e[i].name, name)) {
            *n = m->e[i].n;
            return m->e[i].v;
        }
    return NULL;
}

static struct imatrix_entry *imatrix_add(struct imatrix *m, const char *name, size_t name_len, uint64_t n) {
    struct imatrix_entry *e = realloc(m->e, (m->n + 1) * sizeof *e);
    if (!e) return NULL;
    m->e = e;
    e = &m->e[m->n];
    e->name = malloc(name_len + 1);
    e->v = malloc((n ? n : 1) * sizeof *e->v);
    if (!e->name || !e->v) {
        free(e->name), free(e->v);
        return NULL;
    }
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    e->n = n;
    m->n++;
    return e;
}

// The GGUF format: NAME.in_sum2 (sums of squared activations per column, one row
// per expert matrix) and NAME.counts (tokens counted per expert matrix), f32.
// Importance = sum / count; a matrix that saw no tokens gets 1 everywhere.
static int imatrix_read_gguf(const char *path, struct imatrix *m) {
    gguf_file *f = gguf_open(path);
    if (!f) return VKPHI_ERR_FORMAT;
    int rc = VKPHI_OK;
    static const char sfx[] = ".in_sum2";
    const size_t ls = sizeof sfx - 1;
    for (int64_t i = 0; !rc && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *s = gguf_tensor_at(f, i);
        const size_t len = strlen(s->name);
        if (len <= ls || strcmp(s->name + len - ls, sfx)) continue;
        char cname[512];
        snprintf(cname, sizeof cname, "%.*s.counts", (int)(len - ls), s->name);
        const gguf_tensor *c = gguf_find_tensor(f, cname);
        const uint64_t nval = s->size / 4, ncount = c ? c->size / 4 : 0;
        if (!c || s->type != GGML_TYPE_F32 || c->type != GGML_TYPE_F32 || ncount == 0 || nval % ncount) {
            rc = vkphi_fail(VKPHI_ERR_FORMAT, "%s: importance matrix %.*s needs f32 tensors %s and %s whose sizes agree",
                            path, (int)(len - ls), s->name, s->name, cname);
            break;
        }
        struct imatrix_entry *e = imatrix_add(m, s->name, len - ls, nval);
        if (!e) {
            rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory reading %s", path);
            break;
        }
        const uint64_t ne0 = nval / ncount;
        for (uint64_t j = 0; j < ncount; j++) {
            float count;
            memcpy(&count, (const uint8_t *)c->data + 4 * j, 4);
            for (uint64_t k = 0; k < ne0; k++) {
                float sum;
                memcpy(&sum, (const uint8_t *)s->data + 4 * (j * ne0 + k), 4);
                e->v[j * ne0 + k] = count > 0 ? sum / count : 1.0f;
            }
        }
    }
    if (!rc && m->n == 0) rc = vkphi_fail(VKPHI_ERR_FORMAT, "%s: a GGUF file without importance-matrix tensors (*.in_sum2)", path);
    gguf_close(f);
    return rc;
}

static bool read_i32(FILE *f, int32_t *v) {
    uint8_t b[4];
    if (fread(b, 1, 4, f) != 4) return false;
    *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
    return true;
}

// The legacy binary format (little-endian): int32 n_entries, then per entry int32
// name length, the name, int32 ncall, int32 nval, nval float32 values (the column
// sums scaled to ncall calls); a trailer (chunk count, dataset name) may follow.
// Importance = value / ncall.
static int imatrix_read_legacy(const char *path, struct imatrix *m) {
    FILE *f = fopen(path, "rb");
    if (!f) return vkphi_fail(VKPHI_ERR_IO, "cannot open importance matrix %s", path);
    int32_t n_entries = 0;
    int rc = VKPHI_OK;
    if (!read_i32(f, &n_entries) || n_entries < 1 || n_entries > 1000000)
        rc = vkphi_fail(VKPHI_ERR_FORMAT, "%s: not an importance matrix (neither GGUF nor the legacy format: bad entry count)", path);
    for (int32_t i = 0; !rc && i < n_entries; i++) {
        int32_t len = 0, ncall = 0, nval = 0;
        char name[512];
        if (!read_i32(f, &len) || len < 1 || len >= (int32_t)sizeof name || fread(name, 1, (size_t)len, f) != (size_t)len ||
            !read_i32(f, &ncall) || !read_i32(f, &nval) || nval < 1 || nval > (1 << 26)) {
            rc = vkphi_fail(VKPHI_ERR_FORMAT, "%s: importance matrix entry %d of %d is truncated or malformed", path, i + 1, n_entries);
            break;
        }
        struct imatrix_entry *e = imatrix_add(m, name, (size_t)len, (uint64_t)nval);
        if (!e) {
            rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory reading %s", path);
            break;
        }
        for (int32_t k = 0; k < nval; k++) {
            int32_t bits;
            if (!read_i32(f, &bits)) {
                rc = vkphi_fail(VKPHI_ERR_FORMAT, "%s: importance matrix entry %s is truncated", path, e->name);
                break;
            }
            float v;
            memcpy(&v, &bits, 4);
            e->v[k] = ncall > 0 ? v / (float)ncall : v;
        }
    }
    fclose(f);
    return rc;
}

static int imatrix_read(const char *path, struct imatrix *m) {
    FILE *f = fopen(path, "rb");
    if (!f) return vkphi_fail(VKPHI_ERR_IO, "cannot open importance matrix %s", path);
    char magic[4] = {0};
    const bool gguf = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    fclose(f);
    int rc = gguf ? imatrix_read_gguf(path, m) : imatrix_read_legacy(path, m);
    if (rc) imatrix_free(m);
    return rc;
}

// The IQ1/IQ2/IQ3 recipes the reference quantizer knows: we run their files but
// do not implement their quantizers (lattice searches over the format's grids).
static bool iq_recipe(const char *r) {
    static const char *const names[] = {"IQ1_S",  "IQ1_M",  "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M",
                                        "IQ3_XXS", "IQ3_XS", "IQ3_S",  "IQ3_M"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(r, names[i])) return true;
    return false;
}

static int layer_of(const char *name) {
    int l;
    return sscanf(name, "blk.%d.", &l) == 1 ? l : -1;
}

int quantize_file(const char *in_path, const char *out_path, const char *recipe, const char *imatrix_path,
                  int n_threads, void (*on_progress)(double fraction, void *user), void *user) {
    if (recipe && iq_recipe(recipe))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "vkphi cannot make %s files: it does not implement the IQ1/IQ2/IQ3 "
                          "quantizers (their grid searches); make them with the reference quantizer and an importance matrix",
                          recipe);
    if (!quant_recipe_known(recipe))
        return vkphi_fail(VKPHI_ERR_ARG, "unknown quantization type '%s' (known: %s)", recipe, quant_recipe_names());
    recipe = quant_recipe_canonical(recipe);
    struct imatrix im = {0};
    int rc = imatrix_path ? imatrix_read(imatrix_path, &im) : VKPHI_OK;
    if (rc) return rc;
    gguf_file *f = gguf_open(in_path);
    if (!f) {
        imatrix_free(&im);
        return VKPHI_ERR_FORMAT;
    }
    uint32_t n_layer = 0, n_head = 0, n_head_kv = 0;
    const char *arch = NULL;
    char key[128];
    if (gguf_get_str(f, "general.architecture", &arch)) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        gguf_get_u32(f, key, &n_layer);
        snprintf(key, sizeof key, "%s.attention.head_count", arch);
        gguf_get_u32(f, key, &n_head);
        snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
        gguf_get_u32(f, key, &n_head_kv);
    }
    const uint32_t n_gqa = n_head && n_head_kv ? n_head / n_head_kv : 1;
    int64_t nt = gguf_n_tensors(f);
    uint32_t *types = calloc((size_t)nt + 1, sizeof *types);
    gguf_writer *w = gguf_writer_create();
    rc = types && w ? VKPHI_OK : vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
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
        types[i] = vector ? t->type
                          : quant_recipe_type(recipe, t->name, layer_of(t->name), (int)n_layer, (uint32_t)t->ne[0], n_gqa,
                                              im.n > 0);
        uint64_t n_imp;
        if (!vector && imatrix_find(&im, t->name, &n_imp) && n_imp != t->ne[0]) {
            rc = vkphi_fail(VKPHI_ERR_ARG, "%s: the importance matrix of %s has %llu columns, the tensor %llu",
                            imatrix_path, t->name, (unsigned long long)n_imp, (unsigned long long)t->ne[0]);
            break;
        }
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
            uint64_t n_imp;
            const float *imp = imatrix_find(&im, t->name, &n_imp);
            for (int k = 0; k < n; k++) {
                jobs[k] = (struct job){t, types[i], dst, imp, rows * k / n, rows * (k + 1) / n, 0};
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
    imatrix_free(&im);
    return rc;
}
