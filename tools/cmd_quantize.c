// SPDX-License-Identifier: MIT
// vkphi quantize IN.gguf OUT.gguf TYPE [--imatrix FILE]: convert an F32/F16/BF16
// model to a quantization mix, keeping every metadata key.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "subcommands.h"
#include "vkphi.h"

static void progress(double fraction, void *user) {
    (void)user;
    fprintf(stderr, "\rquantizing: %3.0f%%", fraction * 100);
    if (fraction >= 1) fputc('\n', stderr);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0, threads = 0;
    const char *imatrix = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vkphi quantize IN.gguf OUT.gguf TYPE [--imatrix FILE] [--threads N]\n\n"
                   "Converts a model with F32, F16 or BF16 matrices to TYPE, one of:\n  %s\n"
                   "The mixes choose per tensor as the reference quantizer does (e.g. Q4_K_M keeps\n"
                   "output.weight and some attn_qkv/ffn_down layers in Q6_K). Every metadata key is kept.\n"
                   "--imatrix FILE: an importance matrix from the reference tools (imatrix.dat or its\n"
                   "GGUF format) weights each column's rounding error; the IQ1/IQ2/IQ3 types are not made.\n",
                   quant_recipe_names());
            return 0;
        } else if (!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) {
            if (i + 1 >= argc || (threads = atoi(argv[++i])) <= 0) {
                fprintf(stderr, "vkphi: error: --threads needs a positive number\n");
                return 1;
            }
        } else if (!strcmp(argv[i], "--imatrix")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vkphi: error: --imatrix needs a file\n");
                return 1;
            }
            imatrix = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vkphi: error: unknown option '%s' for quantize (see vkphi quantize --help)\n", argv[i]);
            return 1;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "vkphi: error: quantize takes IN.gguf OUT.gguf TYPE (see vkphi quantize --help)\n");
            return 1;
        }
    }
    if (n_pos != 3) {
        fprintf(stderr, "vkphi: error: quantize takes IN.gguf OUT.gguf TYPE (see vkphi quantize --help)\n");
        return 1;
    }
    if (!strcmp(pos[0], pos[1])) {
        fprintf(stderr, "vkphi: error: the output file must differ from the input file\n");
        return 1;
    }
    double t0 = vkphi_now();
    if (quantize_file(pos[0], pos[1], pos[2], imatrix, threads, isatty(2) ? progress : NULL, NULL) != VKPHI_OK) {
        fprintf(stderr, "vkphi: error: %s\n", vkphi_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", pos[1], quant_recipe_canonical(pos[2]), vkphi_now() - t0);
    return 0;
}
