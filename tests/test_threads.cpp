// The CPU backend's dense step (host/train/dense_step.cpp: unrolled, vectorised, shared by a team
// of threads) against the reference step written for reading (cpu_train_step), and the sorted
// path on a team against it on one thread: the same table, moments, Dense layer and metrics, bit
// for bit, on 1, 2 and 3 threads.
#include <atomic>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "test_support.hpp"
#include "train/dense_step.hpp"
#include "train/sorted_phases.hpp"

using namespace cudaembed;

namespace {

struct Trained {
  ModelState state;
  std::vector<EpochMetrics> epochs;
};

// `epochs` epochs of cpu_train_step over shuffled_epoch's batches: the reference.
Trained train_reference(const TrainConfig& config, const PairSet& pairs, const ModelState& init, int64_t epochs) {
  Trained t{init, {}};
  CpuWorkspace work(t.state, config.second_moment);
  std::vector<LabelledPair> order;
  for (int64_t e = 0; e < epochs; ++e) {
    shuffled_epoch(pairs, config.seed, e, order);
    EpochMetrics m;
    for (std::size_t start = 0; start < order.size(); start += config.batch)
      cpu_train_step(t.state, std::span(order).subspan(start, std::min<std::size_t>(config.batch, order.size() - start)),
                     config, work, m);
    t.epochs.push_back(m);
  }
  return t;
}

// The same through the backend, as `cudaembed train --threads N` runs it.
Trained train_backend(TrainConfig config, int threads, const PairSet& pairs, const ModelState& init, int64_t epochs) {
  config.threads = threads;
  auto backend = make_cpu_backend(config);
  Trained t{init, {}};
  for (const EpochRecord& r : train(*backend, pairs, t.state, epochs, nullptr)) t.epochs.push_back(r.metrics);
  backend->fetch(t.state, true);
  return t;
}

void check_identical(const Trained& reference, const Trained& run) {
  test::check_same_training(reference.state, reference.epochs, run.state, run.epochs);
}

}  // namespace

TEST_CASE("the dense step gives the reference step's bits on 1, 2 and 3 threads", "[threads]") {
  struct Case {
    int dims;
    bool normalize;
    SecondMoment moment;
  };
  // D = 2 and 3 take the unrolled loops, D = 5 the general ones.
  const Case c = GENERATE(Case{2, false, SecondMoment::lookups}, Case{2, false, SecondMoment::rows},
                          Case{3, true, SecondMoment::lookups}, Case{5, false, SecondMoment::lookups},
                          Case{5, true, SecondMoment::rows});
  TrainConfig config;
  config.dims = c.dims;
  config.normalize = c.normalize;
  config.second_moment = c.moment;
  // The default run's shape, shortened: 20,000 pairs in batches of 512, the last one partial.
  const PairSet pairs = generate_pairs_host(test::bundled_colours().rgb, PairSpec{20000, 42, 0.2f});
  const ModelState init = init_model(646, c.dims, InitSpec{});
  const Trained reference = train_reference(config, pairs, init, 3);
  for (int threads : {1, 2, 3}) {
    INFO("D " << c.dims << (c.normalize ? " normalised" : "") << ", adam-v " << to_string(c.moment) << ", "
              << threads << " threads");
    check_identical(reference, train_backend(config, threads, pairs, init, 3));
  }
}

TEST_CASE("the sorted path gives one thread's bits on 2 and 3 threads", "[threads]") {
  struct Case {
    Optimizer optimizer;
    Head head;
    int negatives;
  };
  const Case c = GENERATE(Case{Optimizer::lazy_adam, Head::dot, 2}, Case{Optimizer::adam, Head::euclidean, 0},
                          Case{Optimizer::adagrad, Head::euclidean, 1}, Case{Optimizer::radam, Head::poincare, 1});
  TrainConfig config;
  config.dims = 8;
  config.optimizer = c.optimizer;
  config.head = c.head;
  config.negatives = c.negatives;
  config.kernel = "sorted";
  config.batch = 256;
  config.adam.lr = 0.02f;
  // Hot rows: many lookups of one row in a batch, summed by the one member that owns it; weights.
  PairSet pairs = powerlaw_pairs({2000, 5000, 3, 0.3f, 7});
  pairs.weight.assign(pairs.size(), 0.75f);
  InitSpec spec;
  spec.head = c.head;
  const ModelState init = init_model(2000, 8, spec, c.optimizer);
  const Trained one = train_backend(config, 1, pairs, init, 2);
  for (int threads : {2, 3}) {
    INFO(to_string(c.optimizer) << ", " << c.negatives << " negatives, " << threads << " threads");
    check_identical(one, train_backend(config, threads, pairs, init, 2));
  }
}

