// SPDX-License-Identifier: MIT
// Build tool: rewrites a SPIR-V module that uses SPV_NV_cooperative_matrix into
// SPV_KHR_cooperative_matrix and writes it as a C header (uint32_t array), like
// glslangValidator --vn does.
//
//   spv_coopmat IN.spv NAME OUT.h
//
// Why: the glslang of Debian 12 (12.0) compiles GL_NV_cooperative_matrix but not
// GL_KHR_cooperative_matrix, while the drivers (Mesa 26's lavapipe, current NVIDIA,
// AMD and Intel drivers) expose VK_KHR_cooperative_matrix. The two extensions have
// the same operations with these differences (SPIR-V registry):
//   OpTypeCooperativeMatrixNV  Component Scope Rows Columns      (5358)
//   OpTypeCooperativeMatrixKHR Component Scope Rows Columns Use  (4456)
//   OpCooperativeMatrixLoadNV  Pointer Stride ColumnMajor(bool)   (5359)
//   OpCooperativeMatrixLoadKHR Pointer Layout(uint) Stride        (4457)
//   Store: the same change (5360 -> 4458); MulAdd 5361 -> 4459; Length 5362 -> 4460;
//   capability CooperativeMatrixNV 5357 -> CooperativeMatrixKHR 6022.
// NV types have no Use (A, B or accumulator); KHR's must say it. The kernels follow a
// convention that makes it readable from the type: rows and columns are the
// specialization constants TM (SpecId 1), TN (2) and TK (3), so A is TM x TK, B is
// TK x TN and the accumulator TM x TN (distinct types even when the values are equal).
// Anything else is refused, so a module this tool cannot map fails the build.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_EXTENSION = 10, OP_CAPABILITY = 17, OP_TYPE_INT = 21, OP_CONSTANT_TRUE = 41, OP_CONSTANT_FALSE = 42,
    OP_CONSTANT = 43, OP_DECORATE = 71,
    OP_TYPE_NV = 5358, OP_LOAD_NV = 5359, OP_STORE_NV = 5360, OP_MULADD_NV = 5361, OP_LENGTH_NV = 5362,
    OP_TYPE_KHR = 4456, OP_LOAD_KHR = 4457, OP_STORE_KHR = 4458, OP_MULADD_KHR = 4459, OP_LENGTH_KHR = 4460,
    CAP_NV = 5357, CAP_KHR = 6022, DECORATION_SPEC_ID = 1,
    SPEC_TM = 1, SPEC_TN = 2, SPEC_TK = 3,
};

