// CE_VECTOR_CLONES: GCC's function multiversioning for the CPU backend's hot loops. Each marked
// function is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and the baseline, and the loader
// picks the best the CPU runs, so one binary is fast on new CPUs and still starts on old ones.
// Mark the function that holds the loop, with its arrays as __restrict parameters: GCC 12 does not
// vectorise these loops once they are inlined into a marked caller (restrict is lost, and
// `flatten` did not help), and math.hpp's small functions are inlined into the clones anyway.
// Results do not change with the vector width: every vectorised operation is element-wise, and
// -ffp-contract=off keeps FMA contraction out (tests compare the bits with the reference step).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CE_VECTOR_CLONES
#endif
