// SPDX-License-Identifier: MIT
// A SPIR-V module embedded in the program: the entries of the tables that
// cmake/shaders.cmake generates (the runtime's shaders.h, the tests' test_shaders.h),
// and what a pipeline is built from (pipeline_desc.code).
#pragma once
#include <stddef.h>
#include <stdint.h>

struct shader_code {
    const uint32_t *code;
    size_t size; // bytes
    const char *name;
    const struct shader_code *nosg; // the build of the same kernel without subgroup arithmetic, or NULL
};
