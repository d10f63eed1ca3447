// The sorted-segment path (host/train/sorted_step.cpp): every head and optimizer against a plain
// reference written here independently (a dense gradient table, then the optimizer row by row),
// duplicates counted once, determinism, state carried across a reload, and recovery of known
// positions end to end through a pairs file.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <tuple>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cudaembed/checkpoint.hpp"
#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/run_dir.hpp"
#include "cudaembed/synthetic.hpp"
#include "cudaembed/trainer.hpp"
#include "cudaembed/version.hpp"
#include "test_support.hpp"
#include "tolerance.hpp"

using namespace cudaembed;
using test::Tolerance;

namespace {

// The step as one would first write it: each sample's gradient added into a dense (N, D) table,
// then every row with at least one lookup updated (all rows for Keras's dense Adam).
void plain_step(ModelState& s, std::span<const PairRecord> batch, const TrainConfig& c) {
  const int dims = s.dims;
  const auto rows = static_cast<uint32_t>(s.rows);
  const auto samples = static_cast<uint32_t>(batch.size() * (c.negatives + 1));
  std::vector<float> grad(s.table.size(), 0.0f), grad_sq(s.table.size(), 0.0f);
  std::vector<int> lookups(s.rows, 0);
  float dense_grad[2] = {0, 0};
  for (uint32_t i = 0; i < samples; ++i) {
    const PairRecord x = step_sample(batch, i, c.negatives, c.seed, s.step, rows);
    auto add = [&](uint32_t row) {
      return [&, row](int k, float g) {
        grad[static_cast<std::size_t>(row) * dims + k] += g;
        grad_sq[static_cast<std::size_t>(row) * dims + k] += g * g;
      };
    };
    const auto r = pair_forward_backward(&s.table[static_cast<std::size_t>(x.a) * dims],
                                         &s.table[static_cast<std::size_t>(x.b) * dims], dims, c.normalize, s.dense[0],
                                         s.dense[1], x.label, x.weight / samples, add(x.a), add(x.b), c.head);
    ++lookups[x.a];
    ++lookups[x.b];
    dense_grad[0] += r.dlogit * r.score;
    dense_grad[1] += r.dlogit;
  }
  const int64_t t = s.step + 1;
  for (int64_t row = 0; row < s.rows; ++row) {
    if (lookups[row] == 0 && c.optimizer != Optimizer::adam) continue;
    const float* g = &grad[static_cast<std::size_t>(row) * dims];
    std::vector<float> g2(g, g + dims);
    for (int k = 0; k < dims; ++k)
      g2[k] = c.second_moment == SecondMoment::lookups ? grad_sq[row * dims + k] : g[k] * g[k];
    apply_row_update(s, row, g, g2.data(), c, adam_step_size(c.adam, t));
  }
  for (int i = 0; i < 2; ++i) {
    const float g = dense_grad[i];
    if (c.optimizer == Optimizer::sgd) {
      s.dense[i] -= c.adam.lr * g;
    } else if (c.optimizer == Optimizer::adagrad) {
      s.dense_v[i] += g * g;
      s.dense[i] -= c.adam.lr * g / (std::sqrt(s.dense_v[i]) + c.adam.epsilon);
    } else {
      adam_update(s.dense[i], s.dense_m[i], s.dense_v[i], g, g * g, adam_step_size(c.adam, t),
                  adam_coefficients(c.adam));
    }
  }
  s.step = t;
}

// Random pairs over `rows`; with `hot`, most lookups go to row 0, and some pairs are (r, r).
std::vector<PairRecord> random_batch(std::mt19937& rng, uint32_t rows, std::size_t count, bool hot) {
  std::uniform_int_distribution<uint32_t> row(0, rows - 1);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<PairRecord> batch;
  for (std::size_t i = 0; i < count; ++i) {
    const uint32_t a = hot && i % 4 != 3 ? 0 : row(rng);
    const uint32_t b = i % 9 == 4 ? a : row(rng);
    batch.push_back({a, b, unit(rng) < 0.4f ? 1.0f : 0.0f, 0.25f + unit(rng)});
  }
  return batch;
}

TrainConfig sparse_config(Optimizer optimizer, int dims) {
  TrainConfig c;
  c.dims = dims;
  c.optimizer = optimizer;
  c.adam.lr = optimizer == Optimizer::sgd ? 0.5f : 0.02f;  // large steps, so that a wrong update shows
  c.kernel = "sorted";
  return c;
}

}  // namespace

