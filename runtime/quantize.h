// SPDX-License-Identifier: MIT
// Converting a GGUF model to a quantization mix (`vkphi quantize`): every metadata
// key is kept, vectors stay as they are, matrices get the recipe's type. No Vulkan.
#pragma once

// in_path must hold F32, F16 or BF16 matrices. n_threads 0: every core.
// on_progress (may be NULL) is called after each tensor with the fraction done.
int quantize_file(const char *in_path, const char *out_path, const char *recipe, int n_threads,
                  void (*on_progress)(double fraction, void *user), void *user);