static void die(const char *msg, const char *path) {
    fprintf(stderr, "spv_coopmat: %s: %s\n", path, msg);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: spv_coopmat IN.spv NAME OUT.h\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) die("cannot open", argv[1]);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 20 || size % 4) die("not a SPIR-V module", argv[1]);
    uint32_t n = (uint32_t)(size / 4);
    uint32_t *in = malloc(size), *out = malloc(size * 2 + 64);
    if (!in || !out || fread(in, 4, n, f) != n) die("cannot read", argv[1]);
    fclose(f);
    if (in[0] != 0x07230203u) die("not a SPIR-V module (magic)", argv[1]);

    // Pass 1: what the rewrite needs to know.
    uint32_t bound = in[3];
    uint32_t *spec_id = calloc(bound, 4), *bool_val = calloc(bound, 4);
    uint32_t uint_type = 0, uint_const[3] = {0, 0, 0}, first_type = 0;
    for (uint32_t i = 5; i < n;) {
        uint32_t op = in[i] & 0xffff, wc = in[i] >> 16;
        if (wc == 0 || i + wc > n) die("malformed instruction stream", argv[1]);
        const uint32_t *w = in + i;
        if (op == OP_DECORATE && wc == 4 && w[2] == DECORATION_SPEC_ID) spec_id[w[1]] = w[3] + 1; // +1: 0 = none
        if (op == OP_TYPE_INT && w[2] == 32 && w[3] == 0) uint_type = w[1];
        if (op == OP_CONSTANT_TRUE || op == OP_CONSTANT_FALSE) bool_val[w[2]] = op == OP_CONSTANT_TRUE ? 2 : 1;
        if (op == OP_TYPE_NV && !first_type) first_type = i;
        i += wc;
    }
    if (!first_type) die("uses no NV cooperative-matrix type", argv[1]);
    if (!uint_type) die("declares no 32-bit unsigned integer type", argv[1]);

    // Copy, adding the uint constants 0, 1, 2 (the Use and Layout operands) right
    // before the first matrix type: the module's own may come after it, and a type
    // may not refer forward.
    memcpy(out, in, 20);
    uint32_t o = 5;
    for (uint32_t i = 5; i < n;) {
        uint32_t op = in[i] & 0xffff, wc = in[i] >> 16;
        const uint32_t *w = in + i;
        if (i == first_type)
            for (uint32_t v = 0; v < 3; v++) {
                uint_const[v] = bound++;
                out[o++] = (4u << 16) | OP_CONSTANT;
                out[o++] = uint_type;
                out[o++] = uint_const[v];
                out[o++] = v;
            }
        if (op == OP_CAPABILITY && w[1] == CAP_NV) {
            out[o++] = in[i];
            out[o++] = CAP_KHR;
        } else if (op == OP_EXTENSION && !strcmp((const char *)(w + 1), "SPV_NV_cooperative_matrix")) {
            static const char name[] = "SPV_KHR_cooperative_matrix";
            uint32_t words = (uint32_t)(sizeof name + 3) / 4;
            out[o++] = ((1 + words) << 16) | OP_EXTENSION;
            memset(out + o, 0, 4 * words);
            memcpy(out + o, name, sizeof name);
            o += words;
        } else if (op == OP_TYPE_NV) {
            if (wc != 6) die("unexpected cooperative-matrix type", argv[1]);
            uint32_t rows = spec_id[w[4]], cols = spec_id[w[5]], use;
            if (rows == SPEC_TM + 1 && cols == SPEC_TK + 1) use = 0;      // MatrixA
            else if (rows == SPEC_TK + 1 && cols == SPEC_TN + 1) use = 1; // MatrixB
            else if (rows == SPEC_TM + 1 && cols == SPEC_TN + 1) use = 2; // MatrixAccumulator
            else die("a cooperative-matrix type is not TM x TK, TK x TN or TM x TN (constant_id 1, 2, 3)", argv[1]);
            out[o++] = (7u << 16) | OP_TYPE_KHR;
            memcpy(out + o, w + 1, 5 * 4);
            o += 5;
            out[o++] = uint_const[use];
        } else if (op == OP_LOAD_NV || op == OP_STORE_NV) {
            // Load: type id ptr stride colmajor [mem...]; store: ptr obj stride colmajor [mem...].
            uint32_t head = op == OP_LOAD_NV ? 3 : 2; // words before stride, after the opcode word
            if (wc < head + 3) die("unexpected cooperative-matrix load or store", argv[1]);
            uint32_t stride = w[1 + head], major = w[2 + head];
            if (!bool_val[major]) die("a cooperative-matrix load or store whose layout is not a constant", argv[1]);
            out[o++] = (wc << 16) | (op == OP_LOAD_NV ? OP_LOAD_KHR : OP_STORE_KHR);
            memcpy(out + o, w + 1, 4 * head);
            o += head;
            out[o++] = uint_const[bool_val[major] == 2 ? 1 : 0]; // ColumnMajorKHR = 1, RowMajorKHR = 0
            out[o++] = stride;
            memcpy(out + o, w + 3 + head, 4 * (wc - 3 - head));
            o += wc - 3 - head;
        } else if (op == OP_MULADD_NV || op == OP_LENGTH_NV) {
            out[o++] = (wc << 16) | (op == OP_MULADD_NV ? OP_MULADD_KHR : OP_LENGTH_KHR);
            memcpy(out + o, w + 1, 4 * (wc - 1));
            o += wc - 1;
        } else {
            memcpy(out + o, w, 4 * wc);
            o += wc;
        }
        i += wc;
    }
    out[3] = bound;

    FILE *h = fopen(argv[3], "w");
    if (!h) die("cannot write", argv[3]);
    fprintf(h, "// Generated by cmake/spv_coopmat.c from %s.\n#pragma once\nconst uint32_t %s[] = {", argv[1], argv[2]);
    for (uint32_t i = 0; i < o; i++) fprintf(h, "%s0x%08x,", i % 8 ? " " : "\n    ", out[i]);
    fprintf(h, "\n};\n");
    if (fclose(h)) die("cannot write", argv[3]);
    free(in);
    free(out);
    free(spec_id);
    free(bool_val);
    return 0;
}
