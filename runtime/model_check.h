// SPDX-License-Identifier: MIT
// Can vkphi run this GGUF file? One check shared by `vkphi info` and the model
// loader, so both refuse the same files with the same sentence.
#pragma once
#include "gguf.h"

// Returns VKPHI_OK when the file is a Phi-3-family model that vkphi runs: phi3
// architecture, the required hyperparameters present and consistent, full-head
// rotary dimensions, no LongRoPE, no sliding window, every required tensor present
// with the right shape and every tensor of a type vkphi runs. Otherwise returns
// VKPHI_ERR_FORMAT (broken or inconsistent file) or VKPHI_ERR_UNSUPPORTED (valid,
// not supported yet), with a sentence naming the file and the key or tensor in
// vkphi_last_error().
int model_check(const gguf_file *f);
