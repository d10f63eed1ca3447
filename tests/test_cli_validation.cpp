// End-to-end tests of held-out evaluation through the real binary: `train --validation` writes
// val_loss, link_prediction and validation_pairs.csv, and `evaluate RUN --pairs` reproduces the
// numbers, reports reconstruction, and says what it skipped or why it cannot run.
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

using Catch::Matchers::Contains;
using cudaembed::test::run_cli;
using cudaembed::test::RunResult;
using cudaembed::test::shell_quote;
using cudaembed::test::slurp;
using cudaembed::test::TempDir;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Positives only, names n0..n59 in three communities (row i in community i % 3): 600 random pairs
// within a community. A model that learns the communities ranks held-out partners high.
std::string community_graph_csv() {
  std::mt19937 rng(17);
  std::string csv;
  for (int n = 0; n < 600;) {
    const unsigned a = rng() % 60, b = rng() % 60;
    if (a == b || a % 3 != b % 3) continue;
    csv += "n" + std::to_string(a) + ",n" + std::to_string(b) + "\n";
    ++n;
  }
  return csv;
}

const std::string kTrain = "train --device cpu --no-plot --snapshots none --dims 4 --negatives 2 --batch 32 ";

}  // namespace

TEST_CASE("cli: train --validation writes val_loss, link_prediction and the held-out pairs", "[cli][validation]") {
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  const std::string out = tmp / "run";
  const RunResult r = run_cli(kTrain + "--epochs 40 --validation 0.2 --seed 3 --pairs-file " + shell_quote(graph) +
                              " --out " + shell_quote(out));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.output,
             Contains("--validation 0.2: holding out 120 positive and 0 other pairs (seed 3); 480 pairs train"));
  CHECK_THAT(r.output, Contains("val_loss"));
  CHECK_THAT(r.output, Contains("held-out link prediction: MRR"));

  const auto metrics = lines(slurp(out + "/metrics.csv"));
  REQUIRE(metrics.size() == 41);
  CHECK(metrics[0] == "epoch,loss,mse,accuracy,seconds,val_loss");
  std::vector<double> val_loss;
  for (std::size_t i = 1; i < metrics.size(); ++i)
    val_loss.push_back(std::stod(metrics[i].substr(metrics[i].rfind(',') + 1)));
  for (const double v : val_loss) CHECK((std::isfinite(v) && v > 0));
  CHECK(val_loss.back() < val_loss.front());  // the held-out loss falls as the communities are learnt

  const auto run = nlohmann::json::parse(slurp(out + "/run.json"));
  CHECK(run["config"]["validation"] == 0.2);
  CHECK(run["data"]["validation"]["held_out_positives"] == 120);
  CHECK(run["data"]["validation"]["training_pairs"] == 480);
  CHECK(run["data"]["validation"]["loss_samples"] == 360);  // 120 pairs and 2 negatives each
  CHECK(run["final"]["val_loss"].get<double>() == Approx(val_loss.back()).epsilon(1e-8));
  const auto& lp = run["link_prediction"];
  CHECK(lp["queries"] == 120);
  CHECK(lp["candidates"] == "all");
  CHECK(lp["filtered"] == true);
  CHECK(lp["hits@1"].get<double>() <= lp["hits@10"].get<double>());
  CHECK(lp["hits@10"].get<double>() <= lp["hits@50"].get<double>());
  CHECK(lp["mrr"].get<double>() > 0);
  CHECK(lp["mrr"].get<double>() <= 1);
  // 20 rows share a community and 40 do not: a model that learnt them ranks most partners above
  // the other communities' rows (chance is 0.5).
  CHECK(lp["auc"].get<double>() > 0.6);

  const std::string held = slurp(out + "/validation_pairs.csv");
  CHECK(lines(held).size() == 121);
  CHECK(lines(held)[0] == "a,b,label");

  // The same seed holds out the same pairs; another seed others.
  const RunResult again = run_cli(kTrain + "--epochs 40 --validation 0.2 --seed 3 --pairs-file " + shell_quote(graph) +
                                  " --out " + shell_quote(tmp / "again"));
  REQUIRE(again.status == 0);
  CHECK(slurp(tmp / "again/validation_pairs.csv") == held);
  CHECK(slurp(tmp / "again/metrics.csv").size() == slurp(out + "/metrics.csv").size());
  const RunResult other = run_cli(kTrain + "--epochs 40 --validation 0.2 --seed 4 --pairs-file " + shell_quote(graph) +
                                  " --out " + shell_quote(tmp / "other"));
  REQUIRE(other.status == 0);
  CHECK(slurp(tmp / "other/validation_pairs.csv") != held);

  // evaluate --pairs on the held-out pairs, filtered of the training file too, is the same ranking.
  const RunResult e = run_cli("evaluate --device cpu --json " + shell_quote(out) + " --pairs " +
                              shell_quote(out + "/validation_pairs.csv") + " --filter " + shell_quote(graph));
  INFO(e.output);
  REQUIRE(e.status == 0);
  const auto ej = nlohmann::json::parse(e.output);
  CHECK(ej["link_prediction"] == lp);
  CHECK(ej["pairs_skipped"] == 0);
  CHECK(ej["reconstruction"]["edges"].get<int>() > 0);
}

