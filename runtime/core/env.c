// SPDX-License-Identifier: MIT
#include "env.h"

#include <stdlib.h>

vkphi_env vkphi_env_read(void) {
    return (vkphi_env){
        .device = getenv("VKPHI_DEVICE"),
        .validate = getenv("VKPHI_VALIDATE"),
        .limits = getenv("VKPHI_LIMITS"),
        .heaps = getenv("VKPHI_HEAPS"),
        .coopmat = getenv("VKPHI_COOPMAT"),
        .f16math = getenv("VKPHI_F16MATH"),
        .subgroup = getenv("VKPHI_SUBGROUP"),
        .cache_home = getenv("XDG_CACHE_HOME"),
        .home = getenv("HOME"),
    };
}
