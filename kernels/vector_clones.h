#pragma once
// Hot loops of the fused CPU kernels are compiled for AVX2 and for the x86-64 baseline, and the
// loader picks one when the library loads. Internal to kernels/. Neither clone forms an FMA
// (-ffp-contract=off) and vector lanes never mix, so both give the same bits.
#if defined(__x86_64__)
#define ASIARCH_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ASIARCH_VECTOR_CLONES
#endif
