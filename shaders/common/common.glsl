// SPDX-License-Identifier: MIT
// Included first by every shader.
#extension GL_EXT_control_flow_attributes : enable

// Constant 0 is the workgroup size everywhere (pipeline.h).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

// Flat index of this workgroup over a 2D grid (grids wider than 65535 groups are
// folded into y by the host).
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
