// SPDX-License-Identifier: MIT
#include "quant_types.h"

#include <ctype.h>
#include <stddef.h>

struct type_info {
    const char *name;
    uint32_t blck;  // values per block
    uint32_t bytes; // bytes per block
    bool runs;
};

static const struct type_info types[GGML_TYPE_COUNT] = {
#define QUANT_TYPE_INFO(name, id, blck, bytes, runs) [id] = {#name, blck, bytes, false QUANT_IF_RUNS(runs, || true)},
    QUANT_TYPES(QUANT_TYPE_INFO)
#undef QUANT_TYPE_INFO
};

bool quant_type_known(uint32_t type) { return type < GGML_TYPE_COUNT && types[type].blck != 0; }

bool quant_type_supported(uint32_t type) { return quant_type_known(type) && types[type].runs; }

const char *quant_type_name(uint32_t type) { return quant_type_known(type) ? types[type].name : "unknown"; }

int quant_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char *a = types[t].name, *b = name;
        if (!a) continue;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return t;
    }
    return -1;
}

uint32_t quant_block_elems(uint32_t type) { return quant_type_known(type) ? types[type].blck : 0; }
uint32_t quant_block_bytes(uint32_t type) { return quant_type_known(type) ? types[type].bytes : 0; }

double quant_bits_per_weight(uint32_t type) {
    return quant_type_known(type) ? 8.0 * types[type].bytes / types[type].blck : 0;
}

uint64_t quant_row_bytes(uint32_t type, uint64_t n) {
    if (!quant_type_known(type) || n % types[type].blck) return 0;
    uint64_t blocks = n / types[type].blck;
    if (blocks > UINT64_MAX / types[type].bytes) return 0;
    return blocks * types[type].bytes;
}
