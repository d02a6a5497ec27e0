// SPDX-License-Identifier: MIT
// gguf and model_check: a hand-built file read back field by field; the writer
// round trip (every value type, arrays of strings and of arrays, alignment,
// padding); every reference file in ../shared; bad input of every kind, each of
// which must come back as NULL with one sentence naming the file, never a crash;
// and the "can vkphi run it" check on small generated models.
//
// `test_gguf --write-corpus DIR` writes the fuzzer's seed files instead.
#include "harness.h"

#include "common.h"
#include "gguf.h"
#include "model_config.h"
#include "quant.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

// ---- a byte builder for hand-made files ----

struct bb {
    uint8_t *p;
    size_t n, cap;
};

static size_t bput(struct bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return b->n - n;
}
static size_t b_u32(struct bb *b, uint32_t v) { return bput(b, &v, 4); }
static size_t b_u64(struct bb *b, uint64_t v) { return bput(b, &v, 8); }
static size_t b_strn(struct bb *b, const char *s, size_t n) { // returns the offset of the length
    size_t at = b_u64(b, n);
    bput(b, s, n);
    return at;
}
static size_t b_str(struct bb *b, const char *s) { return b_strn(b, s, strlen(s)); }
static void b_pad(struct bb *b, size_t align) {
    while (b->n % align) bput(b, "", 1);
}
static void patch_u32(uint8_t *p, size_t at, uint32_t v) { memcpy(p + at, &v, 4); }
static void patch_u64(uint8_t *p, size_t at, uint64_t v) { memcpy(p + at, &v, 8); }

// The hand-built file: 8 keys (strings, small integers, a string array with an
// empty string and a NUL byte, an array of arrays, a float64, general.alignment,
// an int32 array) and three tensors whose data ends exactly at the end of the file.
struct base_offsets {
    size_t version, n_tensors, n_kv;
    size_t key0_len, val0_len, key1_type, key2_name, arr_type, arr_count, str1_len, nested_inner, align_type, align_val;
    size_t t_name[3], t_ndims[3], t_ne[3], t_type[3], t_off[3];
    size_t data_off;
};

static const float base_f32[8] = {0, 1, 2, 3, -4, 5.5f, 6, 7};

static uint8_t *make_base(size_t *size, struct base_offsets *o) {
    struct bb b = {0};
    bput(&b, "GGUF", 4);
    o->version = b_u32(&b, 3);
    o->n_tensors = b_u64(&b, 3);
    o->n_kv = b_u64(&b, 8);
    o->key0_len = b_str(&b, "general.architecture");
    b_u32(&b, GGUF_TYPE_STRING);
    o->val0_len = b_str(&b, "phi3");
    b_str(&b, "test.aaa");
    o->key1_type = b_u32(&b, GGUF_TYPE_UINT8);
    bput(&b, "\xc8", 1); // 200
    o->key2_name = b_str(&b, "test.bbb") + 8;
    b_u32(&b, GGUF_TYPE_INT16);
    int16_t i16 = -300;
    bput(&b, &i16, 2);
    b_str(&b, "test.strings");
    b_u32(&b, GGUF_TYPE_ARRAY);
    o->arr_type = b_u32(&b, GGUF_TYPE_STRING);
    o->arr_count = b_u64(&b, 3);
    b_str(&b, "a");
    o->str1_len = b_str(&b, "");
    b_strn(&b, "he\0llo", 6);
    b_str(&b, "test.nested"); // [[1, 2] (int32), ["x"]]
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 2);
    b_u32(&b, GGUF_TYPE_INT32);
    o->nested_inner = b_u64(&b, 2);
    b_u32(&b, 1);
    b_u32(&b, 2);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 1);
    b_str(&b, "x");
    b_str(&b, "test.f64");
    b_u32(&b, GGUF_TYPE_FLOAT64);
    double half = 0.5;
    bput(&b, &half, 8);
    b_str(&b, "general.alignment");
    o->align_type = b_u32(&b, GGUF_TYPE_UINT32);
    o->align_val = b_u32(&b, 32);
    b_str(&b, "test.i32s");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_INT32);
    b_u64(&b, 3);
    const int32_t i32s[3] = {-1, 2, 3};
    bput(&b, i32s, sizeof i32s);
    // tensors: t.aa F32 [8] at 0, t.bb Q8_0 [32, 2] at 32, t.cc Q4_K [256] at 128
    const char *names[3] = {"t.aa", "t.bb", "t.cc"};
    const uint32_t ndims[3] = {1, 2, 1}, types[3] = {GGML_TYPE_F32, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K};
    const uint64_t ne[3][2] = {{8, 1}, {32, 2}, {256, 1}}, offs[3] = {0, 32, 128};
    for (int t = 0; t < 3; t++) {
        o->t_name[t] = b_str(&b, names[t]);
        o->t_ndims[t] = b_u32(&b, ndims[t]);
        o->t_ne[t] = b_u64(&b, ne[t][0]);
        if (ndims[t] > 1) b_u64(&b, ne[t][1]);
        o->t_type[t] = b_u32(&b, types[t]);
        o->t_off[t] = b_u64(&b, offs[t]);
    }
    b_pad(&b, 32);
    o->data_off = b.n;
    bput(&b, base_f32, 32);
    uint8_t q8[68], q4k[144];
    for (int i = 0; i < 68; i++) q8[i] = (uint8_t)(i * 3);
    for (int i = 0; i < 144; i++) q4k[i] = (uint8_t)(i * 5 + 1);
    bput(&b, q8, 68);
    b_pad(&b, 32);
    bput(&b, q4k, 144); // last tensor: no padding after it
    *size = b.n;
    return b.p;
}

