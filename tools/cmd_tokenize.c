// SPDX-License-Identifier: MIT
// vkphi tokenize: the token ids of a text, as a JSON array on one line.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "subcommands.h"
#include "vkphi.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vkphi tokenize -m MODEL [--special] [--pieces] (TEXT | -f FILE)\n\n"
               "Prints the token ids of TEXT, or of the bytes of FILE exactly as they are, as a\n"
               "JSON array on one line.\n\n"
               "  -m, --model MODEL  GGUF file whose tokenizer to use (a tokenizer-only GGUF will do)\n"
               "  -f, --file FILE    tokenize the bytes of FILE ('-' reads standard input)\n"
               "  --special          turn the text of special tokens such as <|im_start|> into those\n"
               "                     tokens (without it they are tokenized as plain text)\n"
               "  --pieces           print [{\"id\":N,\"piece\":\"TEXT\"},...] instead: a piece that is not\n"
               "                     valid UTF-8 by itself (part of a multi-byte character) shows U+FFFD\n"
               "                     for the broken bytes and adds \"bytes\":\"HEX\" with its exact bytes\n"
               "  -h, --help         this help\n");
}

// Writes s (valid UTF-8) as the inside of a JSON string.
static void json_escape(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\b':
            fputs("\\b", stdout);
            break;
        case '\f':
            fputs("\\f", stdout);
            break;
        default:
            if (c < 0x20 || c == 0x7F)
                printf("\\u%04x", c);
            else
                putchar(c);
        }
    }
}

static int print_pieces(const tokenizer *t, const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        size_t raw_len, text_len;
        const char *raw = tokenizer_piece(t, ids[i], &raw_len);
        char *text; // the piece made valid UTF-8: broken bytes become U+FFFD
        if (tokenizer_decode(t, &ids[i], 1, &text, &text_len) != VKPHI_OK) return args_fail("%s", vkphi_last_error());
        printf("%s{\"id\":%d,\"piece\":\"", i ? "," : "", ids[i]);
        json_escape(text, text_len);
        putchar('"');
        if (text_len != raw_len || memcmp(text, raw, raw_len) != 0) {
            fputs(",\"bytes\":\"", stdout);
            for (size_t k = 0; k < raw_len; k++)
                printf("%02x", (unsigned char)raw[k]);
            putchar('"');
        }
        putchar('}');
        free(text);
    }
    puts("]");
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    bool special = false, pieces = false, options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1] != 0) {
            if (!strcmp(a, "--")) {
                options_done = true;
            } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                usage(stdout);
                return 0;
            } else if (!strcmp(a, "--special")) {
                special = true;
            } else if (!strcmp(a, "--pieces")) {
                pieces = true;
            } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
                if (i + 1 >= argc) return args_fail("option '%s' needs a file name", a);
                model = argv[++i];
            } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
                if (i + 1 >= argc) return args_fail("option '%s' needs a file name", a);
                file = argv[++i];
            } else {
                return args_fail("unknown option '%s' for tokenize (see vkphi tokenize --help)", a);
            }
        } else if (text) {
            return args_fail("tokenize takes one TEXT argument; '%s' is one too many (quote the text)", a);
        } else {
            text = a;
        }
    }
    if (!model) return args_fail("tokenize needs a model: -m MODEL (see vkphi tokenize --help)");
    if (!text == !file)
        return args_fail("%s", text ? "give either TEXT or -f FILE, not both" : "nothing to tokenize: give TEXT or -f FILE");

    size_t len = 0;
    char *data = file ? args_read_file(file, &len) : NULL;
    if (file && !data) return 1;
    if (!file) len = strlen(text);

    int rc = 1;
    tokenizer *t = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    gguf_file *f = gguf_open(model);
    if (!f) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    t = tokenizer_create(f);
    gguf_close(f);
    if (!t) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    if (tokenizer_encode(t, file ? data : text, len, special, &ids, &n) != VKPHI_OK) {
        args_fail("%s", vkphi_last_error());
        goto done;
    }
    if (pieces) {
        if (print_pieces(t, ids, n)) goto done;
    } else {
        putchar('[');
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? "," : "", ids[i]);
        puts("]");
    }
    rc = fflush(stdout) == 0 ? 0 : args_fail("cannot write the output");
done:
    free(ids);
    tokenizer_destroy(t);
    free(data);
    return rc;
}