TEST_CASE("a thread team meets at its barriers and passes on what a job throws", "[threads]") {
  ThreadTeam team(3);
  std::vector<int> seen(3 * 1000, -1);
  std::atomic<int> round{0};
  team.run([&](int rank) {
    for (int r = 0; r < 1000; ++r) {
      seen[static_cast<std::size_t>(r) * 3 + rank] = round.load();  // every member sees this round's value
      team.barrier();
      if (rank == 0) round.fetch_add(1);
      team.barrier();
    }
  });
  for (int r = 0; r < 1000; ++r)
    for (int m = 0; m < 3; ++m) CHECK(seen[static_cast<std::size_t>(r) * 3 + m] == r);
  CHECK_THROWS_WITH(team.run([](int rank) {
    if (rank == 2) throw std::runtime_error("member 2 failed");
  }),
                    "member 2 failed");
  int runs = 0;
  team.run([&](int rank) {
    if (rank == 0) ++runs;
  });  // still usable
  CHECK(runs == 1);
}

TEST_CASE("more threads than rows: the team shrinks to the rows and keeps the bits", "[threads]") {
  TrainConfig config;
  config.batch = 7;
  PairSet pairs;
  for (uint32_t i = 0; i < 40; ++i) {
    pairs.a.push_back(i % 2);
    pairs.b.push_back((i / 2) % 2);
    pairs.label.push_back(static_cast<float>(i % 3 == 0));
  }
  const ModelState init = init_model(2, 2, InitSpec{});
  check_identical(train_reference(config, pairs, init, 4), train_backend(config, 5, pairs, init, 4));
}

TEST_CASE("a stop flag ends a team's epoch after the same step on every thread count", "[threads]") {
  TrainConfig config;
  const PairSet pairs = generate_pairs_host(test::bundled_colours().rgb, PairSpec{20000, 42, 0.2f});
  const ModelState init = init_model(646, 2, InitSpec{});
  std::vector<ModelState> stopped;
  for (int threads : {1, 2}) {
    config.threads = threads;
    auto backend = make_cpu_backend(config);
    backend->load(pairs, init);
    std::atomic<bool> stop{true};  // already set: the epoch stops after its first step
    const EpochMetrics m = backend->train_epoch(&stop, EpochMetrics{});
    CHECK_FALSE(m.complete);
    CHECK(m.samples == 512);
    ModelState s;
    backend->fetch(s, true);
    CHECK(s.step == 1);
    stopped.push_back(s);
  }
  CHECK(stopped[0].table == stopped[1].table);
}

TEST_CASE("threads picked by size: one for small steps, the cores for big ones", "[threads]") {
  CHECK(auto_sorted_threads(512, 2, 2) == 1);
  CHECK(auto_sorted_threads(65536, 64, 2) == 2);
  CHECK(auto_sorted_threads(65536, 64, 16) == 8);
  CHECK(auto_dense_threads(init_model(646, 2, InitSpec{}), 512, 2) == 1);
  CHECK(auto_dense_threads(init_model(100000, 64, InitSpec{}), 8192, 2) == 2);
  CHECK(auto_dense_threads(init_model(100000, 64, InitSpec{}), 8192, 16) == 6);
  CHECK(auto_dense_threads(init_model(100000, 64, InitSpec{}), 8192, 0) == 1);
}

TEST_CASE("permute_range gives permute_index's positions", "[threads]") {
  // n around powers of two (cycle walking from 0 to nearly half the draws), keys with high bits.
  for (uint32_t n : {1u, 2u, 3u, 63u, 64u, 65u, 1000u, 65537u, 100000u, 131072u}) {
    for (uint32_t key : {0u, 12345u, 0xdeadbeefu, 0xffffffffu}) {
      const Permutation p = make_permutation(n, key);
      for (uint32_t first : {0u, 5u, n / 2}) {
        if (first >= n) continue;  // positions are below n
        const uint32_t count = std::min<uint32_t>(n - first, 1000);
        std::vector<uint32_t> got(count);
        permute_range(first, count, p, got.data());
        for (uint32_t i = 0; i < count; ++i) {
          INFO("n " << n << ", key " << key << ", position " << first + i);
          REQUIRE(got[i] == permute_index(first + i, p));
        }
      }
    }
  }
  // Near 2^32 the rotation's sum would not fit 32 bits.
  const Permutation big = make_permutation(0xfffffff0u, 0xfffffff7u);
  std::vector<uint32_t> got(200);
  permute_range(0xfffffff0u - 200, 200, big, got.data());
  for (uint32_t i = 0; i < 200; ++i) REQUIRE(got[i] == permute_index(0xfffffff0u - 200 + i, big));
}
