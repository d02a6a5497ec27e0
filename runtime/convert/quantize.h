// SPDX-License-Identifier: MIT
// Converting a GGUF model to a quantization mix (`vkphi quantize`): every metadata
// key is kept, vectors stay as they are, matrices get the recipe's type. No Vulkan.
#pragma once

// in_path must hold F32, F16 or BF16 matrices. imatrix_path (may be NULL): an
// importance matrix as the reference tools write it, either format: the legacy
// binary one (imatrix.dat: int32 entry count; per entry int32 name length, name,
// int32 ncall, int32 nval, nval float32 sums scaled to ncall calls; an optional
// trailer) or the GGUF one (per matrix the f32 tensors NAME.in_sum2 and
// NAME.counts). A matrix's importance per column is its sum over the calls (or
// counted tokens); matrices it does not name are quantized without. With one, the
// recipe's importance-matrix rules apply too. n_threads 0: every core.
// on_progress (may be NULL) is called after each tensor with the fraction done.
// Recipes of the IQ1/IQ2/IQ3 types are refused: vkphi does not implement their
// quantizers.
int quantize_file(const char *in_path, const char *out_path, const char *recipe, const char *imatrix_path,
                  int n_threads, void (*on_progress)(double fraction, void *user), void *user);
