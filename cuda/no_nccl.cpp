// A CUDA build whose toolkit had no nccl.h at configure time: the ranks of a data-parallel run on
// GPUs cannot exchange, so making the communicator says what to do instead.
#include <fmt/format.h>

#include "cudaembed/error.hpp"
#include "nccl_communicator.hpp"

namespace cudaembed {

struct NcclCommunicator::Impl {};

NcclCommunicator::NcclCommunicator(Communicator& host) {
  throw Error(fmt::format(
      "rank {}: {} ranks on GPUs need NCCL, and this cudaembed was built without it (nccl.h was not found with the "
      "CUDA Toolkit): install NVIDIA's libnccl-dev, configure again and rebuild; or train the ranks with --device cpu",
      host.rank(), host.size()));
}
NcclCommunicator::~NcclCommunicator() = default;
void NcclCommunicator::all_gather(const float*, float*, std::size_t, cudaStream_t) {}
void NcclCommunicator::all_to_all(const float*, std::span<const std::size_t>, float*, std::span<const std::size_t>,
                                  cudaStream_t) {}
void NcclCommunicator::wait(cudaEvent_t) {}
std::string NcclCommunicator::describe() const { return "no NCCL"; }
int NcclCommunicator::rank() const { return 0; }
int NcclCommunicator::size() const { return 1; }

}  // namespace cudaembed
