// SPDX-License-Identifier: MIT
// get_rows.comp's push-constant block, for GLSL and C as shaders/common/push_constants.h
// declares the runtime's (and included after it): K values per row; n_tokens ids;
// the bound window holds rows row0 .. row0+n_rows-1; output rows o_stride floats apart.
#ifndef VKPHI_PUSH_GET_ROWS_H
#define VKPHI_PUSH_GET_ROWS_H

#define PUSH_GET_ROWS PC_UINT K; PC_UINT n_tokens; PC_UINT row0; PC_UINT n_rows; PC_UINT o_stride;

#ifndef GL_core_profile
struct push_get_rows { PUSH_GET_ROWS };
#endif

#endif
