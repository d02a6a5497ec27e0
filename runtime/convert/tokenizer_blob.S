/* SPDX-License-Identifier: MIT */
/* Phi-4's tokenizer GGUF (runtime/convert/phi4-tokenizer.gguf), embedded in the binary
   for mkmodel: the directory holding it is on the include path (CMakeLists.txt). */
    .section .rodata
    .balign 64
    .globl vkphi_tokenizer_gguf_start
    .globl vkphi_tokenizer_gguf_end
vkphi_tokenizer_gguf_start:
    .incbin "phi4-tokenizer.gguf"
vkphi_tokenizer_gguf_end:
    .byte 0
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
