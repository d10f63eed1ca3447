// Link-prediction rank counts on the GPU: the table, the queries and the known positives go up, one
// rank_counts kernel (rank_kernels.cu) counts every query, the counts come back. The metrics are
// then computed from them on the host by the same code as the CPU's counts.
//
// Scores are computed directly (rank_math.hpp's head_score, double accumulation), not through a
// cuBLAS Gram matrix: ||a||^2 + ||b||^2 - 2ab in float rounds differently from the CPU and turns
// exact ties (duplicate rows) into noise, which would move ranks by --device (see all_pairs.cpp).
#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/link_prediction.hpp"
#include "device_buffer.hpp"
#include "rank_kernels.hpp"

namespace cudaembed {

std::vector<RankCounts> cuda_rank_counts(const RankingInput& in) {
  if (cuda_device_count() == 0) throw Error("link-prediction ranking on the GPU: no CUDA device is visible");
  // The legacy default stream: a one-off, synchronous evaluation sharing no buffer with a backend.
  const cudaStream_t stream = nullptr;
  DeviceBuffer<float> table;
  DeviceBuffer<uint32_t> sources, targets, known_rows;
  DeviceBuffer<uint64_t> known_offsets;
  table.upload(in.table.data(), in.table.size(), stream);
  sources.upload(in.sources.data(), in.sources.size(), stream);
  targets.upload(in.targets.data(), in.targets.size(), stream);
  known_offsets.upload(in.known->offsets, stream);
  known_rows.upload(in.known->rows, stream);
  DeviceBuffer<RankCounts> out(in.sources.size());

  RankView v = rank_view(in);  // the same view over device memory
  v.table = table.data();
  v.sources = sources.data();
  v.targets = targets.data();
  v.known_offsets = known_offsets.data();
  v.known_rows = known_rows.data();
  launch_rank_counts(v, in.sources.size(), out.data(), stream);
  std::vector<RankCounts> host;
  out.download(host, stream);
  return host;
}

}  // namespace cudaembed