static void test_base_file(void) {
    struct base_offsets o;
    size_t size;
    uint8_t *p = make_base(&size, &o);
    gguf_file *f = gguf_open_memory(p, size, "base.gguf");
    CHECK(f != NULL, "open the hand-built file: %s", vkphi_last_error());
    if (!f) {
        free(p);
        return;
    }
    CHECK(gguf_version(f) == 3 && gguf_file_size(f) == size && gguf_alignment(f) == 32, "header");
    CHECK(!strcmp(gguf_name(f), "base.gguf"), "name");
    CHECK(gguf_data_offset(f) == o.data_off && o.data_off % 32 == 0, "data offset %llu", (unsigned long long)gguf_data_offset(f));
    CHECK(gguf_n_kv(f) == 8 && gguf_n_tensors(f) == 3, "counts");
    CHECK(!strcmp(gguf_key_name(f, 0), "general.architecture") && gguf_key_type(f, 0) == GGUF_TYPE_STRING, "key 0");
    CHECK(gguf_key_name(f, 8) == NULL && gguf_key_name(f, -1) == NULL && gguf_key_type(f, 8) == GGUF_TYPE_INVALID, "out of range");
    CHECK(gguf_find_key(f, "test.bbb") == 2 && gguf_find_key(f, "test.bb") == -1 && gguf_find_key(f, "nope") == -1 &&
              gguf_find_key(f, NULL) == -1,
          "find_key");
    const char *s;
    CHECK(gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "phi3"), "string");
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    CHECK(gguf_get_u32(f, "test.aaa", &u32) && u32 == 200, "uint8 as u32");
    CHECK(gguf_get_i32(f, "test.aaa", &i32) && i32 == 200, "uint8 as i32");
    CHECK(gguf_get_f32(f, "test.aaa", &f32) && f32 == 200.0f, "uint8 as f32");
    CHECK(gguf_get_i32(f, "test.bbb", &i32) && i32 == -300, "int16 as i32");
    CHECK(gguf_get_i64(f, "test.bbb", &i64) && i64 == -300, "int16 as i64");
    CHECK(!gguf_get_u32(f, "test.bbb", &u32) && !gguf_get_u64(f, "test.bbb", &u64), "negative to unsigned refused");
    CHECK(gguf_get_f64(f, "test.f64", &f64) && f64 == 0.5, "float64");
    CHECK(gguf_get_f32(f, "test.f64", &f32) && f32 == 0.5f, "exact float64 as f32");
    CHECK(!gguf_get_u32(f, "test.f64", &u32) && !gguf_get_str(f, "test.f64", &s) && !gguf_get_bool(f, "test.f64", &b),
          "wrong types refused");
    CHECK(!gguf_get_u32(f, "nope", &u32) && !gguf_get_str(f, "nope", &s), "absent keys");
    enum gguf_type et;
    uint64_t n, len;
    CHECK(gguf_get_arr(f, "test.strings", &et, &n) && et == GGUF_TYPE_STRING && n == 3, "string array");
    const char *e0 = gguf_get_arr_str(f, "test.strings", 0, &len);
    CHECK(e0 && len == 1 && e0[0] == 'a', "element 0");
    const char *e1 = gguf_get_arr_str(f, "test.strings", 1, &len);
    CHECK(e1 && len == 0, "empty element");
    const char *e2 = gguf_get_arr_str(f, "test.strings", 2, &len);
    CHECK(e2 && len == 6 && !memcmp(e2, "he\0llo", 6), "element with a NUL byte");
    CHECK(!gguf_get_arr_str(f, "test.strings", 3, &len) && !gguf_get_arr_str(f, "test.i32s", 0, &len), "bad index / type");
    CHECK(gguf_get_arr_data(f, "test.strings") == NULL && gguf_get_arr_data(f, "test.nested") == NULL, "no raw data");
    CHECK(gguf_get_arr(f, "test.nested", &et, &n) && et == GGUF_TYPE_ARRAY && n == 2, "array of arrays");
    const void *raw = gguf_get_arr_data(f, "test.i32s");
    int32_t got[3];
    if (raw) memcpy(got, raw, sizeof got);
    CHECK(raw && got[0] == -1 && got[1] == 2 && got[2] == 3, "int32 array data");

    const gguf_tensor *t0 = gguf_find_tensor(f, "t.aa"), *t1 = gguf_find_tensor(f, "t.bb"), *t2 = gguf_find_tensor(f, "t.cc");
    CHECK(t0 && t1 && t2 && !gguf_find_tensor(f, "t.dd") && !gguf_find_tensor(f, NULL), "find_tensor");
    CHECK(gguf_tensor_at(f, 1) == t1 && gguf_tensor_at(f, 3) == NULL && gguf_tensor_at(f, -1) == NULL, "tensor_at");
    if (t0 && t1 && t2) {
        CHECK(t0->type == GGML_TYPE_F32 && t0->n_dims == 1 && t0->ne[0] == 8 && t0->ne[1] == 1 && t0->size == 32, "t.aa");
        CHECK(t1->type == GGML_TYPE_Q8_0 && t1->n_dims == 2 && t1->ne[0] == 32 && t1->ne[1] == 2 && t1->ne[3] == 1 &&
                  t1->size == 68 && t1->offset == 32,
              "t.bb");
        CHECK(t2->type == GGML_TYPE_Q4_K && t2->size == 144 && t2->offset == 128, "t.cc");
        CHECK(t0->data == p + o.data_off && !memcmp(t0->data, base_f32, 32), "t.aa data");
        CHECK((const uint8_t *)t2->data + 144 == p + size, "t.cc ends the file");
    }
    gguf_close(f);

    // The same bytes through a real file and mmap.
    FILE *fp = fopen(tmp_path("base.gguf"), "wb");
    fwrite(p, 1, size, fp);
    fclose(fp);
    f = gguf_open(tmp_path("base.gguf"));
    CHECK(f && gguf_n_kv(f) == 8 && gguf_find_tensor(f, "t.cc") && gguf_find_tensor(f, "t.cc")->offset == 128,
          "open through mmap: %s", vkphi_last_error());
    gguf_close(f);
    gguf_close(NULL);
    free(p);
}

// ---- bad input: every case NULL with one sentence naming the file ----

static void expect_bad(const uint8_t *p, size_t size, const char *phrase, const char *what) {
    gguf_file *f = gguf_open_memory(p, size, "bad.gguf");
    const char *msg = vkphi_last_error();
    CHECK(f == NULL, "%s: opened", what);
    gguf_close(f);
    if (f) return;
    CHECK(!strncmp(msg, "bad.gguf: ", 10), "%s: message does not start with the name: %s", what, msg);
    CHECK(!strchr(msg, '\n') && strlen(msg) > 20, "%s: one sentence: %s", what, msg);
    CHECK(!phrase || strstr(msg, phrase), "%s: message '%s' lacks '%s'", what, msg, phrase);
}

