// SPDX-License-Identifier: MIT
// The environment, read in one place. Every knob vkphi takes from the environment
// is a field here, read when a caller asks (device_create, kernels_create, the cache
// directory), never on a hot path: modules keep what they need in their own policy.
#pragma once

typedef struct vkphi_env {
    const char *device;     // VKPHI_DEVICE: the device index to use
    const char *validate;   // VKPHI_VALIDATE: nonzero turns the Khronos validation layer on
    const char *limits;     // VKPHI_LIMITS: stricter limits than the driver's (tests: device.h)
    const char *heaps;      // VKPHI_HEAPS: simulated memory heaps (tests: device.h)
    const char *coopmat;    // VKPHI_COOPMAT: "0" never cooperative matrices, "1" wherever the device has
                            // them (also on CPU drivers), "f32" that and for F32 weights too
    const char *f16math;    // VKPHI_F16MATH: "1" the f16 tiles everywhere, "0" never
    const char *subgroup;   // VKPHI_SUBGROUP: "32" or "64", the matrix-vector kernels' subgroup size
    const char *cache_home; // XDG_CACHE_HOME
    const char *home;       // HOME
} vkphi_env;

// The environment now; absent variables are NULL (an empty one is "").
vkphi_env vkphi_env_read(void);
