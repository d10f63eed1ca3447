// The library API (api.hpp): fit() and write_run_dir() give what `cudaembed train` gives, each data
// source trains the same pairs the same way, callbacks see every epoch and can stop, and bad
// arrays are refused with a message.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "cudaembed/api.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/run_dir.hpp"
#include "test_support.hpp"

namespace cudaembed::test {
namespace {

TrainingRequest colours_request(int64_t epochs) {
  TrainingRequest request;
  request.data = ColoursSource{std::string(CUDAEMBED_SOURCE_DIR) + "/data/colours.csv", PairSpec{20000, 0, 0.2f}};
  request.train.epochs = epochs;
  request.device = "cpu";
  return request;
}

// A pairs CSV with names, labels and a hot row: what a user's own file looks like.
std::string write_named_pairs(const TempDir& tmp) {
  std::ofstream out(tmp / "pairs.csv");
  out << "a,b,label\n";
  const char* names[] = {"ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"};
  for (int i = 0; i < 400; ++i) out << names[i % 8] << ',' << names[(i * 5 + 1) % 8] << ',' << (i % 3 == 0) << '\n';
  return tmp / "pairs.csv";
}

TrainingRequest named_pairs_request(const TempDir& tmp, int64_t epochs) {
  TrainingRequest request;
  request.data = PairsFileSource{write_named_pairs(tmp), {}};
  request.train.epochs = epochs;
  request.train.batch = 64;
  request.device = "cpu";
  return request;
}

}  // namespace

TEST_CASE("api: fit and write_run_dir write what `cudaembed train` writes", "[api]") {
  TempDir tmp;
  const TrainedModel model = fit(colours_request(3));
  CHECK(model.finished());
  CHECK(model.history.size() == 3);
  CHECK(model.backend.name == "cpu");
  RunDirOptions options;
  options.path = tmp / "lib";
  options.plot = false;
  prepare_run_dir(options.path, false);
  write_run_dir(model, options);

  const RunResult cli = run_cli("train --device cpu --pairs 20000 --epochs 3 --no-plot --snapshots none --out " +
                                shell_quote(tmp / "cli"));
  REQUIRE(cli.status == 0);
  for (const char* file : {"embedding.npy", "metadata.tsv", "vectors.tsv", "word2vec.txt"}) {
    INFO(file);
    CHECK(slurp(tmp / ("lib/" + std::string(file))) == slurp(tmp / ("cli/" + std::string(file))));
  }
  const RunDir run = read_run_dir(tmp / "lib");
  CHECK(run.rows == 646);
  CHECK(run.embedding == model.rows());
}

TEST_CASE("api: a pairs file, and the same pairs as arrays, train the same table", "[api]") {
  TempDir tmp;
  const TrainingRequest from_file = named_pairs_request(tmp, 5);
  const TrainedModel a = fit(from_file);

  PairsData read = read_pairs_file(tmp / "pairs.csv");
  TrainingRequest from_arrays = from_file;
  from_arrays.data = PairArrays{read.pairs, 0, read.names};
  const TrainedModel b = fit(from_arrays);
  CHECK(b.data.rows == 8);  // rows 0: the largest id + 1
  CHECK(b.data.vocab == a.data.vocab);
  CHECK(a.state.table == b.state.table);
  CHECK(a.state.dense[0] == b.state.dense[0]);
  REQUIRE(a.history.size() == b.history.size());
  CHECK(a.history.back().metrics.loss_sum == b.history.back().metrics.loss_sum);
}

TEST_CASE("api: callbacks see each epoch's table, and returning false stops cleanly", "[api]") {
  std::vector<int64_t> epochs;
  std::vector<float> last_seen;
  Callbacks callbacks;
  callbacks.on_epoch = [&](const EpochView& v) {
    epochs.push_back(v.record.epoch);
    CHECK(v.history.size() == epochs.size());
    last_seen = v.state.table;
    return v.record.epoch < 2;  // stop after epoch 2
  };
  const TrainedModel stopped = fit(colours_request(5), callbacks);
  CHECK(epochs == std::vector<int64_t>{1, 2});
  CHECK_FALSE(stopped.finished());
  CHECK(stopped.history.size() == 2);
  CHECK(last_seen == stopped.state.table);

  const TrainedModel two = fit(colours_request(2));  // the same table as a run of 2 epochs
  CHECK(stopped.state.table == two.state.table);
  CHECK(stopped.state.step == two.state.step);
}

TEST_CASE("api: a stop flag set before training trains nothing", "[api]") {
  std::atomic<bool> stop{true};
  Callbacks callbacks;
  callbacks.stop = &stop;
  const TrainingRequest request = colours_request(3);
  TrainingSession session(request);
  const std::vector<float> initial = session.state().table;
  const TrainedModel model = session.run(callbacks);
  CHECK(model.history.empty());
  CHECK(model.state.table == initial);
  // The model has left the session: it refuses to run again rather than train what is left.
  CHECK_THROWS_WITH(session.run(), Catch::Contains("trained already"));
}

TEST_CASE("api: validation scores held-out pairs after every epoch", "[api]") {
  TempDir tmp;
  TrainingRequest request = named_pairs_request(tmp, 4);
  request.validation = 0.2;
  std::vector<double> seen;
  Callbacks callbacks;
  callbacks.on_epoch = [&](const EpochView& v) {
    REQUIRE(v.val_loss);
    seen.push_back(*v.val_loss);
    return true;
  };
  const TrainedModel model = fit(request, callbacks);
  CHECK(model.val_loss == seen);
  CHECK(model.val_loss.size() == 4);
  CHECK(model.held_out != nullptr);
  CHECK(error_of([] {
          TrainingRequest colours = colours_request(1);
          colours.validation = 0.1;
          TrainingSession session(colours);
        }).find("--validation") != std::string::npos);
}

TEST_CASE("api: bad arrays are refused, naming the pair and the limit", "[api]") {
  auto request_for = [](PairArrays arrays) {
    TrainingRequest request;
    request.data = std::move(arrays);
    request.device = "cpu";
    request.train.epochs = 1;
    return request;
  };
  PairSet pairs;
  pairs.a = {0, 1, 2};
  pairs.b = {1, 2, 0};
  pairs.label = {1, 0, 1};
  CHECK(error_of([&] { fit(request_for(PairArrays{pairs, 2, {}})); }).find("pair 1 has id 2, but there are 2 rows") !=
        std::string::npos);
  PairSet shorter = pairs;
  shorter.b.pop_back();
  CHECK(error_of([&] { fit(request_for(PairArrays{shorter, 0, {}})); }).find("a has 3 ids but b has 2") !=
        std::string::npos);
  PairSet half = pairs;
  half.label[2] = 0.5f;
  CHECK(error_of([&] { fit(request_for(PairArrays{half, 0, {}})); }).find("pair 2 has label 0.5") != std::string::npos);
  PairSet negative = pairs;
  negative.weight = {1, -1, 1};
  CHECK(error_of([&] { fit(request_for(PairArrays{negative, 0, {}})); }).find("pair 1 has weight -1") !=
        std::string::npos);
  CHECK(error_of([&] { fit(request_for(PairArrays{pairs, 0, {"x", "y"}})); }).find("2 names for 3 rows") !=
        std::string::npos);
  CHECK(error_of([&] { fit(request_for(PairArrays{PairSet{}, 0, {}})); }).find("no pairs") != std::string::npos);
}

TEST_CASE("api: as_run_dir is what read_run_dir reads back of write_run_dir's files", "[api]") {
  TempDir tmp;
  TrainingRequest colours = colours_request(2);
  colours.train.dims = 3;
  colours.train.normalize = true;
  for (const TrainingRequest& request : {colours, named_pairs_request(tmp, 2)}) {
    const TrainedModel model = fit(request);
    const std::string dir = tmp / (model.data.rgb.empty() ? "pairs" : "colours");
    prepare_run_dir(dir, false);
    write_run_dir(model, {.path = dir, .plot = false});
    const RunDir written = read_run_dir(dir);
    const RunDir memory = as_run_dir(model);
    INFO(dir);
    CHECK(memory.rows == written.rows);
    CHECK(memory.dims == written.dims);
    CHECK(memory.normalize == written.normalize);
    CHECK(memory.rows_l2_normalized == written.rows_l2_normalized);
    CHECK(memory.head == written.head);
    CHECK(memory.embedding == written.embedding);
    CHECK(memory.names == written.names);
    CHECK(memory.has_colours == written.has_colours);
    REQUIRE(memory.rgb.size() == written.rgb.size());
    for (std::size_t i = 0; i < memory.rgb.size(); ++i)  // metadata.tsv's hex: 1/255 steps
      CHECK(std::abs(memory.rgb[i] - written.rgb[i]) <= 1e-6f);
  }
}

TEST_CASE("api: resume refuses a checkpoint of another shape", "[api]") {
  TrainingSession session(colours_request(1));
  Checkpoint other;
  other.state = init_model(10, 2, InitSpec{});
  CHECK(error_of([&] { session.resume(other, {}); }).find("a 10 x 2 table") != std::string::npos);
}

// What data-parallel ranks rely on (they always take the sorted path): for the tutorial's model
// the CPU's sorted step trains the dense step's bits.
TEST_CASE("api: the CPU's sorted path trains the tutorial's model to the dense step's bits", "[api]") {
  for (const auto& [dims, normalize, moment] : {std::tuple{2, false, SecondMoment::lookups},
                                                {3, true, SecondMoment::lookups}, {8, false, SecondMoment::rows}}) {
    TrainingRequest request = colours_request(3);
    request.train.dims = dims;
    request.train.normalize = normalize;
    request.train.second_moment = moment;
    INFO("dims " << dims << (normalize ? " normalised" : "") << (moment == SecondMoment::rows ? " adam-v rows" : ""));
    const TrainedModel dense = fit(request);
    request.train.kernel = "sorted";
    const TrainedModel sorted = fit(request);
    CHECK(dense.backend.kernel == "reference");
    CHECK(sorted.backend.kernel == "sorted");
    CHECK(sorted.state.table == dense.state.table);
    CHECK(sorted.state.table_v == dense.state.table_v);
    CHECK(sorted.state.dense[0] == dense.state.dense[0]);
    CHECK(sorted.history.back().metrics.loss_sum == dense.history.back().metrics.loss_sum);
  }
}

}  // namespace cudaembed::test
