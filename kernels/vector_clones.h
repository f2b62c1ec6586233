#pragma once
// Hot loops of the fused CPU kernels are compiled for AVX-512F, AVX2 and the x86-64 baseline, and
// the loader picks one when the library loads. Internal to kernels/. No clone forms an FMA
// (-ffp-contract=off) and every sum across lanes has one order, so all give the same bits. AVX-512 pays where a
// loop computes more than it moves, as the activations' exp: on the 2-core AMD EPYC VM (Zen 4,
// which runs 512-bit operations in two halves) it took the SiLU, SwiGLU and softmax loops from
// 1,496 to 1,194 perf samples over 600 DeltaNet steps (AdamW 129 to 94), and the recurrences not at all.
#if defined(__x86_64__)
#define ASIARCH_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ASIARCH_VECTOR_CLONES
#endif
