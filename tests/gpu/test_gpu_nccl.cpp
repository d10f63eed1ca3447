// The NCCL communicator (cuda/nccl_communicator.hpp) against the host communicator's collectives:
// with one GPU, NCCL runs K = 1 (two ranks of one communicator cannot share a GPU), which still
// loads libnccl, makes a communicator through the host's broadcast and moves device memory.
#include <optional>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "device_buffer.hpp"
#include "nccl_communicator.hpp"

using namespace cudaembed;

TEST_CASE("nccl: one rank's all-gather and all-to-all give what the host communicator's give", "[gpu][nccl]") {
  const auto host = make_communicator(false);
  std::optional<NcclCommunicator> nccl;
  try {
    nccl.emplace(*host);
  } catch (const Error& e) {
    // A device machine whose toolkit lacks libnccl: nothing to test here, and the message is the user's.
    CHECK_THAT(e.what(), Catch::Contains("libnccl.so.2") && Catch::Contains("--device cpu"));
    WARN("NCCL not loaded on this machine: " << e.what());
    return;
  }
  CHECK_THAT(nccl->describe(), Catch::StartsWith("NCCL 2.") && Catch::EndsWith(", 1 ranks"));
  cudaStream_t stream;
  CE_CUDA_CHECK(cudaStreamCreate(&stream));
  const std::vector<float> values{1.5f, -2.0f, 3.0f, 4.25f, 1e-30f};

  DeviceBuffer<float> mine, all(values.size());
  mine.upload(values, stream);
  nccl->all_gather(mine.data(), all.data(), values.size(), stream);
  std::vector<float> gathered, expected(values.size());
  all.download(gathered, stream);
  host->all_gather(values, expected);
  CHECK(gathered == expected);

  const std::vector<std::size_t> counts{values.size()};
  DeviceBuffer<float> received(values.size());
  received.zero(stream);
  nccl->all_to_all(mine.data(), counts, received.data(), counts, stream);
  std::vector<float> exchanged, host_exchanged(values.size());
  received.download(exchanged, stream);
  host->all_to_all(values, counts, host_exchanged, counts);
  CHECK(exchanged == host_exchanged);
  CE_CUDA_CHECK(cudaStreamDestroy(stream));
}