static void test_bad_input(void) {
    struct base_offsets o;
    size_t size;
    uint8_t *base = make_base(&size, &o), *p = malloc(size);

    // Every prefix of the file is bad: the last tensor ends at the last byte.
    for (size_t len = 0; len < size; len++) {
        memcpy(p, base, len);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", len);
        expect_bad(p, len, len < 4 ? "not a GGUF file" : "truncated", what);
    }
    char want[96];
    snprintf(want, sizeof want, "runs past the end of the file (%zu bytes)", size - 1);
    expect_bad(base, size - 1, want, "one byte short");
    expect_bad(NULL, 0, "not a GGUF file", "empty");

#define BAD(patch, phrase, what)                                                                                         \
    do {                                                                                                             \
        memcpy(p, base, size);                                                                                       \
        patch;                                                                                                       \
        expect_bad(p, size, phrase, what);                                                                           \
    } while (0)
    BAD(p[3] = 'X', "bad magic", "wrong magic");
    BAD(patch_u32(p, o.version, 1), "version 1 is not supported", "version 1");
    BAD(patch_u32(p, o.version, 4), "unsupported GGUF version 4", "version 4");
    BAD(patch_u32(p, o.version, 0x03000000), "big-endian", "big-endian");
    BAD(patch_u64(p, o.n_kv, 1ull << 60), "1152921504606846976 metadata keys", "absurd key count");
    BAD(patch_u64(p, o.n_tensors, UINT64_MAX), "tensors", "absurd tensor count");
    BAD(patch_u64(p, o.n_kv, 9), NULL, "one key too many"); // reads the tensor infos as a key
    BAD(patch_u64(p, o.key0_len, 1ull << 62), "truncated: metadata key 0 runs past the end", "key length past the end");
    BAD(patch_u64(p, o.val0_len, 4096), "'general.architecture'", "string value past the end");
    BAD(patch_u32(p, o.key1_type, 13), "unknown value type 13", "unknown value type");
    BAD(patch_u32(p, o.arr_type, 99), "array of unknown value type 99", "unknown element type");
    BAD(patch_u64(p, o.arr_count, 1ull << 61), "claims 2305843009213693952 elements", "absurd array count");
    BAD(patch_u64(p, o.str1_len, UINT64_MAX), "'test.strings'", "string element past the end");
    BAD(patch_u64(p, o.nested_inner, 1ull << 40), "'test.nested'", "inner array count");
    BAD(memcpy(p + o.key2_name, "test.aaa", 8), "'test.aaa' appears twice", "duplicate key");
    BAD(p[o.key2_name + 2] = 0, "NUL byte", "NUL in a key");
    BAD(patch_u32(p, o.align_val, 0), "general.alignment 0 is not a power of two", "alignment 0");
    BAD(patch_u32(p, o.align_val, 48), "not a power of two", "alignment 48");
    BAD(patch_u32(p, o.align_type, GGUF_TYPE_FLOAT32), "general.alignment is not an unsigned 32-bit integer", "alignment type");
    BAD(patch_u32(p, o.align_val, 64), "not a multiple of the alignment 64", "alignment 64 misaligns the tensors");
    BAD(patch_u32(p, o.t_type[0], 31), "tensor 't.aa' has unknown type 31", "removed type 31");
    BAD(patch_u32(p, o.t_type[2], 1000), "unknown type 1000", "unknown type");
    BAD(patch_u32(p, o.t_ndims[0], 0), "'t.aa' has 0 dimensions", "0 dims");
    BAD(patch_u32(p, o.t_ndims[1], 5), "'t.bb' has 5 dimensions", "5 dims");
    BAD((patch_u64(p, o.t_ne[1], 1ull << 40), patch_u64(p, o.t_ne[1] + 8, 1ull << 40)), "product overflows", "dims overflow");
    BAD(patch_u64(p, o.t_ne[0], 1ull << 63), "product overflows", "dim beyond int64");
    BAD(patch_u64(p, o.t_ne[1], 33), "rows of 33 values, not a multiple of the Q8_0 block size 32", "partial block");
    BAD(patch_u64(p, o.t_off[2], 128 + 32 * 1000), "tensor 't.cc' (144 bytes at data offset 32128) runs past the end", "data past end");
    BAD(patch_u64(p, o.t_off[2], UINT64_MAX - 31), "runs past the end", "offset near 2^64");
    BAD(patch_u64(p, o.t_off[1], 33), "data offset 33, not a multiple of the alignment 32", "misaligned offset");
    BAD(memcpy(p + o.t_name[1] + 8, "t.aa", 4), "'t.aa' appears twice", "duplicate tensor");
    BAD(p[o.t_name[2] + 9] = 0, "NUL byte", "NUL in a tensor name");
#undef BAD
    free(p);
    free(base);

    // Arrays nested 8 deep are fine, 9 deep are refused.
    for (int depth = 8; depth <= 9; depth++) {
        struct bb b = {0};
        bput(&b, "GGUF", 4);
        b_u32(&b, 2);
        b_u64(&b, 0);
        b_u64(&b, 1);
        b_str(&b, "deep");
        b_u32(&b, GGUF_TYPE_ARRAY);
        for (int d = 0; d < depth - 1; d++) {
            b_u32(&b, GGUF_TYPE_ARRAY);
            b_u64(&b, 1);
        }
        b_u32(&b, GGUF_TYPE_UINT8);
        b_u64(&b, 0);
        gguf_file *f = gguf_open_memory(b.p, b.n, "bad.gguf");
        if (depth == 8) CHECK(f != NULL && gguf_version(f) == 2, "8 levels of arrays: %s", vkphi_last_error());
        else expect_bad(b.p, b.n, "nests arrays more than 8 deep", "9 levels");
        gguf_close(f);
        free(b.p);
    }

    // Files that are not there or not files.
    CHECK(gguf_open(tmp_path("missing.gguf")) == NULL && strstr(vkphi_last_error(), "missing.gguf: cannot open"),
          "missing file: %s", vkphi_last_error());
    CHECK(gguf_open(tmpdir) == NULL && strstr(vkphi_last_error(), "not a regular file"), "directory: %s", vkphi_last_error());
    CHECK(gguf_open(NULL) == NULL, "NULL path");
    FILE *fp = fopen(tmp_path("empty.gguf"), "wb");
    fclose(fp);
    CHECK(gguf_open(tmp_path("empty.gguf")) == NULL && strstr(vkphi_last_error(), "empty.gguf: not a GGUF file"),
          "empty file: %s", vkphi_last_error());
}

// ---- the writer ----

static void set_all_scalars(gguf_writer *w) {
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_u32(w, "w.u32", 4000000000u);
    gguf_writer_set_i32(w, "w.i32", -7);
    gguf_writer_set_f32(w, "w.f32", 0.1f);
    gguf_writer_set_bool(w, "w.bool", true);
    gguf_writer_set_str(w, "w.str", "héllo\nworld");
    gguf_writer_set_str(w, "general.architecture", "phi3"); // replaces, keeps the position
    const int32_t i32s[4] = {1, -2, 3, -4};
    const float f32s[3] = {0.5f, -1.5f, 1e-8f};
    const uint8_t u8s[5] = {0, 1, 2, 254, 255};
    const uint64_t u64s[2] = {1, UINT64_MAX};
    gguf_writer_set_arr(w, "w.i32s", GGUF_TYPE_INT32, i32s, 4);
    gguf_writer_set_arr(w, "w.f32s", GGUF_TYPE_FLOAT32, f32s, 3);
    gguf_writer_set_arr(w, "w.u8s", GGUF_TYPE_UINT8, u8s, 5);
    gguf_writer_set_arr(w, "w.u64s", GGUF_TYPE_UINT64, u64s, 2);
    gguf_writer_set_arr(w, "w.empty", GGUF_TYPE_FLOAT32, NULL, 0);
    const char *strs[4] = {"one", "", "th\0ree", "four"};
    const uint64_t lens[4] = {3, 0, 6, 4};
    gguf_writer_set_arr_str(w, "w.strs", strs, lens, 4);
    const char *cstrs[2] = {"x y", "z"};
    gguf_writer_set_arr_str(w, "w.cstrs", cstrs, NULL, 2);
}

