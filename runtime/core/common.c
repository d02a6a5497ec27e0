// SPDX-License-Identifier: MIT
#include "common.h"

#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Thread_local char last_error[1024];

int vkphi_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *vkphi_last_error(void) { return last_error; }

static void log_stderr(enum vkphi_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "vkphi: %s: %s\n", names[level], msg);
}

static vkphi_log_fn log_fn = log_stderr;
static void *log_user;
static enum vkphi_log_level log_min = VKPHI_LOG_WARN;

void vkphi_set_log(vkphi_log_fn fn, void *user) {
    log_fn = fn ? fn : log_stderr;
    log_user = user;
}

void vkphi_set_log_level(enum vkphi_log_level min_level) { log_min = min_level; }

void vkphi_log(enum vkphi_log_level level, const char *fmt, ...) {
    if (level < log_min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}

float vkphi_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal: renormalize
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t vkphi_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) // inf or nan
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
    if (absx >= 0x477ff000) // rounds to >= 65520: overflow to inf
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000) { // result is subnormal or zero
        if (absx < 0x33000000) return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; // 14..24
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float vkphi_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t vkphi_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); // quiet nan
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

double vkphi_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int vkphi_cache_dir(char *buf, size_t len) {
    const vkphi_env env = vkphi_env_read();
    const char *xdg = env.cache_home, *home = env.home;
    if (xdg && *xdg)
        snprintf(buf, len, "%s/vkphi", xdg);
    else if (home && *home)
        snprintf(buf, len, "%s/.cache/vkphi", home);
    else
        return vkphi_fail(VKPHI_ERR_IO, "neither XDG_CACHE_HOME nor HOME is set: no place for the cache");
    // mkdir -p
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", buf);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return vkphi_fail(VKPHI_ERR_IO, "cannot create the cache directory %s: %s", buf, strerror(errno));
    return VKPHI_OK;
}
