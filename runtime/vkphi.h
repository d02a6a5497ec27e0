// SPDX-License-Identifier: MIT
// The public header: everything tools/ and bench/ may use of the runtime, one
// include. What each module gives a program:
//
//   header          layer    gives
//   common.h        core     status codes (VKPHI_OK, VKPHI_ERR_*), vkphi_last_error, the
//                            log hook and level, vkphi_now, VKPHI_VERSION
//   gguf.h          core     reading a GGUF file's metadata and tensors (gguf_open ...),
//                            and writing one
//   quant_types.h   core     the tensor types: names, block sizes, bits per weight,
//                            which ones vkphi runs
//   model_config.h  core     a model's configuration from its metadata, and whether
//                            vkphi can run the file (model_config_read, model_check)
//   tokenizer.h     core     text to token ids and back, streaming detokenizer
//   chat.h          core     the Phi-4 family's chat formats and the parser that splits
//                            an answer into reasoning, content and tool calls
//   sampler.h       core     top-k / top-p / min-p / temperature / penalty sampling
//   device.h        gpu      the Vulkan devices: listing, choosing, their description
//   bandwidth.h     gpu      the memory bandwidth a device attains (the benchmark's
//                            roofline)
//   kernel_report.h kernels  compiling every pipeline the runtime would use on a device,
//                            with the compiler's figures, without running (vkphi kernels)
//   memory_plan.h   model    where a model's buffers go (device-local or host-visible
//                            memory), the context that fits, decode-speed estimates
//   model.h         model    loading a model and evaluating tokens (model_load,
//                            model_eval, model_eval_batch), its sizes and kernel times
//   generate.h      model    text generation over one KV-cache sequence: prefill, sample,
//                            stream, stop
//   mkmodel.h       convert  Phi-4-shaped models with random weights, the built-in
//                            default model
//   quant_recipe.h  convert  quantization mixes by name (Q4_K_M, Q8_0, ...)
//   quantize.h      convert  converting a GGUF model to a quantization mix
//
// Not public: the kernels and their selection (kernels.h, ops.h), pipelines,
// buffers, command recording (pipeline.h, buffer.h, commands.h), the CPU block
// formats and reference (quant.h, quant_iq.h, repack.h, ref.h, ref_model.h) and the
// environment (env.h). memory_plan.h brings the memory places and the arena's
// specification along (gpu/memory.h, gpu/arena.h) because a plan is written in
// their terms; a program uses them only as a plan's fields. Commands that need no
// GPU (info, tokenize) may include the core/ headers above instead.
#pragma once
#include "common.h"

#include "chat.h"
#include "gguf.h"
#include "model_config.h"
#include "quant_types.h"
#include "sampler.h"
#include "tokenizer.h"

#include "bandwidth.h"
#include "device.h"

#include "kernel_report.h"

#include "generate.h"
#include "memory_plan.h"
#include "model.h"

#include "mkmodel.h"
#include "quant_recipe.h"
#include "quantize.h"