TEST_CASE("sorted step matches the plain dense-gradient step for every optimizer and head", "[sparse]") {
  const Optimizer optimizer = GENERATE(Optimizer::adam, Optimizer::lazy_adam, Optimizer::sgd, Optimizer::adagrad);
  const std::string head = GENERATE("euclidean", "dot", "cosine");
  const bool hot = GENERATE(false, true);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    const int dims = std::array{1, 2, 3, 8, 17, 64}[trial];
    const uint32_t rows = std::array{5u, 40u, 300u}[trial % 3];
    const std::size_t batch_size = std::array{1u, 7u, 64u}[(trial + 1) % 3];
    TrainConfig c = sparse_config(optimizer, dims);
    parse_head(head, c);
    c.negatives = trial % 2 ? 2 : 0;
    c.second_moment = trial % 3 == 2 ? SecondMoment::rows : SecondMoment::lookups;
    ModelState sorted = init_model(rows, dims, InitSpec{InitScheme::robust, 0.3f, 100u + trial}, optimizer);
    ModelState plain = sorted;
    SortedWorkspace work;
    EpochMetrics metrics;
    for (int step = 0; step < 4; ++step) {
      const auto batch = random_batch(rng, rows, batch_size, hot);
      cpu_sorted_step(sorted, batch, c, work, metrics);
      plain_step(plain, batch, c);
    }
    INFO(to_string(optimizer) << ", head " << head << ", hot " << hot << ", D " << dims << ", rows " << rows
                              << ", batch " << batch_size << ", negatives " << c.negatives);
    // Only the order of additions differs: the sorted path sums a row's lookups in lookup order.
    const Tolerance tol{1e-6, 1e-5};
    CHECK(sorted.step == plain.step);
    CHECK_CLOSE(sorted.table, plain.table, tol);
    CHECK_CLOSE(sorted.table_m, plain.table_m, tol);
    CHECK_CLOSE(sorted.table_v, plain.table_v, (Tolerance{1e-10, 1e-4}));
    CHECK_CLOSE(sorted.row_acc, plain.row_acc, (Tolerance{1e-10, 1e-4}));
    CHECK(sorted.row_step == plain.row_step);
    CHECK_CLOSE(std::vector<float>(sorted.dense, sorted.dense + 2), std::vector<float>(plain.dense, plain.dense + 2),
                tol);
  }
}

