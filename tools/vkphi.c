// SPDX-License-Identifier: MIT
// vkphi: run Microsoft's Phi-4 on any GPU with a Vulkan driver.
#include <stdio.h>
#include <string.h>

#include "subcommands.h"
#include "vkphi.h"

struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"run", cmd_run, "generate text from a prompt, streamed as it is written"},
    {"chat", cmd_chat, "chat with the model in the terminal"},
    {"serve", cmd_serve, "serve the model over HTTP with OpenAI's API"},
    {"devices", cmd_devices, "list the Vulkan devices and what they support"},
    {"kernels", cmd_kernels, "compile every kernel for a device: compile times, registers, spills (no run)"},
    {"info", cmd_info, "describe a GGUF model and whether vkphi can run it"},
    {"plan", cmd_plan, "where a model's memory goes on each device, the context that fits, the speed"},
    {"quantize", cmd_quantize, "convert an F32/F16/BF16 model to Q8_0, Q4_K_M, ..."},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"mkmodel", cmd_mkmodel, "write a Phi-4-shaped model with random weights (no download)"},
    {"bench", cmd_bench, "measure tokens/s, bandwidth and roofline, per-kernel GPU time"},
    {"logits", cmd_logits, "write the logits after every token of a token list (for comparisons)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi COMMAND [options]   (vkphi COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nenvironment: VKPHI_DEVICE=N picks a device, VKPHI_VALIDATE=1 turns on the Vulkan validation layer\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("vkphi %s\n", VKPHI_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        int rc = commands[i].main(argc - 1, argv + 1);
        // Under VKPHI_VALIDATE=1 (the test suite) any validation message is a failure.
        if (rc == 0 && device_validation_total() > 0) {
            fprintf(stderr, "vkphi: error: the Vulkan validation layer reported %u messages\n", device_validation_total());
            return 3;
        }
        return rc;
    }
    fprintf(stderr, "vkphi: error: unknown command '%s' (see vkphi --help)\n", argv[1]);
    return 1;
}