static void check_all_scalars(const gguf_file *f) {
    const char *s;
    uint32_t u32;
    int32_t i32;
    float f32;
    bool b;
    enum gguf_type et;
    uint64_t n, len;
    CHECK(gguf_find_key(f, "general.architecture") == 0 && gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "phi3"),
          "replaced key in place");
    CHECK(gguf_get_u32(f, "w.u32", &u32) && u32 == 4000000000u && !gguf_get_i32(f, "w.u32", &i32), "u32");
    CHECK(gguf_get_i32(f, "w.i32", &i32) && i32 == -7 && gguf_key_type(f, gguf_find_key(f, "w.i32")) == GGUF_TYPE_INT32, "i32");
    CHECK(gguf_get_f32(f, "w.f32", &f32) && f32 == 0.1f, "f32");
    CHECK(gguf_get_bool(f, "w.bool", &b) && b, "bool");
    CHECK(gguf_get_str(f, "w.str", &s) && !strcmp(s, "héllo\nworld"), "str");
    CHECK(gguf_get_arr(f, "w.i32s", &et, &n) && et == GGUF_TYPE_INT32 && n == 4, "i32 array");
    int32_t i32s[4];
    const void *raw = gguf_get_arr_data(f, "w.i32s");
    if (raw) memcpy(i32s, raw, sizeof i32s);
    CHECK(raw && i32s[1] == -2 && i32s[3] == -4, "i32 array data");
    uint64_t u64s[2];
    raw = gguf_get_arr_data(f, "w.u64s");
    if (raw) memcpy(u64s, raw, sizeof u64s);
    CHECK(raw && u64s[1] == UINT64_MAX, "u64 array data");
    CHECK(gguf_get_arr(f, "w.u8s", &et, &n) && et == GGUF_TYPE_UINT8 && n == 5 && ((const uint8_t *)gguf_get_arr_data(f, "w.u8s"))[3] == 254,
          "u8 array");
    CHECK(gguf_get_arr(f, "w.empty", &et, &n) && et == GGUF_TYPE_FLOAT32 && n == 0, "empty array");
    CHECK(gguf_get_arr(f, "w.strs", &et, &n) && et == GGUF_TYPE_STRING && n == 4, "string array");
    s = gguf_get_arr_str(f, "w.strs", 2, &len);
    CHECK(s && len == 6 && !memcmp(s, "th\0ree", 6), "string with NUL");
    s = gguf_get_arr_str(f, "w.strs", 1, &len);
    CHECK(s && len == 0, "empty string");
    s = gguf_get_arr_str(f, "w.cstrs", 0, &len);
    CHECK(s && len == 3 && !memcmp(s, "x y", 3), "NUL-terminated strings");
}

struct wt {
    const char *name;
    enum ggml_type type;
    uint32_t n_dims;
    uint64_t ne[4];
};

static const struct wt wtensors[] = {
    {"a.f32", GGML_TYPE_F32, 1, {8}},
    {"b.q8_0", GGML_TYPE_Q8_0, 2, {32, 3}},
    {"c.q4_k", GGML_TYPE_Q4_K, 2, {256, 3}},
    {"d.f16", GGML_TYPE_F16, 1, {5}},
    {"e.bf16", GGML_TYPE_BF16, 3, {3, 2, 2}},
    {"f.q6_k", GGML_TYPE_Q6_K, 4, {256, 1, 1, 2}},
    {"g.q8_1", GGML_TYPE_Q8_1, 1, {32}}, // known, not run: the writer and reader handle it all the same
};
enum { N_WT = sizeof wtensors / sizeof wtensors[0] };

static uint64_t wt_size(const struct wt *t) {
    uint64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    return quant_row_bytes(t->type, t->ne[0]) * rows;
}

static void fill(uint8_t *p, uint64_t n, int seed) {
    for (uint64_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 31 + (uint64_t)seed * 7 + 1);
}

// Writes the test file with every value type, the base file's keys copied over
// (arrays of arrays included) and the tensors above; alignment as asked (0: default).
static int write_test_file(const char *path, uint32_t alignment) {
    struct base_offsets o;
    size_t size;
    uint8_t *base = make_base(&size, &o);
    gguf_file *src = gguf_open_memory(base, size, "base.gguf");
    gguf_writer *w = gguf_writer_create();
    set_all_scalars(w);
    if (alignment) gguf_writer_set_u32(w, "general.alignment", alignment);
    for (int64_t i = 0; i < gguf_n_kv(src); i++)
        if (strcmp(gguf_key_name(src, i), "general.alignment") && strcmp(gguf_key_name(src, i), "general.architecture"))
            gguf_writer_copy_kv(w, src, i);
    for (int t = 0; t < N_WT; t++)
        gguf_writer_add_tensor(w, wtensors[t].name, wtensors[t].type, wtensors[t].n_dims, wtensors[t].ne);
    int rc = gguf_writer_begin(w, path);
    for (int t = 0; t < N_WT && !rc; t++) {
        uint64_t n = wt_size(&wtensors[t]);
        uint8_t *d = malloc(n);
        fill(d, n, t);
        rc = gguf_writer_write_data(w, d, n);
        free(d);
    }
    if (!rc) rc = gguf_writer_finish(w);
    gguf_writer_free(w);
    gguf_close(src);
    free(base);
    return rc;
}

static void check_test_file(const char *path, uint32_t alignment) {
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "reopen %s: %s", path, vkphi_last_error());
    if (!f) return;
    check_all_scalars(f);
    CHECK(gguf_alignment(f) == (alignment ? alignment : 32), "alignment %u", gguf_alignment(f));
    CHECK((gguf_find_key(f, "general.alignment") >= 0) == (alignment != 0), "general.alignment written only when set");
    CHECK(gguf_version(f) == 3, "version 3");
    // The copied keys, arrays of arrays included, read back as in the base file.
    uint32_t u32;
    int32_t i32;
    double f64;
    enum gguf_type et;
    uint64_t n, len;
    CHECK(gguf_get_u32(f, "test.aaa", &u32) && u32 == 200 && gguf_get_i32(f, "test.bbb", &i32) && i32 == -300 &&
              gguf_get_f64(f, "test.f64", &f64) && f64 == 0.5,
          "copied scalars");
    const char *s = gguf_get_arr_str(f, "test.strings", 2, &len);
    CHECK(s && len == 6 && !memcmp(s, "he\0llo", 6), "copied string array");
    CHECK(gguf_get_arr(f, "test.nested", &et, &n) && et == GGUF_TYPE_ARRAY && n == 2, "copied array of arrays");
    CHECK(gguf_n_tensors(f) == N_WT, "tensor count");
    uint64_t end = 0;
    const uint32_t a = gguf_alignment(f);
    for (int t = 0; t < N_WT; t++) {
        const gguf_tensor *g = gguf_tensor_at(f, t);
        const struct wt *w = &wtensors[t];
        const uint64_t sz = wt_size(w);
        CHECK(!strcmp(g->name, w->name) && g->type == (uint32_t)w->type && g->n_dims == w->n_dims, "tensor %d header", t);
        for (uint32_t d = 0; d < 4; d++) CHECK(g->ne[d] == (d < w->n_dims ? w->ne[d] : 1), "tensor %s dim %u", w->name, d);
        CHECK(g->size == sz && g->offset == end && g->offset % a == 0, "tensor %s size %llu offset %llu", w->name,
              (unsigned long long)g->size, (unsigned long long)g->offset);
        CHECK((uintptr_t)g->data % a == 0, "tensor %s data aligned in memory", w->name);
        uint8_t *want = malloc(sz);
        fill(want, sz, t);
        CHECK(!memcmp(g->data, want, sz), "tensor %s data", w->name);
        free(want);
        end = g->offset + (sz + a - 1) / a * a;
    }
    CHECK(gguf_file_size(f) == gguf_data_offset(f) + end, "file size %llu = data %llu + %llu (last tensor padded)",
          (unsigned long long)gguf_file_size(f), (unsigned long long)gguf_data_offset(f), (unsigned long long)end);
    gguf_close(f);
}

