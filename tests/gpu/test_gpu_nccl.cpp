// The NCCL communicator (cuda/nccl_communicator.hpp) against the host communicator's collectives,
// and the data-parallel sorted step through it against one GPU's: with one GPU, NCCL runs K = 1
// (two ranks of one communicator cannot share a GPU), which still loads libnccl, makes a
// communicator through the host's broadcast, moves device memory and runs the exchange's kernels.
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "device_buffer.hpp"
#include "nccl_communicator.hpp"
#include "sorted_trainer.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;

namespace {

// NCCL over the ranks of `host`; empty, with a warning saying why, on a device machine whose
// toolkit lacks libnccl (nothing to test there, and the message is the user's).
std::unique_ptr<NcclCommunicator> try_nccl(Communicator& host) {
  std::unique_ptr<NcclCommunicator> nccl;
  try {
    nccl = std::make_unique<NcclCommunicator>(host);
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("libnccl.so.2") && Catch::Contains("--device cpu"));
    WARN("NCCL not loaded on this machine: " << e.what());
  }
  return nccl;
}

}  // namespace

TEST_CASE("nccl: one rank's all-gather and all-to-all give what the host communicator's give", "[gpu][nccl]") {
  const auto host = make_communicator(false);
  const auto nccl = try_nccl(*host);
  if (!nccl) return;
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

TEST_CASE("nccl: the data-parallel step through NCCL on one rank trains what one GPU trains, to the bit",
          "[gpu][nccl]") {
  const std::shared_ptr<Communicator> host = make_communicator(false);
  const auto nccl = try_nccl(*host);
  if (!nccl) return;
  TrainConfig cfg;
  cfg.dims = 8;
  cfg.optimizer = Optimizer::lazy_adam;
  cfg.kernel = "sorted";
  cfg.batch = 1000;
  cfg.negatives = 2;
  const PairSet pairs = powerlaw_pairs({2000, 3500, 3, 0.5f, 8});  // 4 steps an epoch, the last partial
  const ModelState init = init_model(2000, cfg.dims, InitSpec{InitScheme::robust, 0.05f, 11}, cfg.optimizer);
  cudaDeviceProp props{};
  CE_CUDA_CHECK(cudaGetDeviceProperties(&props, 0));
  cudaStream_t stream;
  CE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ModelState alone = init, ranked = init;
  std::vector<EpochMetrics> alone_epochs, ranked_epochs;
  {
    SortedTrainer one(cfg, pairs, init, props, stream);
    SortedTrainer through_nccl(cfg, pairs, init, props, stream, SortedLaunch::direct, nccl.get());
    for (int e = 0; e < 2; ++e) {
      alone_epochs.push_back(one.train_epoch());
      ranked_epochs.push_back(through_nccl.train_epoch());
    }
    one.fetch(alone, true);
    through_nccl.fetch(ranked, true);
  }
  CE_CUDA_CHECK(cudaStreamDestroy(stream));
  test::check_same_training(alone, alone_epochs, ranked, ranked_epochs);
  CHECK(host->bytes_sent() == 0);  // one rank sends nobody anything

  // And the MPI path: K CPU ranks train one process's sorted step bit for bit (tests/test_mpi.cpp),
  // so this is the NCCL path against the MPI path, at test_gpu_sorted.cpp's GPU-against-CPU
  // tolerance (another order of float additions across a row's lanes and a hot row's slices).
  ModelState cpu = init;
  auto cpu_backend = make_cpu_backend(cfg, host);
  const auto cpu_history = train(*cpu_backend, pairs, cpu, 2, nullptr);
  CHECK(cpu.step == ranked.step);
  CHECK_CLOSE(ranked.table, cpu.table, (test::Tolerance{2e-5, 1e-3}));
  CHECK(ranked.row_step == cpu.row_step);
  for (std::size_t e = 0; e < cpu_history.size(); ++e)
    CHECK(ranked_epochs[e].loss() == Approx(cpu_history[e].metrics.loss()).epsilon(1e-4));
}
