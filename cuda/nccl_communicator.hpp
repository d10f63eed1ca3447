// GPU collectives across the ranks of a Communicator, one GPU each, on NCCL (docs/scaling.md
// section 5). libnccl is loaded with dlopen when a communicator is made, not linked: the binary
// starts on machines without it (the GPU check cannot carry it), and only K ranks on CUDA need it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "cudaembed/distributed.hpp"

namespace cudaembed {

// What data parallel on GPUs needs of the ranks (SortedTrainer): who this rank is, and an
// all-gather of device memory ordered on a stream. NCCL's below; the tests' K ranks on one GPU.
class DeviceRanks {
 public:
  virtual ~DeviceRanks() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank's `count` floats at `mine`, in rank order, into `all` (size() * count floats).
  virtual void all_gather(const float* mine, float* all, std::size_t count, cudaStream_t stream) = 0;
  // Sends send_counts[r] floats of `send` (in rank order) to each rank r and receives
  // recv_counts[r] floats from each rank r into `recv` (in rank order), ordered on `stream`.
  virtual void all_to_all(const float* send, std::span<const std::size_t> send_counts, float* recv,
                          std::span<const std::size_t> recv_counts, cudaStream_t stream) = 0;
  // Returns once the work before `done` (recorded on a stream) has finished; throws Error when a
  // collective in it fails, or waits longer than the ranks' timeout.
  virtual void wait(cudaEvent_t done) = 0;
};

class NcclCommunicator final : public DeviceRanks {
 public:
  // Joins every rank of `host` into one NCCL communicator on the current CUDA device: rank 0's
  // ncclGetUniqueId reaches the others by host.broadcast. Every rank must call it. Throws Error
  // when libnccl.so.2 cannot be loaded (naming it and what to do), when the build has no nccl.h,
  // or NCCL fails. `host` outlives it: the bytes sent through NCCL are counted there.
  explicit NcclCommunicator(Communicator& host);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  // Communicator::all_gather on device memory, ordered on `stream`: every rank's `count` floats
  // at `mine`, in rank order, into `all`.
  void all_gather(const float* mine, float* all, std::size_t count, cudaStream_t stream) override;
  // Polls `done` and NCCL's asynchronous error; past host.collective_timeout_s() (or on an error)
  // it aborts the NCCL communicator, so that no kernel is left waiting, and throws naming the rank.
  void wait(cudaEvent_t done) override;
  // Communicator::all_to_all on device memory, ordered on `stream`: one ncclSend and one ncclRecv
  // per peer in a group.
  void all_to_all(const float* send, std::span<const std::size_t> send_counts, float* recv,
                  std::span<const std::size_t> recv_counts, cudaStream_t stream) override;
  std::string describe() const;  // "NCCL 2.27.3, 2 ranks"
  int rank() const override;
  int size() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cudaembed