static void test_writer(void) {
    CHECK(write_test_file(tmp_path("w32.gguf"), 0) == VKPHI_OK, "write: %s", vkphi_last_error());
    check_test_file(tmp_path("w32.gguf"), 0);
    CHECK(write_test_file(tmp_path("w64.gguf"), 64) == VKPHI_OK, "write aligned 64: %s", vkphi_last_error());
    check_test_file(tmp_path("w64.gguf"), 64);
    CHECK(write_test_file(tmp_path("w4096.gguf"), 4096) == VKPHI_OK, "write aligned 4096: %s", vkphi_last_error());
    check_test_file(tmp_path("w4096.gguf"), 4096);

    // Mistakes surface at begin / write / finish with a sentence.
    const uint64_t ne_bad[1] = {100}, ne8[1] = {8};
    gguf_writer *w = gguf_writer_create();
    gguf_writer_add_tensor(w, "partial", GGML_TYPE_Q4_K, 1, ne_bad);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "'partial'"),
          "partial block: %s", vkphi_last_error());
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_add_tensor(w, "t", GGML_TYPE_F32, 1, ne8);
    gguf_writer_add_tensor(w, "t", GGML_TYPE_F32, 1, ne8);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "added twice"),
          "duplicate tensor: %s", vkphi_last_error());
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_add_tensor(w, "t", (enum ggml_type)31, 1, ne8);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG, "unknown type");
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_set_arr(w, "bad", GGUF_TYPE_STRING, "x", 1);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "'bad'"),
          "string elements through set_arr: %s", vkphi_last_error());
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_set_i32(w, "general.alignment", 64);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "uint32"),
          "alignment type: %s", vkphi_last_error());
    gguf_writer_free(w);

    w = gguf_writer_create();
    gguf_writer_set_u32(w, "general.alignment", 24);
    CHECK(gguf_writer_begin(w, tmp_path("x.gguf")) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "power of two"),
          "alignment 24: %s", vkphi_last_error());
    gguf_writer_free(w);

    w = gguf_writer_create();
    CHECK(gguf_writer_begin(w, "/nonexistent-dir/x.gguf") == VKPHI_ERR_IO &&
              strstr(vkphi_last_error(), "/nonexistent-dir/x.gguf: cannot create"),
          "unwritable path: %s", vkphi_last_error());
    gguf_writer_free(w);

    float data[8] = {0};
    w = gguf_writer_create();
    gguf_writer_add_tensor(w, "a", GGML_TYPE_F32, 1, ne8);
    gguf_writer_add_tensor(w, "b", GGML_TYPE_F32, 1, ne8);
    CHECK(gguf_writer_write_data(w, data, 32) == VKPHI_ERR_ARG, "data before begin");
    CHECK(gguf_writer_begin(w, tmp_path("short.gguf")) == VKPHI_OK, "begin");
    CHECK(gguf_writer_write_data(w, data, 16) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "needs 32 bytes"),
          "wrong size: %s", vkphi_last_error());
    CHECK(gguf_writer_write_data(w, data, 32) == VKPHI_OK, "first tensor");
    CHECK(gguf_writer_finish(w) == VKPHI_ERR_ARG && strstr(vkphi_last_error(), "only 1 of 2 tensors"),
          "missing tensor: %s", vkphi_last_error());
    gguf_writer_free(w);
    // What was written is a truncated file, and the reader says so.
    CHECK(gguf_open(tmp_path("short.gguf")) == NULL && strstr(vkphi_last_error(), "tensor 'b'"), "short file: %s",
          vkphi_last_error());

    w = gguf_writer_create();
    gguf_writer_add_tensor(w, "a", GGML_TYPE_F32, 1, ne8);
    CHECK(gguf_writer_begin(w, tmp_path("extra.gguf")) == VKPHI_OK && gguf_writer_write_data(w, data, 32) == VKPHI_OK,
          "one tensor");
    CHECK(gguf_writer_write_data(w, data, 32) == VKPHI_ERR_ARG, "more data than tensors");
    CHECK(gguf_writer_finish(w) == VKPHI_OK, "finish");
    gguf_writer_free(w);
    gguf_writer_free(NULL);
}

// ---- the shared reference files ----

static void check_reference_model(const char *dir, const char *file, const char *const *types) {
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/%s", dir, file);
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s: %s", file, vkphi_last_error());
    if (!f) return;
    uint32_t v;
    float eps, base;
    const char *s;
    CHECK(gguf_get_str(f, "general.architecture", &s) && !strcmp(s, "phi3"), "%s: phi3", file);
    CHECK(gguf_get_u32(f, "phi3.block_count", &v) && v == 3, "%s: 3 layers", file);
    CHECK(gguf_get_u32(f, "phi3.embedding_length", &v) && v == 512, "%s: hidden 512", file);
    CHECK(gguf_get_u32(f, "phi3.feed_forward_length", &v) && v == 1536, "%s: ffn 1536", file);
    CHECK(gguf_get_u32(f, "phi3.attention.head_count", &v) && v == 4, "%s: 4 heads", file);
    CHECK(gguf_get_u32(f, "phi3.attention.head_count_kv", &v) && v == 1, "%s: 1 KV head", file);
    CHECK(gguf_get_u32(f, "phi3.rope.dimension_count", &v) && v == 128, "%s: rope 128", file);
    CHECK(gguf_get_f32(f, "phi3.rope.freq_base", &base) && base == 250000.0f, "%s: rope base", file);
    CHECK(gguf_get_f32(f, "phi3.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f, "%s: eps", file);
    enum gguf_type et;
    uint64_t n;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n) && et == GGUF_TYPE_STRING && n == 4192, "%s: vocabulary", file);
    CHECK(gguf_n_kv(f) == 25 && gguf_n_tensors(f) == 21, "%s: %lld keys, %lld tensors", file, (long long)gguf_n_kv(f),
          (long long)gguf_n_tensors(f));
    // Every tensor: name, shape, and the type this file is expected to use for it.
    static const struct { const char *name; uint64_t ne0, ne1; } shapes[] = {
        {"token_embd.weight", 512, 4192}, {"output.weight", 512, 4192}, {"output_norm.weight", 512, 1},
        {"attn_norm", 512, 1},           {"attn_qkv", 512, 768},       {"attn_output", 512, 512},
        {"ffn_norm", 512, 1},            {"ffn_up", 512, 3072},        {"ffn_down", 1536, 512},
    };
    int found = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        for (int l = 0; l < (k < 3 ? 1 : 3); l++) {
            char name[64];
            if (k < 3) snprintf(name, sizeof name, "%s", shapes[k].name);
            else snprintf(name, sizeof name, "blk.%d.%s.weight", l, shapes[k].name);
            const gguf_tensor *t = gguf_find_tensor(f, name);
            CHECK(t != NULL, "%s: %s present", file, name);
            if (!t) continue;
            found++;
            CHECK(t->ne[0] == shapes[k].ne0 && t->ne[1] == shapes[k].ne1 && t->ne[2] == 1, "%s: %s shape", file, name);
            const char *want = strstr(name, "norm") ? "F32" : types[0];
            for (int e = 1; types[e]; e += 2) // types: default, then (name, type) pairs
                if (!strcmp(types[e], name)) want = types[e + 1];
            CHECK(!strcmp(quant_type_name(t->type), want), "%s: %s is %s, want %s", file, name, quant_type_name(t->type), want);
            CHECK(t->offset + t->size <= gguf_file_size(f) - gguf_data_offset(f), "%s: %s inside the file", file, name);
        }
    }
    CHECK(found == 21, "%s: all 21 tensors found", file);
    CHECK(model_check(f) == VKPHI_OK, "%s: runnable: %s", file, vkphi_last_error());
    gguf_close(f);
}

