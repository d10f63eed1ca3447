// The CUDA backend's host side, which needs the CUDA Toolkit's headers but no GPU: the messages for a
// GPU too small or too old, the memory a sorted run needs, launch errors, and --kernel's names
// against the registry. Built into cudaembed_tests only when the CUDA backend is (CUDAEMBED_CUDA).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "cuda_check.hpp"
#include "cudaembed/backend.hpp"
#include "device_checks.hpp"
#include "epoch_chunks.hpp"
#include "grid_stride.hpp"
#include "sorted_kernels.hpp"
#include "test_support.hpp"
#include "train_kernels.hpp"

using namespace cudaembed;

TEST_CASE("reliability: a GPU too small or too old gets a message naming need and supply", "[reliability]") {
  // The colours: 100k pairs (1.2 MB) and a 646 x 2 table with its Adam state.
  const uint64_t need = training_device_bytes(100000, 646, 2, 512, true);
  CHECK(need == 100000 * 12 + 646 * 2 * 4 * 5 + 512 * 5 * 4 + 4096);
  CHECK(device_memory_problem(need, need, 2 * need, "H100").empty());
  const uint64_t huge = training_device_bytes(4'000'000'000ull, 10'000'000, 256, 65536, true);
  const std::string message = device_memory_problem(huge, 70ull << 30, 80ull << 30, "NVIDIA H100 80GB HBM3");
  // 4e9 pairs x 12 B = 45,776 MiB; 10M x 256 floats x 5 arrays = 48,828 MiB.
  CHECK_THAT(message, Catch::Contains("needs 94605.7 MiB") &&
                          Catch::Contains("NVIDIA H100 80GB HBM3 has 71680.0 MiB free of 81920.0"));
  CHECK(compute_capability_problem(9, 0, "H100").empty());
  CHECK(compute_capability_problem(8, 0, "A100").empty());
  CHECK_THAT(compute_capability_problem(7, 5, "Tesla T4"),
             Catch::Contains("Tesla T4 is compute capability 7.5, older than this build supports (8.0 and newer)") &&
                 Catch::Contains("-DCUDAEMBED_CUDA_ARCHITECTURES=75"));
}

TEST_CASE("memory check names what a sorted run needs and what is free", "[sparse]") {
  const SortedMemory need = sorted_device_bytes(20'000'000, 10'000'000, 128, 65536, 0, Optimizer::lazy_adam);
  CHECK(need.table == 10'000'000ull * 128 * 4 * 3 + 10'000'000ull * 8);
  CHECK(need.pairs == 20'000'000ull * 16);
  CHECK(sorted_memory_problem(need, need.total(), need.total(), "H100").empty());
  const std::string message = sorted_memory_problem(need, 8ull << 30, 80ull << 30, "H100");
  CHECK_THAT(message, Catch::Contains("needs 15102.7 MiB") &&
                          Catch::Contains("for the table and its optimizer state") &&
                          Catch::Contains("8192.0 MiB free of 81920.0 MiB") && Catch::Contains("--batch"));
  CHECK(sorted_device_bytes(1, 1000, 8, 10, 0, Optimizer::sgd).table == 1000 * 8 * 4);
  // Data parallel on K = 4 GPUs: each rank also holds its chunk and the 4 gathered ones, 65,536 /
  // 4 samples of 2 x 128 gradients and 5 partials each.
  const SortedMemory ranked = sorted_device_bytes(20'000'000, 10'000'000, 128, 65536, 0, Optimizer::lazy_adam, 4);
  CHECK(ranked.batch_buffers - need.batch_buffers == 5ull * 16384 * (2 * 128 + 5) * 4);
  CHECK(ranked.table == need.table);
}

TEST_CASE("distributed: K ranks on GPUs take the sorted path, and a dense --kernel says so", "[distributed]") {
  TrainConfig config;
  config.kernel = "persistent";
  const auto comm = std::make_shared<test::TwinCommunicator>(0);
  for (const int64_t sharded_rows : {0, 10})
    CHECK_THROWS_WITH(make_backend(DeviceChoice::cuda, config, comm, sharded_rows),
                      Catch::Contains("--kernel persistent: runs only the tutorial's model on one GPU") &&
                          Catch::Contains("K ranks train on the sorted path") &&
                          Catch::Contains("use --kernel sorted or auto"));
}

TEST_CASE("distributed: a rank without a GPU of its own is told how many ranks a machine takes", "[distributed]") {
  CHECK(rank_device_problem(0, 0, 1, 1).empty());
  CHECK(rank_device_problem(7, 3, 8, 4).empty());
  CHECK_THAT(rank_device_problem(1, 1, 2, 1),
             Catch::Contains("rank 1 of 2: it is rank 1 on its machine, which has 1 visible GPU;") &&
                 Catch::Contains("start at most 1 rank a machine") && Catch::Contains("--device cpu"));
  CHECK_THAT(rank_device_problem(5, 2, 6, 2), Catch::Contains("2 visible GPUs") && Catch::Contains("at most 2 ranks"));
}

TEST_CASE("the touched-row bitmap is sized in 64 bits up to the largest table the GPU takes", "[sparse]") {
  CHECK(touched_bitmap_words(1) == 1);
  CHECK(touched_bitmap_words(32) == 1);
  CHECK(touched_bitmap_words(33) == 2);
  // 2^32 - 2 rows, the most the GPU path takes: (rows + 31) / 32 in uint32_t would wrap to 0.
  const uint64_t most = 0xffffffffull - 1;
  CHECK(touched_bitmap_words(most) == (most + 31) / 32);
  CHECK(touched_bitmap_words(most) == std::size_t{1} << 27);
  // The memory check counts the same words: 2^27 of them past the table and its moments.
  const SortedMemory m = sorted_device_bytes(1, static_cast<int64_t>(most), 1, 1, 0, Optimizer::adam);
  CHECK(m.table == 3 * most * sizeof(float) + (std::size_t{1} << 27) * sizeof(uint32_t));
}

TEST_CASE("a launch error names the kernel, file and line", "[sparse]") {
  const std::string message =
      test::error_of([] { throw_launch_error(cudaErrorInvalidConfiguration, "sorted_segments", "k.cu", 42); });
  CHECK_THAT(message, Catch::Contains("cudaErrorInvalidConfiguration") && Catch::Contains("sorted_segments") &&
                          Catch::Contains("k.cu:42"));
}

TEST_CASE("the names --kernel takes are the registry's variants, in both builds", "[cli]") {
  std::vector<std::string> names{"auto", "sorted"};
  for (const auto& v : kernel_variants()) names.emplace_back(v.name);
  CHECK(cuda_kernel_names() == names);
}

TEST_CASE("the step-size table holds adam_step_size and stops where it has settled", "[sparse]") {
  const auto [beta1, beta2, lr] =
      GENERATE(std::tuple{0.9f, 0.999f, 1e-3f}, std::tuple{0.9f, 0.9999f, 0.01f}, std::tuple{0.5f, 0.6f, 1.0f},
               std::tuple{0.0f, 0.0f, 0.25f}, std::tuple{0.99f, 0.999f, 3e-4f});
  const AdamHyper h{lr, beta1, beta2, 1e-7f};
  const std::vector<float> table = adam_step_size_table(h);
  INFO("beta1 " << beta1 << ", beta2 " << beta2 << ", lr " << lr << ", " << table.size() << " entries");
  REQUIRE(!table.empty());
  CHECK(table.size() <= kMaxStepSizes);
  // Entry t - 1 is step t's, bit for bit what the CPU twin computes.
  for (std::size_t t = 1; t <= table.size(); ++t) REQUIRE(table[t - 1] == adam_step_size(h, static_cast<int64_t>(t)));
  // Every later step has the last entry's step size (the kernels clamp t to the table), to 10^8 steps.
  for (int64_t t = static_cast<int64_t>(table.size()); t < 100'000'000; t += 1 + t / 64)
    REQUIRE(adam_step_size(h, t) == table.back());
  CHECK(table.back() == lr);
}

TEST_CASE("the step-size table is empty where it would not settle within its length", "[sparse]") {
  // The kernels then compute adam_step_size per row, as before.
  CHECK(adam_step_size_table(AdamHyper{1e-3f, 0.9f, 0.9999999f, 1e-7f}).empty());
  CHECK(adam_step_size_table(AdamHyper{1e-3f, 0.9f, 1.0f, 1e-7f}).empty());
  CHECK(adam_step_size_table(AdamHyper{1e-3f, 1.0f, 0.999f, 1e-7f}).empty());
  // The default's: 18,706 steps, 73 KB.
  CHECK(adam_step_size_table(AdamHyper{}).size() < 25'000);
}

TEST_CASE("kernel auto sends wide or big tables of the tutorial's model to the sorted path", "[sparse]") {
  cudaDeviceProp h200{};
  h200.sharedMemPerBlockOptin = 232448;  // 227 KiB, as on an H100 or H200
  auto sorted = [&](int64_t rows, int dims, bool per_lookup_squares = true) {
    StepArgs args{};
    args.rows = rows;
    args.dims = dims;
    args.batch = 512;
    float marker = 0;
    args.grad_sq = per_lookup_squares ? &marker : nullptr;
    return auto_takes_sorted_path(args, h200);
  };
  CHECK_FALSE(sorted(646, 2));    // the colours: persistent, in shared memory
  CHECK_FALSE(sorted(100, 64));   // wide, but fits shared memory: persistent
  CHECK(sorted(20000, 64));       // wide: fused's atomics would bound it
  CHECK(sorted(1'000'000, 128));  // the big tables the sorted path is for
  CHECK(sorted(10'000'000, 128, false));
  CHECK_FALSE(sorted(20000, 16));  // small and narrow: graph's two launches a step win
  CHECK_FALSE(sorted(200000, 16));
  CHECK(sorted(int64_t{1} << 18, 16));  // 2^22 elements: the dense Adam pass dominates
  CHECK(sorted(10'000'000, 1));
  CHECK_FALSE(sorted(10'000'000, 5));  // no sorted kernel for D = 5: graph takes any D
  CHECK_FALSE(sorted(20000, 96));
  // On a device with less shared memory, a table persistent would take elsewhere.
  cudaDeviceProp small = h200;
  small.sharedMemPerBlockOptin = 48 * 1024;
  StepArgs args{};
  args.rows = 100;
  args.dims = 64;
  CHECK(auto_takes_sorted_path(args, small));
}

// ---- Many epochs a launch (epoch_chunks.hpp): what each persistent launch trains, and where each
// epoch the trainer asks for is read from. ----
namespace {

struct ChunkLog {
  struct Started {
    int copy, epochs;
    int64_t first_epoch;  // the run's epoch its first one is (0-based)
    int64_t during_call;  // the next() call that started it
  };
  std::vector<Started> launches;
  int64_t trained = 0;  // epochs launched so far

  template <class Field>
  auto each(Field field) const {
    std::vector<std::decay_t<decltype(launches[0].*field)>> values;
    for (const auto& l : launches) values.push_back(l.*field);
    return values;
  }
  std::vector<int> sizes() const { return each(&Started::epochs); }
  std::vector<int> copies() const { return each(&Started::copy); }
  std::vector<int64_t> started_during() const { return each(&Started::during_call); }
};

// Asks `calls` epochs of EpochChunks(per_launch) planned for `planned` (none when negative), and
// checks on the way that each epoch is read from the launch that trained it, in order, from a copy
// no later launch has taken over yet.
ChunkLog ask_epochs(int per_launch, int64_t planned, int64_t calls) {
  EpochChunks chunks(per_launch);
  if (planned >= 0) chunks.plan(planned);
  ChunkLog log;
  for (int64_t call = 0; call < calls; ++call) {
    const EpochChunks::Served at = chunks.next([&](EpochChunks::Launch l) {
      REQUIRE(l.epochs >= 1);
      log.launches.push_back({l.copy, l.epochs, log.trained, call});
      log.trained += l.epochs;
    });
    // The launch that trained epoch `call`, and the launches after it.
    std::size_t holder = 0;
    while (log.launches[holder].first_epoch + log.launches[holder].epochs <= call) ++holder;
    INFO("per launch " << per_launch << ", planned " << planned << ", epoch " << call);
    REQUIRE(holder < log.launches.size());
    CHECK(at.copy == log.launches[holder].copy);
    CHECK(at.epoch == call - log.launches[holder].first_epoch);
    // No launch after it writes the same copy: at most one more is in flight, on the other copy.
    CHECK(log.launches.size() <= holder + 2);
    if (holder + 1 < log.launches.size()) CHECK(log.launches[holder + 1].copy != at.copy);
  }
  return log;
}

}  // namespace

TEST_CASE("many epochs a launch: one epoch first, then full launches, never past the plan", "[persistent]") {
  const ChunkLog log = ask_epochs(32, 100, 100);
  CHECK(log.sizes() == std::vector<int>{1, 32, 32, 32, 3});
  CHECK(log.copies() == std::vector<int>{0, 1, 0, 1, 0});
  // The next launch is under way while the host reads the one before: the first two start with
  // the first epoch, each later one when the trainer moves on to the launch before it.
  CHECK(log.started_during() == std::vector<int64_t>{0, 0, 1, 33, 65});
}

TEST_CASE("many epochs a launch: without a plan, or past it, one epoch a launch when asked for", "[persistent]") {
  const ChunkLog none = ask_epochs(32, -1, 4);
  CHECK(none.sizes() == std::vector<int>{1, 1, 1, 1});
  CHECK(none.started_during() == std::vector<int64_t>{0, 1, 2, 3});
  const ChunkLog past = ask_epochs(4, 3, 5);  // planned 3, asked 5
  CHECK(past.sizes() == std::vector<int>{1, 2, 1, 1});
  CHECK(past.started_during() == std::vector<int64_t>{0, 0, 3, 4});
}

TEST_CASE("many epochs a launch: any plan, launch size and stop train what is asked, at most the plan",
          "[persistent]") {
  for (int per_launch : {1, 2, 3, 7, 32})
    for (int64_t planned : {0, 1, 2, 5, 33, 64, 65})
      for (int64_t calls : {int64_t{1}, planned / 2 + 1, planned, planned + 2}) {
        if (calls < 1) continue;
        const ChunkLog log = ask_epochs(per_launch, planned, calls);
        INFO("per launch " << per_launch << ", planned " << planned << ", asked " << calls);
        CHECK(log.trained >= calls);
        CHECK(log.trained <= std::max(planned, calls));
        for (const auto& l : log.launches) CHECK(l.epochs <= std::max(per_launch, 1));
      }
}

TEST_CASE("many epochs a launch: as many as asked, within the steps a launch may take", "[persistent]") {
  CHECK(epochs_per_launch(196, 32) == 32);  // the colours: 100,000 pairs in batches of 512
  CHECK(epochs_per_launch(196, 1) == 1);
  CHECK(epochs_per_launch(196, 1000) == kStepsPerLaunch / 196);
  CHECK(epochs_per_launch(kStepsPerLaunch, 32) == 1);
  CHECK(epochs_per_launch(20'000, 32) == 1);  // 10M pairs: a launch an epoch, as before
  CHECK(epochs_per_launch(1, 32) == 32);
  CHECK(epochs_per_launch(0, 0) == 1);
}

TEST_CASE("a grid-stride loop's grid covers its items, at most 8 blocks a SM, at least one", "[sparse]") {
  CHECK(grid_stride_blocks(0, 256, 132) == 1);
  CHECK(grid_stride_blocks(1, 256, 132) == 1);
  CHECK(grid_stride_blocks(256, 256, 132) == 1);
  CHECK(grid_stride_blocks(257, 256, 132) == 2);
  CHECK(grid_stride_blocks(256ull * 1056, 256, 132) == 1056);
  CHECK(grid_stride_blocks(256ull * 1056 + 1, 256, 132) == 1056);  // 8 x 132 SMs
  CHECK(grid_stride_blocks(uint64_t{10'000'000} * 128, 256, 132) == 1056);
}

TEST_CASE("a persistent launch without epochs or snapshot buffers is refused before it reaches the device",
          "[persistent]") {
  StepArgs args{};  // epochs 0, no snapshot buffers: what a caller that skips EpochSnapshots would pass
  CHECK_THROWS_WITH(run_epoch_persistent(args, nullptr), Catch::Contains("at least one epoch"));
  CHECK_THROWS_WITH(run_epoch_deterministic(args, nullptr), Catch::Contains("somewhere to write its snapshots"));
  float params = 0;
  EpochSnapshot head{};
  args.epochs = 1;
  args.snapshot_params = &params;  // heads still missing
  CHECK_THROWS_WITH(run_epoch_persistent(args, nullptr), Catch::Contains("persistent_epoch"));
  args.snapshot_heads = &head;
  args.epochs = 0;
  CHECK_THROWS_WITH(run_epoch_persistent(args, nullptr), Catch::Contains("at least one epoch"));
}
