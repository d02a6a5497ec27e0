// SPDX-License-Identifier: MIT
// The vkphi subcommands: each is `int cmd_NAME(int argc, char **argv)` with
// argv[0] the command name; returns the process exit code.
#pragma once

int cmd_devices(int argc, char **argv);
int cmd_kernels(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_plan(int argc, char **argv);