static void test_reference_files(const char *dir) {
    static const char *const f16[] = {"F16", NULL};
    static const char *const q8[] = {"Q8_0", NULL};
    static const char *const q40[] = {"Q4_0", "output.weight", "Q6_K", NULL};
    static const char *const q4km[] = {"Q4_K", "output.weight", "Q6_K", "blk.2.attn_qkv.weight", "Q6_K",
                                       "blk.2.ffn_down.weight", "Q6_K", NULL};
    check_reference_model(dir, "tiny-phi4-F16.gguf", f16);
    check_reference_model(dir, "tiny-phi4-Q8_0.gguf", q8);
    check_reference_model(dir, "tiny-phi4-Q4_0.gguf", q40);
    check_reference_model(dir, "tiny-phi4-Q4_K_M.gguf", q4km);

    // The tokenizer-only file: 100352 tokens, 100000 merges, no tensors; not runnable.
    char path[1024];
    snprintf(path, sizeof path, "%s/phi4-tokenizer.gguf", dir);
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "tokenizer file: %s", vkphi_last_error());
    if (!f) return;
    enum gguf_type et;
    uint64_t n, len;
    CHECK(gguf_n_tensors(f) == 0 && gguf_n_kv(f) == 12, "tokenizer file counts");
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n) && et == GGUF_TYPE_STRING && n == 100352, "100352 tokens");
    CHECK(gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n) && et == GGUF_TYPE_STRING && n == 100000, "100000 merges");
    CHECK(gguf_get_arr(f, "tokenizer.ggml.token_type", &et, &n) && et == GGUF_TYPE_INT32 && n == 100352 &&
              gguf_get_arr_data(f, "tokenizer.ggml.token_type"),
          "token types");
    const char *s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", 0, &len);
    CHECK(s && len == 1 && s[0] == '!', "token 0 is '!'");
    s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", 100264, &len);
    CHECK(s && len == 12 && !memcmp(s, "<|im_start|>", 12), "token 100264 is <|im_start|>");
    s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", 100265, &len);
    CHECK(s && len == 10 && !memcmp(s, "<|im_end|>", 10), "token 100265 is <|im_end|>");
    uint64_t spaced = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        s = gguf_get_arr_str(f, "tokenizer.ggml.merges", i, &len);
        spaced += s && memchr(s, ' ', len) != NULL;
    }
    CHECK(spaced == 100000, "every merge is 'a b' (%llu)", (unsigned long long)spaced);
    uint32_t bos, eos;
    CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos) && bos == 100257 &&
              gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos) && eos == 100265,
          "bos / eos");
    CHECK(model_check(f) == VKPHI_ERR_FORMAT && strstr(vkphi_last_error(), "phi3.block_count is missing"),
          "tokenizer file is not a model: %s", vkphi_last_error());

    // Copy every key into a new file; all 100352 tokens come back the same.
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    CHECK(gguf_writer_begin(w, tmp_path("tok.gguf")) == VKPHI_OK && gguf_writer_finish(w) == VKPHI_OK, "copy: %s",
          vkphi_last_error());
    gguf_writer_free(w);
    gguf_file *g = gguf_open(tmp_path("tok.gguf"));
    CHECK(g && gguf_n_kv(g) == gguf_n_kv(f), "copy reopens: %s", vkphi_last_error());
    uint64_t same = 0;
    for (uint64_t i = 0; g && i < 100352; i++) {
        uint64_t l1, l2;
        const char *a = gguf_get_arr_str(f, "tokenizer.ggml.tokens", i, &l1), *b = gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &l2);
        same += a && b && l1 == l2 && !memcmp(a, b, l1);
    }
    CHECK(same == 100352, "copied tokens equal (%llu)", (unsigned long long)same);
    for (int64_t i = 0; g && i < gguf_n_kv(f); i++)
        CHECK(!strcmp(gguf_key_name(f, i), gguf_key_name(g, i)) && gguf_key_type(f, i) == gguf_key_type(g, i), "key %lld",
              (long long)i);
    gguf_close(g);
    gguf_close(f);
}

// ---- model_check on generated models ----

struct mopt {
    const char *arch, *omit_key, *omit_tensor, *bad_shape, *unrun_tensor, *rope_scaling;
    uint32_t n_head, n_head_kv, rope_dim, sliding, n_tokens, vocab_size;
    uint32_t matrix_type; // 0: F16
    int longrope;         // 1: only rope_factors_long; 2: both factor tensors (ones) and the original context
    bool split_qkv, split_gate_up, tied;
};

