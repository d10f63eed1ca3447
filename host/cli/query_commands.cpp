// `cudaembed neighbours` and `cudaembed evaluate`: questions asked of a finished run.
#include "cli/query_commands.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cudaembed/backend.hpp"
#include "cudaembed/error.hpp"
#include "cudaembed/neighbours.hpp"
#include "cudaembed/quality.hpp"
#include "cudaembed/run_dir.hpp"

namespace cudaembed {
bool use_gpu_for(const std::string& device) {
  const DeviceChoice choice = parse_device_choice(device);
  if (choice == DeviceChoice::cuda) require_cuda_device();
  return choice == DeviceChoice::cuda || (choice == DeviceChoice::automatic && cuda_device_count() > 0);
}

int run_neighbours(const NeighboursOptions& o) {
  const RunDir run = read_run_dir(o.run_dir);
  const std::size_t query = find_row(run.names, o.name, "NAME", run.noun());
  const auto neighbours = nearest_neighbours(run, query, o.k, use_gpu_for(o.device));
  auto hex = [&](std::size_t i) {
    auto c = [&](int ch) { return static_cast<int>(std::lround(run.rgb[i * 3 + ch] * 255)); };
    return fmt::format("#{:02X}{:02X}{:02X}", c(0), c(1), c(2));
  };
  if (run.head == "dot" || run.head == "cosine") {  // ranked by the head's similarity, most similar first
    // A colour run also shows each colour's hex and its RGB distance to the query.
    auto hex_cell = [&](std::size_t i) { return run.has_colours ? fmt::format("{:<8} ", hex(i)) : std::string(); };
    auto rgb_cell = [&](float d) { return run.has_colours ? fmt::format(" {:>10.4f}", d) : std::string(); };
    fmt::print("{} most similar to {}{} in {} (D = {}); ranked by {} (head {}), most similar first{}\n",
               neighbours.size(), run.names[query], run.has_colours ? " (" + hex(query) + ")" : std::string(),
               o.run_dir, run.dims, neighbour_measure(run), run.head, run.has_colours ? ", RGB in [0, 1]^3" : "");
    fmt::print("{:>4}  {:<28} {}{:>10}{}\n", "rank", "name", run.has_colours ? fmt::format("{:<8} ", "hex") : "",
               run.head, run.has_colours ? fmt::format(" {:>10}", "rgb") : "");
    for (std::size_t r = 0; r < neighbours.size(); ++r) {
      const auto& nb = neighbours[r];
      fmt::print("{:>4}  {:<28} {}{:>10.4f}{}\n", r + 1, run.names[nb.row], hex_cell(nb.row), nb.similarity,
                 rgb_cell(nb.rgb_distance));
    }
    return 0;
  }
  if (!run.has_colours) {  // a run on a pairs file: names and embedding distances only
    fmt::print("{} nearest to {} in {} (D = {}{}); distances are {}\n", neighbours.size(), run.names[query], o.run_dir,
               run.dims, run.normalize ? ", normalised" : "", run.head == "poincare" ? "Poincaré" : "Euclidean");
    fmt::print("{:>4}  {:<28} {:>10}\n", "rank", "name", "embedding");
    for (std::size_t r = 0; r < neighbours.size(); ++r)
      fmt::print("{:>4}  {:<28} {:>10.4f}\n", r + 1, run.names[neighbours[r].row], neighbours[r].embedding_distance);
    return 0;
  }
  fmt::print("{} nearest to {} ({}) in {} (D = {}{}); distances are {}, RGB in [0, 1]^3\n", neighbours.size(),
             run.names[query], hex(query), o.run_dir, run.dims, run.normalize ? ", normalised" : "",
             run.head == "poincare" ? "Poincaré" : "Euclidean");
  fmt::print("{:>4}  {:<28} {:<8} {:>10} {:>10}\n", "rank", "name", "hex", "embedding", "rgb");
  for (std::size_t r = 0; r < neighbours.size(); ++r) {
    const auto& nb = neighbours[r];
    fmt::print("{:>4}  {:<28} {:<8} {:>10.4f} {:>10.4f}\n", r + 1, run.names[nb.row], hex(nb.row),
               nb.embedding_distance, nb.rgb_distance);
  }
  return 0;
}

int run_evaluate(const EvaluateOptions& o) {
  if (!o.pairs.empty()) return run_evaluate_pairs(o);
  const RunDir run = read_run_dir(o.run_dir);
  if (!run.has_colours)
    throw Error(
        fmt::format("{}: evaluate compares distances with the colours' RGB, and this run was trained on a "
                    "pairs file (its metadata.tsv has no hex column); evaluate it on pairs with --pairs FILE",
                    o.run_dir));
  const EmbeddingQuality q =
      evaluate_embedding(run.effective_embedding(), run.dims, run.rgb, 3, o.k, use_gpu_for(o.device));
  if (o.json) {
    fmt::print(
        "{}\n",
        nlohmann::json{{"run", o.run_dir}, {"spearman_rgb", q.spearman}, {"knn_overlap_rgb", q.knn_overlap}, {"k", q.k}}
            .dump());
  } else {
    fmt::print(
        "{}: Spearman(embedding distances, RGB distances) = {:.4f}; mean {}-NN overlap with RGB = {:.4f} "
        "(random: about {:.4f})\n",
        o.run_dir, q.spearman, q.k, q.knn_overlap, static_cast<double>(q.k) / (run.rows - 1));
  }
  return 0;
}

}  // namespace cudaembed
