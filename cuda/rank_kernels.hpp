// Launcher of rank_kernels.cu: link-prediction rank counts, one block per query.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "cudaembed/rank_math.hpp"

namespace cudaembed {

// out (Q,): the counts of each of the view's `queries` queries; every pointer of `view` is device memory.
void launch_rank_counts(const RankView& view, uint64_t queries, RankCounts* out, cudaStream_t stream);

}  // namespace cudaembed
