// NcclCommunicator (nccl_communicator.hpp): NCCL's entry points from libnccl.so.2 by dlopen; nccl.h
// gives their types only.
#include "nccl_communicator.hpp"

#include <dlfcn.h>
#include <nccl.h>

#include <chrono>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cuda_check.hpp"
#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

// The NCCL calls this engine makes.
struct NcclApi {
  decltype(&ncclGetVersion) get_version;
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclCommAbort) comm_abort;
  decltype(&ncclCommGetAsyncError) async_error;
  decltype(&ncclAllGather) all_gather;
  decltype(&ncclSend) send;
  decltype(&ncclRecv) recv;
  decltype(&ncclGroupStart) group_start;
  decltype(&ncclGroupEnd) group_end;
  decltype(&ncclGetErrorString) error_string;
};

NcclApi load_nccl() {
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    throw Error(fmt::format("training K ranks on GPUs needs NCCL, and libnccl.so.2 cannot be loaded ({}): install "
                            "NVIDIA's libnccl2, or add the CUDA Toolkit's lib directory to LD_LIBRARY_PATH; or train "
                            "the ranks with --device cpu",
                            dlerror()));
  auto symbol = [lib](const char* name) {
    void* p = dlsym(lib, name);
    if (!p) throw Error(fmt::format("libnccl.so.2 has no {}: an NCCL older than 2.7", name));
    return p;
  };
  NcclApi api;
  api.get_version = reinterpret_cast<decltype(api.get_version)>(symbol("ncclGetVersion"));
  api.get_unique_id = reinterpret_cast<decltype(api.get_unique_id)>(symbol("ncclGetUniqueId"));
  api.comm_init_rank = reinterpret_cast<decltype(api.comm_init_rank)>(symbol("ncclCommInitRank"));
  api.comm_destroy = reinterpret_cast<decltype(api.comm_destroy)>(symbol("ncclCommDestroy"));
  api.comm_abort = reinterpret_cast<decltype(api.comm_abort)>(symbol("ncclCommAbort"));
  api.async_error = reinterpret_cast<decltype(api.async_error)>(symbol("ncclCommGetAsyncError"));
  api.all_gather = reinterpret_cast<decltype(api.all_gather)>(symbol("ncclAllGather"));
  api.send = reinterpret_cast<decltype(api.send)>(symbol("ncclSend"));
  api.recv = reinterpret_cast<decltype(api.recv)>(symbol("ncclRecv"));
  api.group_start = reinterpret_cast<decltype(api.group_start)>(symbol("ncclGroupStart"));
  api.group_end = reinterpret_cast<decltype(api.group_end)>(symbol("ncclGroupEnd"));
  api.error_string = reinterpret_cast<decltype(api.error_string)>(symbol("ncclGetErrorString"));
  return api;
}

// Loaded once; a failed load throws and is tried again by the next caller.
const NcclApi& nccl() {
  static const NcclApi api = load_nccl();
  return api;
}

void check(ncclResult_t result, const char* call, int rank) {
  if (result != ncclSuccess)
    throw Error(fmt::format("rank {}: {} failed: {}", rank, call, nccl().error_string(result)));
}

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0, size = 1;
  Communicator* host = nullptr;  // counts the bytes sent
};

NcclCommunicator::NcclCommunicator(Communicator& host) : impl_(std::make_unique<Impl>()) {
  const NcclApi& api = nccl();
  impl_->rank = host.rank();
  impl_->size = host.size();
  impl_->host = &host;
  ncclUniqueId id{};
  if (host.is_root()) check(api.get_unique_id(&id), "ncclGetUniqueId", impl_->rank);
  host.broadcast(std::as_writable_bytes(std::span(&id, 1)), 0);
  check(api.comm_init_rank(&impl_->comm, impl_->size, id, impl_->rank), "ncclCommInitRank", impl_->rank);
}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->comm) nccl().comm_destroy(impl_->comm);
}

void NcclCommunicator::all_gather(const float* mine, float* all, std::size_t count, cudaStream_t stream) {
  check(nccl().all_gather(mine, all, count, ncclFloat, impl_->comm, stream), "ncclAllGather", impl_->rank);
  impl_->host->count_bytes_sent(count * sizeof(float) * static_cast<uint64_t>(impl_->size - 1));
}

void NcclCommunicator::all_to_all(const float* send, std::span<const std::size_t> send_counts, float* recv,
                                  std::span<const std::size_t> recv_counts, cudaStream_t stream) {
  const NcclApi& api = nccl();
  check(api.group_start(), "ncclGroupStart", impl_->rank);
  std::size_t sent = 0, received = 0;
  uint64_t to_others = 0;
  // The group is ended whatever happens inside it: NCCL requires every ncclGroupStart to be matched.
  ncclResult_t first_error = ncclSuccess;
  const char* failed = nullptr;
  for (int peer = 0; peer < impl_->size && !failed; ++peer) {
    const std::size_t out = send_counts[static_cast<std::size_t>(peer)];
    const std::size_t in = recv_counts[static_cast<std::size_t>(peer)];
    if (out && (first_error = api.send(send + sent, out, ncclFloat, peer, impl_->comm, stream)) != ncclSuccess)
      failed = "ncclSend";
    else if (in && (first_error = api.recv(recv + received, in, ncclFloat, peer, impl_->comm, stream)) != ncclSuccess)
      failed = "ncclRecv";
    sent += out;
    received += in;
    if (peer != impl_->rank) to_others += out * sizeof(float);
  }
  const ncclResult_t ended = api.group_end();
  if (failed) check(first_error, failed, impl_->rank);
  check(ended, "ncclGroupEnd", impl_->rank);
  impl_->host->count_bytes_sent(to_others);
}

void NcclCommunicator::wait(cudaEvent_t done) {
  const NcclApi& api = nccl();
  const auto start = std::chrono::steady_clock::now();
  const double timeout = impl_->host->collective_timeout_s();
  for (;;) {
    const cudaError_t state = cudaEventQuery(done);
    if (state == cudaSuccess) return;
    if (state != cudaErrorNotReady) CE_CUDA_CHECK(state);
    ncclResult_t async = ncclSuccess;
    check(api.async_error(impl_->comm, &async), "ncclCommGetAsyncError", impl_->rank);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (async != ncclSuccess || (timeout > 0 && waited > timeout)) {
      api.comm_abort(std::exchange(impl_->comm, nullptr));  // ends the kernels waiting on the other ranks
      check(async, "an NCCL collective", impl_->rank);
      throw Error(
          fmt::format("rank {}: an NCCL collective has waited {:.0f} s for the other ranks (a rank stuck or "
                      "gone; --collective-timeout {:g})",
                      impl_->rank, waited, timeout));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }

std::string NcclCommunicator::describe() const {
  int version = 0;
  nccl().get_version(&version);
  return fmt::format("NCCL {}.{}.{}, {} ranks", version / 10000, version / 100 % 100, version % 100, impl_->size);
}

}  // namespace cudaembed