// A phi3 model (keys under the architecture's prefix) with hidden 64, 2 layers, 2
// heads of 32 (1 KV head unless asked), FFN 96, vocabulary 8; all weights zero,
// LongRoPE factors one.
static int make_model(const char *path, struct mopt o) {
    const uint32_t E = 64, F = 96, V = 8, L = 2, H = o.n_head ? o.n_head : 2, HKV = o.n_head_kv ? o.n_head_kv : 1;
    const uint32_t hd = E / H;
    gguf_writer *w = gguf_writer_create();
    const char *arch = o.arch ? o.arch : "phi3";
    gguf_writer_set_str(w, "general.architecture", arch);
    const struct { const char *k; uint32_t v; } u32s[] = {
        {"block_count", L},          {"embedding_length", E},        {"feed_forward_length", F},
        {"attention.head_count", H}, {"attention.head_count_kv", HKV}, {"context_length", 4096},
        {"rope.dimension_count", o.rope_dim ? o.rope_dim : hd}, {"attention.sliding_window", o.sliding},
        {"rope.scaling.original_context_length", o.longrope == 2 ? 256 : 0}, {"vocab_size", o.vocab_size},
    };
    char k[96];
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
        snprintf(k, sizeof k, "%s.%s", arch, u32s[i].k);
        bool optional = strstr(k, "original_context") || strstr(k, "vocab_size"); // written only when set
        if ((!o.omit_key || strcmp(o.omit_key, k)) && (u32s[i].v || !optional))
            gguf_writer_set_u32(w, k, u32s[i].v);
    }
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!o.omit_key || strcmp(o.omit_key, k)) gguf_writer_set_f32(w, k, 1e-5f);
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    gguf_writer_set_f32(w, k, 250000.0f);
    snprintf(k, sizeof k, "%s.rope.scaling.type", arch);
    if (o.rope_scaling) gguf_writer_set_str(w, k, o.rope_scaling);
    const uint32_t nt = o.n_tokens ? o.n_tokens : V;
    const char *toks[16];
    for (uint32_t i = 0; i < nt && i < 16; i++) toks[i] = "t";
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, nt);

    struct { char name[64]; uint64_t ne0, ne1; } t[40];
    int n = 0;
#define ADD(nm, a, b) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].ne0 = (a), t[n].ne1 = (b), n++)
    ADD("token_embd.weight", E, V);
    ADD("output_norm.weight", E, 1);
    if (!o.tied) ADD("output.weight", E, V);
    if (o.longrope) ADD("rope_factors_long.weight", (o.rope_dim ? o.rope_dim : hd) / 2, 1);
    if (o.longrope == 2) ADD("rope_factors_short.weight", (o.rope_dim ? o.rope_dim : hd) / 2, 1);
    for (uint32_t l = 0; l < L; l++) {
        char nm[64];
#define LADD(s, a, b) (snprintf(nm, sizeof nm, "blk.%u." s ".weight", l), ADD(nm, a, b))
        LADD("attn_norm", E, 1);
        if (o.split_qkv) {
            LADD("attn_q", E, H * hd);
            LADD("attn_k", E, HKV * hd);
            LADD("attn_v", E, HKV * hd);
        } else {
            LADD("attn_qkv", E, (H + 2 * HKV) * hd);
        }
        LADD("attn_output", H * hd, E);
        LADD("ffn_norm", E, 1);
        if (o.split_gate_up) {
            LADD("ffn_gate", E, F);
            LADD("ffn_up", E, F);
        } else {
            LADD("ffn_up", E, 2 * F);
        }
        LADD("ffn_down", F, E);
#undef LADD
    }
#undef ADD
    uint32_t types[40];
    for (int i = 0; i < n; i++) {
        if (o.bad_shape && !strcmp(t[i].name, o.bad_shape)) t[i].ne1 += 32;
        types[i] = strstr(t[i].name, "norm") || strstr(t[i].name, "rope") ? GGML_TYPE_F32
                   : o.matrix_type                                          ? o.matrix_type
                                                                            : GGML_TYPE_F16;
        if (o.unrun_tensor && !strcmp(t[i].name, o.unrun_tensor)) types[i] = GGML_TYPE_Q8_1;
        if (o.omit_tensor && !strcmp(t[i].name, o.omit_tensor)) continue;
        const uint64_t ne[2] = {t[i].ne0, t[i].ne1};
        gguf_writer_add_tensor(w, t[i].name, (enum ggml_type)types[i], t[i].ne1 > 1 ? 2 : 1, ne);
    }
    int rc = gguf_writer_begin(w, path);
    static uint8_t zeros[64 * 256 * 4];
    static const float ones[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                   1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < n && !rc; i++)
        if (!o.omit_tensor || strcmp(t[i].name, o.omit_tensor))
            rc = gguf_writer_write_data(w, strstr(t[i].name, "rope_factors") ? (const void *)ones : zeros,
                                        quant_row_bytes(types[i], t[i].ne0) * t[i].ne1);
    if (!rc) rc = gguf_writer_finish(w);
    gguf_writer_free(w);
    return rc;
}

static void expect_check(struct mopt o, int want_rc, const char *phrase, const char *what) {
    const char *path = tmp_path("model.gguf");
    CHECK(make_model(path, o) == VKPHI_OK, "%s: write: %s", what, vkphi_last_error());
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "%s: open: %s", what, vkphi_last_error());
    if (!f) return;
    int rc = model_check(f);
    CHECK(rc == want_rc, "%s: model_check %d, want %d (%s)", what, rc, want_rc, vkphi_last_error());
    if (want_rc) {
        CHECK(strstr(vkphi_last_error(), phrase) != NULL, "%s: message '%s' lacks '%s'", what, vkphi_last_error(), phrase);
        CHECK(!strncmp(vkphi_last_error(), path, strlen(path)), "%s: message names the file: %s", what, vkphi_last_error());
    }
    gguf_close(f);
}