TEST_CASE("cli: without --validation a pairs-file run writes what it always did", "[cli][validation]") {
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  const std::string out = tmp / "run";
  const RunResult r = run_cli(kTrain + "--epochs 2 --pairs-file " + shell_quote(graph) + " --out " + shell_quote(out));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(lines(slurp(out + "/metrics.csv"))[0] == "epoch,loss,mse,accuracy,seconds");
  const auto run = nlohmann::json::parse(slurp(out + "/run.json"));
  CHECK_FALSE(run.contains("link_prediction"));
  CHECK_FALSE(run["config"].contains("validation"));
  CHECK_FALSE(std::ifstream(out + "/validation_pairs.csv").good());
}

TEST_CASE("cli: evaluate --pairs gives link prediction and reconstruction, or drawn candidates", "[cli][validation]") {
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  const std::string out = tmp / "run";
  REQUIRE(run_cli(kTrain + "--epochs 40 --pairs-file " + shell_quote(graph) + " --out " + shell_quote(out)).status ==
          0);

  const RunResult text = run_cli("evaluate --device cpu " + shell_quote(out) + " --pairs " + shell_quote(graph));
  INFO(text.output);
  REQUIRE(text.status == 0);
  CHECK_THAT(text.output, Contains("link prediction: MRR") && Contains("against all rows"));
  CHECK_THAT(text.output, Contains("reconstruction MAP") && Contains("60 nodes"));

  const RunResult sampled = run_cli("evaluate --device cpu --json --eval-candidates 7 " + shell_quote(out) +
                                    " --pairs " + shell_quote(graph));
  INFO(sampled.output);
  REQUIRE(sampled.status == 0);
  const auto j = nlohmann::json::parse(sampled.output);
  CHECK(j["link_prediction"]["candidates"] == 7);
  CHECK(j["reconstruction"].is_null());
  // Seeded: the run's seed by default, the same numbers every time; another --seed draws others.
  CHECK(
      run_cli("evaluate --device cpu --json --eval-candidates 7 " + shell_quote(out) + " --pairs " + shell_quote(graph))
          .output == sampled.output);
  CHECK(run_cli("evaluate --device cpu --json --eval-candidates 7 --seed 99 " + shell_quote(out) + " --pairs " +
                shell_quote(graph))
            .output != sampled.output);
}

