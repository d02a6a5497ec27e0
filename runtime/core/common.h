// SPDX-License-Identifier: MIT
// Shared basics for every runtime module: status codes, the error message of the
// last failure, the one log hook, and half-precision conversion.
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// Every runtime function that can fail returns one of these (0 on success) and
// leaves a one-sentence explanation in vkphi_last_error().
enum {
    VKPHI_OK = 0,
    VKPHI_ERR_IO = -1,          // file missing, unreadable, short write
    VKPHI_ERR_FORMAT = -2,      // malformed or inconsistent input file
    VKPHI_ERR_UNSUPPORTED = -3, // valid input we do not run (yet)
    VKPHI_ERR_NOMEM = -4,       // host or device memory exhausted / would not fit
    VKPHI_ERR_VULKAN = -5,      // a Vulkan call failed
    VKPHI_ERR_ARG = -6,         // bad argument from the caller
};

// Records the message (printf-style) for vkphi_last_error() and returns `code`,
// so failures read `return vkphi_fail(VKPHI_ERR_FORMAT, "%s: bad magic", path);`.
int vkphi_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *vkphi_last_error(void); // thread-local; "" when none

enum vkphi_log_level { VKPHI_LOG_DEBUG, VKPHI_LOG_INFO, VKPHI_LOG_WARN, VKPHI_LOG_ERROR };
typedef void (*vkphi_log_fn)(enum vkphi_log_level level, const char *msg, void *user);
// The runtime never prints by itself: it logs here. Default: WARN and above to stderr.
void vkphi_set_log(vkphi_log_fn fn, void *user);
void vkphi_set_log_level(enum vkphi_log_level min_level);
void vkphi_log(enum vkphi_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// IEEE half and bfloat16 <-> f32 (round to nearest even).
float vkphi_f16_to_f32(uint16_t h);
uint16_t vkphi_f32_to_f16(float f);
float vkphi_bf16_to_f32(uint16_t h);
uint16_t vkphi_f32_to_bf16(float f);

// Monotonic seconds, for timing.
double vkphi_now(void);

// Directory for vkphi's cached files ($XDG_CACHE_HOME/vkphi or ~/.cache/vkphi),
// created if missing. Returns 0 or an error.
int vkphi_cache_dir(char *buf, size_t len);