static void test_model_check(void) {
    expect_check((struct mopt){0}, VKPHI_OK, NULL, "fused model");
    expect_check((struct mopt){.split_qkv = true, .split_gate_up = true}, VKPHI_OK, NULL, "separate q/k/v and gate/up");
    expect_check((struct mopt){.tied = true}, VKPHI_OK, NULL, "tied output");
    expect_check((struct mopt){.matrix_type = GGML_TYPE_Q4_0}, VKPHI_OK, NULL, "Q4_0 matrices");
    expect_check((struct mopt){.n_head = 4, .n_head_kv = 4}, VKPHI_OK, NULL, "no GQA");
    expect_check((struct mopt){.omit_key = "phi3.attention.head_count_kv", .n_head_kv = 2}, VKPHI_OK, NULL, "head_count_kv absent");
    expect_check((struct mopt){.arch = "gemma"}, VKPHI_ERR_UNSUPPORTED, "architecture 'gemma' is not supported", "gemma");
    expect_check((struct mopt){.arch = "llama", .split_qkv = true, .split_gate_up = true}, VKPHI_OK, NULL, "llama layout");
    expect_check((struct mopt){.arch = "llama", .omit_key = "llama.block_count"}, VKPHI_ERR_FORMAT,
                 "required key llama.block_count is missing", "llama keys are read under llama.");
    expect_check((struct mopt){.arch = "llama", .longrope = 2}, VKPHI_ERR_UNSUPPORTED, "LongRoPE tensors in a llama file",
                 "LongRoPE in the llama layout");
    expect_check((struct mopt){.arch = "llama", .rope_scaling = "linear"}, VKPHI_ERR_UNSUPPORTED,
                 "RoPE scaling 'linear' (llama.rope.scaling.type) is not supported", "linear RoPE scaling");
    expect_check((struct mopt){.arch = "llama", .rope_scaling = "none", .vocab_size = 8}, VKPHI_OK, NULL, "llama vocab_size");
    expect_check((struct mopt){.arch = "llama", .vocab_size = 9}, VKPHI_ERR_FORMAT,
                 "llama.vocab_size is 9 but token_embd.weight has 8 rows", "llama vocab_size mismatch");
    expect_check((struct mopt){.longrope = 2, .rope_scaling = "longrope"}, VKPHI_OK, NULL, "rope.scaling.type longrope");
    expect_check((struct mopt){.rope_scaling = "longrope"}, VKPHI_ERR_UNSUPPORTED, "RoPE scaling 'longrope'",
                 "longrope without factor tensors");
    expect_check((struct mopt){.longrope = 2, .rope_scaling = "yarn"}, VKPHI_ERR_UNSUPPORTED, "RoPE scaling 'yarn'", "yarn");
    expect_check((struct mopt){.omit_key = "phi3.block_count"}, VKPHI_ERR_FORMAT, "required key phi3.block_count is missing",
                 "no block_count");
    expect_check((struct mopt){.omit_key = "phi3.attention.layer_norm_rms_epsilon"}, VKPHI_ERR_FORMAT,
                 "layer_norm_rms_epsilon is missing", "no eps");
    expect_check((struct mopt){.rope_dim = 16}, VKPHI_OK, NULL, "partial rotary");
    expect_check((struct mopt){.rope_dim = 34}, VKPHI_ERR_FORMAT, "it must be even and at most the head dimension 32",
                 "rotary dims past the head");
    expect_check((struct mopt){.longrope = 1}, VKPHI_ERR_FORMAT, "'rope_factors_short.weight' is missing", "LongRoPE");
    expect_check((struct mopt){.longrope = 2, .rope_dim = 16, .tied = true, .sliding = 8192}, VKPHI_OK, NULL,
                 "Phi-4-mini's features");
    expect_check((struct mopt){.longrope = 2, .omit_key = "phi3.rope.scaling.original_context_length"}, VKPHI_ERR_FORMAT,
                 "required key phi3.rope.scaling.original_context_length is missing", "LongRoPE without its context");
    expect_check((struct mopt){.sliding = 2048}, VKPHI_ERR_UNSUPPORTED, "sliding-window attention (window 2048)", "sliding");
    expect_check((struct mopt){.sliding = 4096}, VKPHI_OK, NULL, "a window as long as the context");
    expect_check((struct mopt){.n_head = 4, .n_head_kv = 3}, VKPHI_ERR_FORMAT, "4 query heads cannot be split evenly over 3",
                 "heads");
    expect_check((struct mopt){.n_head = 3}, VKPHI_ERR_FORMAT, "not a multiple of the 3 heads", "head dim");
    expect_check((struct mopt){.omit_tensor = "blk.1.ffn_down.weight"}, VKPHI_ERR_FORMAT,
                 "tensor 'blk.1.ffn_down.weight' is missing", "missing tensor");
    expect_check((struct mopt){.omit_tensor = "output_norm.weight"}, VKPHI_ERR_FORMAT, "'output_norm.weight' is missing",
                 "missing norm");
    expect_check((struct mopt){.omit_tensor = "blk.0.attn_qkv.weight"}, VKPHI_ERR_FORMAT,
                 "layer 0 has neither 'blk.0.attn_qkv.weight' nor 'blk.0.attn_q.weight'", "no attention weights");
    expect_check((struct mopt){.split_qkv = true, .omit_tensor = "blk.1.attn_v.weight"}, VKPHI_ERR_FORMAT,
                 "'blk.1.attn_v.weight' is missing", "missing v");
    expect_check((struct mopt){.bad_shape = "blk.0.attn_qkv.weight"}, VKPHI_ERR_FORMAT,
                 "tensor 'blk.0.attn_qkv.weight' has shape [64, 160], expected [64, 128]", "bad qkv shape");
    expect_check((struct mopt){.bad_shape = "blk.1.ffn_up.weight"}, VKPHI_ERR_FORMAT, "expected [64, 192]", "bad up shape");
    expect_check((struct mopt){.n_tokens = 9}, VKPHI_ERR_FORMAT, "the tokenizer has 9 tokens but token_embd.weight has 8 rows",
                 "vocabulary mismatch");
    expect_check((struct mopt){.unrun_tensor = "blk.1.attn_output.weight"}, VKPHI_ERR_UNSUPPORTED,
                 "unsupported type Q8_1 in tensor 'blk.1.attn_output.weight'", "Q8_1 tensor");
    CHECK(model_check(NULL) == VKPHI_ERR_ARG, "NULL file");
}

// ---- the fuzzer's seed files ----

static int write_corpus(const char *dir) {
    char path[1024];
    struct base_offsets o;
    size_t size;
    uint8_t *p = make_base(&size, &o);
    snprintf(path, sizeof path, "%s/base.gguf", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, size, fp) != size || fclose(fp)) {
        fprintf(stderr, "cannot write %s\n", path);
        free(p);
        return 1;
    }
    free(p);
    snprintf(path, sizeof path, "%s/writer.gguf", dir);
    int rc = write_test_file(path, 0);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    if (!rc) rc = make_model(path, (struct mopt){.split_qkv = true, .matrix_type = GGML_TYPE_Q4_0});
    snprintf(path, sizeof path, "%s/mini.gguf", dir); // Phi-4-mini's features
    if (!rc)
        rc = make_model(path, (struct mopt){.longrope = 2, .rope_dim = 16, .tied = true, .sliding = 8192,
                                            .matrix_type = GGML_TYPE_Q4_0});
    snprintf(path, sizeof path, "%s/llama.gguf", dir);
    if (!rc)
        rc = make_model(path, (struct mopt){.arch = "llama", .split_qkv = true, .split_gate_up = true,
                                            .matrix_type = GGML_TYPE_Q4_0});
    if (rc) {
        fprintf(stderr, "%s\n", vkphi_last_error());
        return 1;
    }
    printf("wrote base.gguf, writer.gguf, model.gguf, mini.gguf and llama.gguf to %s\n", dir);
    return 0;
}

// The committed seed files must stay valid.
static void test_corpus(void) {
    char dirpath[1024];
    snprintf(dirpath, sizeof dirpath, "%s/../fuzz/corpus", test_data_dir());
    DIR *d = opendir(dirpath);
    if (!d) {
        printf("no fuzz corpus at %s\n", dirpath);
        return;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
        gguf_file *f = gguf_open(path);
        CHECK(f != NULL, "corpus file %s: %s", e->d_name, vkphi_last_error());
        CHECK(!f || gguf_file_size(f) <= 65536, "corpus file %s under 64 KiB", e->d_name);
        gguf_close(f);
        n++;
    }
    closedir(d);
    CHECK(n >= 3, "at least 3 corpus files (%d)", n);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) return write_corpus(argv[2]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_gguf.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_base_file();
    test_bad_input();
    test_writer();
    test_model_check();
    test_corpus();
    const char *dir = test_shared_dir("the reference files");
    if (dir) test_reference_files(dir);
    // Clean up the temporary files.
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        unlink(tmp_path(e->d_name));
    }
    if (d) closedir(d);
    rmdir(tmpdir);
    return test_finish();
}