TEST_CASE("cli: --validation and evaluate --pairs say what is wrong", "[cli][validation]") {
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  const std::string out = tmp / "run";
  REQUIRE(run_cli(kTrain + "--epochs 2 --pairs-file " + shell_quote(graph) + " --out " + shell_quote(out)).status == 0);

  const RunResult colours = run_cli("train --device cpu --epochs 1 --validation 0.1 --out " + shell_quote(tmp / "c"));
  CHECK(colours.status == 1);
  CHECK_THAT(colours.output, Contains("--validation: holds out pairs of a --pairs-file"));
  for (const char* bad : {"0", "1", "1.5", "x"}) {
    const RunResult r = run_cli(kTrain + "--epochs 2 --validation " + bad + " --pairs-file " + shell_quote(graph) +
                                " --out " + shell_quote(tmp / "bad"));
    INFO(bad << ": " << r.output);
    CHECK(r.status != 0);
    CHECK_THAT(r.output, Contains("--validation"));
  }

  const RunResult no_pairs = run_cli("evaluate --device cpu " + shell_quote(out));
  CHECK(no_pairs.status == 1);
  CHECK_THAT(no_pairs.output, Contains("--pairs FILE"));

  const std::string some_unknown = tmp / "some.csv";
  std::ofstream(some_unknown) << "n0,n3\nn1,nobody\nn2,n5\n";
  const RunResult skipped =
      run_cli("evaluate --device cpu " + shell_quote(out) + " --pairs " + shell_quote(some_unknown));
  INFO(skipped.output);
  CHECK(skipped.status == 0);
  CHECK_THAT(skipped.output,
             Contains("skipped 1 of 3 pairs that name rows the run does not have (for example nobody)"));

  const std::string all_unknown = tmp / "none.csv";
  std::ofstream(all_unknown) << "x,y\nz,w\n";
  const RunResult none = run_cli("evaluate --device cpu " + shell_quote(out) + " --pairs " + shell_quote(all_unknown));
  CHECK(none.status == 1);
  CHECK_THAT(none.output, Contains("none of its 2 pairs names two rows of the run"));

  const std::string negatives = tmp / "negatives.csv";
  std::ofstream(negatives) << "a,b,label\nn0,n1,0\n";
  const RunResult no_positive =
      run_cli("evaluate --device cpu " + shell_quote(out) + " --pairs " + shell_quote(negatives));
  CHECK(no_positive.status == 1);
  CHECK_THAT(no_positive.output, Contains("no positive pairs (label above 0.5) to rank"));

  CHECK(run_cli("evaluate --device cpu " + shell_quote(out) + " --filter " + shell_quote(graph)).status != 0);
}

// An independent implementation: tests/scripts/link_prediction_reference.py recomputes reconstruction
// as Nickel & Kiela's code does (sorted positions, scikit-learn's average precision) and the filtered
// link prediction by sorting, in plain Python. A trained table has no exact ties, where the two
// tie rules would differ, so the numbers must agree to rounding.
TEST_CASE("cli: evaluate --pairs agrees with an independent Python reference", "[cli][validation]") {
  if (cudaembed::test::run_shell("python3 --version >/dev/null 2>&1").status != 0) {
    WARN("python3 not found: the independent reference is not run");
    return;
  }
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  for (const char* head : {"euclidean", "cosine"}) {
    const std::string out = tmp / head;
    REQUIRE(run_cli(kTrain + "--epochs 20 --head " + head + " --pairs-file " + shell_quote(graph) + " --out " +
                    shell_quote(out))
                .status == 0);
    const RunResult ours =
        run_cli("evaluate --device cpu --json " + shell_quote(out) + " --pairs " + shell_quote(graph));
    const RunResult reference = cudaembed::test::run_shell(
        "python3 " + shell_quote(std::string(CUDAEMBED_SOURCE_DIR) + "/tests/scripts/link_prediction_reference.py") +
        " " + shell_quote(out) + " " + shell_quote(graph));
    INFO(head << "\nours: " << ours.output << "\nreference: " << reference.output);
    REQUIRE(ours.status == 0);
    REQUIRE(reference.status == 0);
    const auto a = nlohmann::json::parse(ours.output), b = nlohmann::json::parse(reference.output);
    for (const char* group : {"link_prediction", "reconstruction"})
      for (const auto& [key, value] : b[group].items()) {
        INFO(group << "." << key);
        CHECK(a[group][key].get<double>() == Approx(value.get<double>()).epsilon(1e-9));
      }
  }
}

// --resume of a finished run writes its outputs again: val_loss comes back from the checkpoint.
TEST_CASE("cli: --resume keeps the val_loss column", "[cli][validation]") {
  TempDir tmp;
  const std::string graph = tmp / "graph.csv";
  std::ofstream(graph) << community_graph_csv();
  const std::string out = tmp / "run";
  REQUIRE(run_cli(kTrain + "--epochs 6 --checkpoint-every 2 --validation 0.1 --pairs-file " + shell_quote(graph) +
                  " --out " + shell_quote(out))
              .status == 0);
  auto without_seconds = [](const std::string& csv) {
    std::string out;
    for (const std::string& line : lines(csv)) {
      const auto last = line.rfind(','), before = line.rfind(',', last - 1);
      out += line.substr(0, before) + line.substr(last) + "\n";
    }
    return out;
  };
  const std::string metrics = without_seconds(slurp(out + "/metrics.csv"));
  const RunResult resumed = run_cli("train --resume " + shell_quote(out));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(without_seconds(slurp(out + "/metrics.csv")) == metrics);
  CHECK_THAT(metrics, Contains(",val_loss\n"));
}