TEST_CASE("lazy optimizers leave untouched rows alone and dense adam moves them", "[sparse]") {
  const Optimizer optimizer = GENERATE(Optimizer::adam, Optimizer::lazy_adam, Optimizer::sgd, Optimizer::adagrad);
  TrainConfig c = sparse_config(optimizer, 4);
  ModelState s = init_model(10, 4, InitSpec{}, optimizer);
  SortedWorkspace work;
  EpochMetrics metrics;
  const std::vector<PairRecord> first{{1, 2, 1.0f, 1.0f}}, second{{3, 2, 0.0f, 1.0f}};
  cpu_sorted_step(s, first, c, work, metrics);
  const ModelState after_first = s;
  cpu_sorted_step(s, second, c, work, metrics);
  auto row = [](const ModelState& m, int r) { return std::vector<float>(&m.table[r * 4], &m.table[r * 4 + 4]); };
  INFO(to_string(optimizer));
  if (optimizer == Optimizer::adam) {
    CHECK(row(s, 1) != row(after_first, 1));  // its moment keeps moving it
  } else {
    CHECK(row(s, 1) == row(after_first, 1));
    CHECK(row(s, 9) == row(init_model(10, 4, InitSpec{}, optimizer), 9));
  }
  if (optimizer == Optimizer::lazy_adam) CHECK(s.row_step == std::vector<int64_t>{0, 1, 2, 1, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("a row's duplicate lookups are summed exactly once", "[sparse]") {
  // K copies of one pair with grad scale 1/K must move its rows exactly as the pair alone does.
  const int copies = GENERATE(2, 5, 600);
  const Optimizer optimizer = GENERATE(Optimizer::sgd, Optimizer::adagrad, Optimizer::lazy_adam);
  TrainConfig c = sparse_config(optimizer, 3);
  // Keras's per-lookup second moment sees K copies differently by design (K (g/K)^2); the
  // textbook one sees the row's sum, like the first moment.
  c.second_moment = SecondMoment::rows;
  const ModelState init = init_model(8, 3, InitSpec{InitScheme::robust, 0.5f, 3}, optimizer);
  ModelState many = init, one = init;
  SortedWorkspace work;
  EpochMetrics metrics;
  cpu_sorted_step(many, std::vector<PairRecord>(copies, {6, 2, 1.0f, 1.0f}), c, work, metrics);
  cpu_sorted_step(one, std::vector<PairRecord>{{6, 2, 1.0f, 1.0f}}, c, work, metrics);
  INFO(to_string(optimizer) << ", " << copies << " copies");
  // Summed twice would double the move (or, through Adagrad's accumulator, change it by ~30%).
  CHECK_CLOSE(many.table, one.table, (Tolerance{1e-7, 1e-4}));
  const auto moved = [&](const ModelState& s) { return std::fabs(s.table[6 * 3] - init.table[6 * 3]); };
  CHECK(moved(one) > 1e-4);
}

TEST_CASE("sort_by_row leaves the lookups as std::sort does, in one pass or three", "[sparse]") {
  // Keys as the step makes them: row << 32 | lookup, lookups in order; rows past 2048 need a second
  // 11-bit pass, past 2^22 a third.
  const uint32_t rows = GENERATE(1u, 7u, 2048u, 2049u, 100000u, 4294967295u);
  std::mt19937_64 rng(rows);
  std::vector<uint64_t> keys(5000), scratch;
  std::vector<uint32_t> count;
  for (uint32_t i = 0; i < keys.size(); ++i) {
    // A few hot rows, so that equal rows must keep their lookup order.
    const uint64_t row = i % 4 == 0 ? rows - 1 : rng() % rows;
    keys[i] = row << 32 | i;
  }
  std::vector<uint64_t> expected = keys;
  std::sort(expected.begin(), expected.end());
  sort_by_row(keys, rows, scratch, count);
  INFO(rows << " rows");
  CHECK(keys == expected);
}

TEST_CASE("a pair of a row with itself counts both lookups", "[sparse]") {
  // (r, r) under the dot head: dscore/de_r = e_r twice over.
  TrainConfig c = sparse_config(Optimizer::sgd, 2);
  c.head = Head::dot;
  ModelState s = init_model(3, 2, InitSpec{InitScheme::robust, 0.5f, 5}, Optimizer::sgd);
  const ModelState init = s;
  SortedWorkspace work;
  EpochMetrics metrics;
  cpu_sorted_step(s, std::vector<PairRecord>{{1, 1, 1.0f, 1.0f}}, c, work, metrics);
  const float* e = &init.table[2];
  const float score = e[0] * e[0] + e[1] * e[1];
  const float dlogit = bce_from_logit(init.dense[0] * score + init.dense[1], 1.0f).dlogit;
  for (int k = 0; k < 2; ++k) CHECK(s.table[2 + k] == Approx(e[k] - c.adam.lr * 2 * dlogit * init.dense[0] * e[k]));
}

TEST_CASE("sorted adam trains like the tutorial's dense step", "[sparse]") {
  const SecondMoment moment = GENERATE(SecondMoment::lookups, SecondMoment::rows);
  TrainConfig dense;
  dense.second_moment = moment;
  dense.batch = 512;
  dense.adam.lr = 0.01f;
  TrainConfig sorted = dense;
  sorted.kernel = "sorted";
  const PairSet pairs = generate_pairs_host(test::bundled_colours().rgb, PairSpec{6000, 9, 0.2f});
  const ModelState init = init_model(646, 2, InitSpec{});
  ModelState a = init, b = init;
  auto dense_backend = make_cpu_backend(dense);
  auto sorted_backend = make_cpu_backend(sorted);
  REQUIRE(dense_backend->info().kernel == "reference");
  REQUIRE(sorted_backend->info().kernel == "sorted");
  const auto ha = train(*dense_backend, pairs, a, 3, nullptr);
  const auto hb = train(*sorted_backend, pairs, b, 3, nullptr);
  INFO("adam-v " << to_string(moment));
  CHECK_CLOSE(b.table, a.table, (Tolerance{1e-6, 1e-4}));
  CHECK_CLOSE(b.table_v, a.table_v, (Tolerance{1e-12, 1e-4}));
  CHECK(hb.back().metrics.loss() == Approx(ha.back().metrics.loss()).epsilon(1e-6));
}

TEST_CASE("the sorted path repeats bit for bit and resumes from its state", "[sparse]") {
  const Optimizer optimizer = GENERATE(Optimizer::lazy_adam, Optimizer::adagrad);
  TrainConfig c = sparse_config(optimizer, 8);
  c.batch = 100;
  c.negatives = 1;
  c.head = Head::dot;
  PairSet pairs = powerlaw_pairs({500, 3000, 2, 0.3f, 4});
  pairs.weight.assign(pairs.size(), 0.5f);
  const ModelState init = init_model(500, 8, InitSpec{}, optimizer);
  ModelState once = init, again = init, halves = init;
  auto b1 = make_cpu_backend(c), b2 = make_cpu_backend(c), b3 = make_cpu_backend(c);
  train(*b1, pairs, once, 4, nullptr);
  train(*b2, pairs, again, 4, nullptr);
  CHECK(once.table == again.table);
  // Two epochs, the state through a checkpoint file and back, two more: the same four epochs.
  train(*b3, pairs, halves, 2, nullptr);
  test::TempDir dir;
  const std::string path = (dir / "checkpoint.bin");
  write_checkpoint(path, {"{}", 2, halves, {}, {}});
  ModelState reloaded = read_checkpoint(path).state;
  CHECK(reloaded.row_step == halves.row_step);
  CHECK(reloaded.row_acc == halves.row_acc);
  auto b4 = make_cpu_backend(c);
  train(*b4, pairs, reloaded, 2, nullptr, 2);
  INFO(to_string(optimizer));
  CHECK(reloaded.table == once.table);
  CHECK(reloaded.dense[0] == once.dense[0]);
}

TEST_CASE("negatives are drawn per step and the same on every call", "[sparse]") {
  const std::vector<PairRecord> batch{{3, 4, 1.0f, 2.0f}, {5, 6, 1.0f, 1.0f}};
  const PairRecord n1 = step_sample(batch, 1, 3, 42, 10, 1000);
  CHECK(n1.a == 3);
  CHECK(n1.label == 0.0f);
  CHECK(n1.weight == 2.0f);
  CHECK(step_sample(batch, 4, 3, 42, 10, 1000).a == 5);  // sample 4 is the second pair itself
  CHECK(step_sample(batch, 4, 3, 42, 10, 1000).b == 6);
  CHECK(step_sample(batch, 1, 3, 42, 10, 1000).b == n1.b);
  // Over many draws, uniform over the rows.
  std::vector<int> counts(10, 0);
  for (uint32_t s = 0; s < 20000; ++s) ++counts[negative_row(42, s / 100, s % 100, 10)];
  for (int count : counts) CHECK(count == Approx(2000).margin(200));
}

TEST_CASE("train recovers known positions from a pairs file of names", "[sparse][cli]") {
  test::TempDir dir;
  const LatentPairs latent = latent_pairs({120, 30000, 0.2f, 3});
  // Names in an order of their own, so the vocabulary (first appearance) differs from the truth's.
  std::string csv = "a,b,label\n";
  for (std::size_t i = 0; i < latent.pairs.size(); ++i)
    csv += fmt::format("\"pt {}, x\",\"pt {}, x\",{}\n", latent.pairs.a[i], latent.pairs.b[i], latent.pairs.label[i]);
  std::ofstream((dir / "pairs.csv")) << csv;
  const std::string out = (dir / "run");
  const auto r =
      test::run_cli(fmt::format("train --device cpu --pairs-file {} --optimizer lazy-adam --dims 3 --epochs 60 "
                                "--batch 128 --out {} --no-plot",
                                test::shell_quote((dir / "pairs.csv")), test::shell_quote(out)));
  REQUIRE(r.status == 0);
  const std::vector<std::string> vocab = read_vocab_tsv(out + "/vocab.tsv");
  const RunDir run = read_run_dir(out);
  REQUIRE(vocab.size() == 120);
  CHECK(run.names == vocab);
  CHECK_FALSE(run.has_colours);
  // Row i of the table is vocab[i] = "pt <j>, x": compare its distances with point j's.
  std::vector<float> truth;
  for (const auto& name : vocab) {
    const int j = std::stoi(name.substr(3));
    truth.insert(truth.end(), &latent.positions[3 * j], &latent.positions[3 * j + 3]);
  }
  CHECK(vocab.front() == fmt::format("pt {}, x", latent.pairs.a[0]));
  const EmbeddingQuality q = evaluate_embedding(run.embedding, 3, truth, 3, 10, false);
  // Measured 0.983-0.985 over seeds 1-5 on these settings; a broken gradient or vocabulary lands near 0.
  CHECK(q.spearman > 0.9);
}

TEST_CASE("cli: positives-only file with negatives, dot head, adagrad, then convert and resume", "[sparse][cli]") {
  test::TempDir dir;
  std::string csv;  // no header, no label: positives only, names with a comma
  for (int i = 0; i < 400; ++i) csv += fmt::format("\"user {}, x\",item{}\n", i % 37, (i * 7) % 23);
  std::ofstream(dir / "pos.csv") << csv;
  const std::string run = dir / "run";
  const auto r = test::run_cli(
      fmt::format("train --device cpu --pairs-file {} --negatives 3 --head dot --optimizer adagrad --dims 8 --epochs 4 "
                  "--batch 64 --checkpoint-every 2 --out {}",
                  test::shell_quote(dir / "pos.csv"), test::shell_quote(run)));
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto json = nlohmann::json::parse(std::ifstream(run + "/run.json"));
  CHECK(json["config"]["negatives"] == 3);
  CHECK(json["config"]["head"] == "dot");
  CHECK(json["config"]["optimizer"] == "adagrad");
  CHECK(json["backend"]["kernel"] == "sorted");
  CHECK(json["data"]["labelled"] == false);
  CHECK(json["data"]["rows"] == 37 + 23);
  CHECK_FALSE(json["final"].contains("spearman_rgb"));
  // One positive in four samples: accuracy well above chance means the negatives were learned.
  CHECK(json["final"]["accuracy"].get<double>() > 0.74);
  CHECK(read_vocab_tsv(run + "/vocab.tsv").front() == "user 0, x");
  CHECK(std::filesystem::exists(run + "/plot.png"));
  // evaluate compares with RGB, which a pairs file does not have: a clear error.
  const auto eval = test::run_cli("evaluate " + test::shell_quote(run));
  CHECK(eval.status == 1);
  CHECK_THAT(eval.output, Catch::Contains("trained on a pairs file"));
  // neighbours by name works, without colour columns, ranked by the dot head's dot product.
  const auto nb = test::run_cli("neighbours " + test::shell_quote(run) + " 'user 3, x' -k 3");
  CHECK(nb.status == 0);
  CHECK_THAT(nb.output, Catch::Contains("3 most similar to user 3, x") && Catch::Contains("ranked by dot product"));

  // The same file through convert-pairs trains to the same table.
  const auto conv = test::run_cli(
      fmt::format("convert-pairs {} {}", test::shell_quote(dir / "pos.csv"), test::shell_quote(dir / "pos.cepairs")));
  REQUIRE(conv.status == 0);
  const std::string run2 = dir / "run2";
  REQUIRE(test::run_cli(fmt::format("train --device cpu --pairs-file {} --negatives 3 --head dot --optimizer adagrad "
                                    "--dims 8 --epochs 4 --batch 64 --no-plot --out {}",
                                    test::shell_quote(dir / "pos.cepairs"), test::shell_quote(run2)))
              .status == 0);
  CHECK(read_npy(run2 + "/embedding.npy").data == read_npy(run + "/embedding.npy").data);

  // Resuming the finished run from its checkpoint rewrites the same outputs.
  const auto before = read_npy(run + "/embedding.npy").data;
  const auto resumed = test::run_cli("train --resume " + test::shell_quote(run) + " --no-plot");
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  CHECK(read_npy(run + "/embedding.npy").data == before);
}

TEST_CASE("cli: pairs-file flags that conflict or do not apply are refused", "[sparse][cli]") {
  test::TempDir dir;
  std::ofstream(dir / "p.csv") << "a,b,label\n1,2,1\n";
  const std::string file = test::shell_quote(dir / "p.csv");
  for (const auto& [args, expected] : std::vector<std::pair<std::string, std::string>>{
           {"train --pairs-file " + file + " --pairs 10", "--pairs"},
           {"train --rows 5", "--rows requires --pairs-file"},
           {"train --head taxicab", "--head"},
           {"train --optimizer rmsprop", "--optimizer"},
           // Checked before the device is looked for, so it is testable without one (not without CUDA).
           {"train --device cuda --optimizer sgd --dims 5",
            kWithCuda ? "--dims 5: the GPU's sorted-segment kernels are built for" : "-DCUDAEMBED_CUDA=ON"},
           {"train --pairs-file " + file + " --rows 2", "not below --rows 2"},
           {"train --pairs-file " + file + " --id-kind names --rows 9", "--rows"},
       }) {
    const auto r = test::run_cli(args + " --out " + test::shell_quote(dir / "never"));
    INFO(args << "\n" << r.output);
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Catch::Contains(expected));
    CHECK_FALSE(std::filesystem::exists(dir / "never"));
  }
  const auto synth = test::run_cli("synth --kind powerlaw --out " + test::shell_quote(dir / "x.csv"));
  CHECK(synth.status == 1);
  CHECK_THAT(synth.output, Catch::Contains("powerlaw files are CEPAIRS1"));
}

TEST_CASE("cli: synth files train; --snapshots none and big tables skip what nobody reads", "[sparse][cli]") {
  test::TempDir dir;
  // latent as CEPAIRS1: names inside the file, true positions beside it.
  const std::string latent = dir / "latent.cepairs";
  REQUIRE(test::run_cli("synth --kind latent --rows 50 --pairs 2000 --out " + test::shell_quote(latent)).status == 0);
  const PairsData data = read_pairs_file(latent);
  CHECK(data.ids == IdKind::names);
  CHECK(data.pairs.size() == 2000);
  CHECK(read_npy(latent + ".positions.npy").shape == std::vector<uint64_t>{50, 3});
  // --deterministic with a sparse optimizer: the sorted path, which is deterministic as it is.
  const std::string run = dir / "run";
  const auto r = test::run_cli(fmt::format(
      "train --device cpu --pairs-file {} --optimizer lazy-adam --deterministic --snapshots none --epochs 2 "
      "--no-plot --out {}",
      test::shell_quote(latent), test::shell_quote(run)));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_FALSE(std::filesystem::exists(run + "/snapshots.npy"));
  CHECK(nlohmann::json::parse(std::ifstream(run + "/run.json"))["config"]["kernel"] == "sorted");

  // powerlaw: integer ids; a 100,001 x 100 table (just over 10M values, and over 100,000 rows)
  // gets its .npy files but no text outputs and no plot.
  const std::string powerlaw = dir / "powerlaw.cepairs";
  REQUIRE(
      test::run_cli("synth --kind powerlaw --rows 100001 --pairs 1000 --out " + test::shell_quote(powerlaw)).status ==
      0);
  CHECK(read_pairs_file(powerlaw).ids == IdKind::ints);
  const std::string big = dir / "big";
  const auto b =
      test::run_cli(fmt::format("train --device cpu --pairs-file {} --optimizer sgd --dims 100 --epochs 1 "
                                "--batch 500 --out {}",
                                test::shell_quote(powerlaw), test::shell_quote(big)));
  INFO(b.output);
  REQUIRE(b.status == 0);
  CHECK(read_npy(big + "/embedding.npy").shape == std::vector<uint64_t>{100001, 100});
  CHECK(std::filesystem::exists(big + "/snapshots.npy"));  // 2 x 40 MB: under --snapshots auto's 1 GiB
  CHECK(std::filesystem::exists(big + "/metadata.tsv"));
  CHECK_FALSE(std::filesystem::exists(big + "/vectors.tsv"));
  CHECK_FALSE(std::filesystem::exists(big + "/word2vec.txt"));
  CHECK_FALSE(std::filesystem::exists(big + "/plot.png"));
  CHECK_FALSE(std::filesystem::exists(big + "/vocab.tsv"));  // integer ids have no names to write
}

TEST_CASE("a pair record is one aligned 16-byte load on the GPU", "[sparse]") {
  CHECK(sizeof(PairRecord) == 16);
  CHECK(alignof(PairRecord) == 16);
  std::vector<PairRecord> records(3);
  CHECK(reinterpret_cast<std::uintptr_t>(records.data()) % 16 == 0);
}
