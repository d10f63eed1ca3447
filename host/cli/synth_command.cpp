// `cudaembed synth`: writes the pair sets of cudaembed/synthetic.hpp as files train can read.
#include "cli/synth_command.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cudaembed/error.hpp"
#include "cudaembed/outputs.hpp"
#include "cudaembed/pairs_file.hpp"
#include "cudaembed/synthetic.hpp"

namespace cudaembed {
namespace {

// The latent set as a CSV with a header: names item<i>, labels 0/1.
std::string latent_csv(const PairSet& pairs) {
  std::string out = "a,b,label\n";
  for (std::size_t i = 0; i < pairs.size(); ++i)
    out += fmt::format("item{},item{},{}\n", pairs.a[i], pairs.b[i], pairs.label[i] > 0.5f ? 1 : 0);
  return out;
}

// The tree's closure as a CSV of positives, header a,b: (descendant, ancestor) by path name.
std::string tree_csv(const TreeClosure& tree) {
  std::string out = "a,b\n";
  for (std::size_t i = 0; i < tree.pairs.size(); ++i)
    out += fmt::format("{},{}\n", tree.names[tree.pairs.a[i]], tree.names[tree.pairs.b[i]]);
  return out;
}

// The nodes as a table for `plot --colour-by`: name, depth, and the root's child the node is under.
std::string tree_nodes_tsv(const TreeClosure& tree) {
  std::string out = "name\tdepth\tbranch\n";
  for (std::size_t i = 0; i < tree.names.size(); ++i) {
    const std::string& name = tree.names[i];
    const auto depth = std::count(name.begin(), name.end(), '.');
    const auto second_dot = name.find('.', 2);
    out += fmt::format("{}\t{}\t{}\n", name, depth, depth == 0 ? "root" : name.substr(0, second_dot));
  }
  return out;
}

}  // namespace

int run_synth(const SynthOptions& o) {
  const bool csv = std::filesystem::path(o.out).extension() == ".csv";
  if (o.kind == "tree") {
    const TreeClosure tree = tree_closure({o.depth, o.branching, o.seed});
    if (csv) {
      write_text_file(o.out, tree_csv(tree));
    } else {
      PairsData data;
      data.pairs = tree.pairs;
      data.rows = tree.names.size();
      data.ids = IdKind::names;
      data.names = tree.names;
      write_pairs_binary(o.out, data);
    }
    write_text_file(o.out + ".nodes.tsv", tree_nodes_tsv(tree));
    spdlog::info(
        "wrote {}: the transitive closure of a random tree of depth {} (mean branching {}), {} nodes, {} "
        "(descendant, ancestor) pairs; and {}.nodes.tsv (depth, branch: for plot --colour-by)",
        o.out, o.depth, o.branching, tree.names.size(), tree.pairs.size(), o.out);
    return 0;
  }
  if (o.kind == "powerlaw") {
    if (csv) throw Error(fmt::format("--out {}: powerlaw files are CEPAIRS1 (give another extension)", o.out));
    PairsData data;
    data.pairs = powerlaw_pairs({o.rows, o.pairs, o.hot_rows, o.hot_fraction, o.seed});
    data.rows = o.rows;
    data.ids = IdKind::ints;
    write_pairs_binary(o.out, data);
    spdlog::info("wrote {}: {} power-law pairs over {} rows ({} hot rows take {:.0f}% of the draws)", o.out, o.pairs,
                 o.rows, o.hot_rows, 100.0 * o.hot_fraction);
    return 0;
  }
  const LatentPairs latent = latent_pairs({o.rows, o.pairs, 0.2f, o.seed});
  if (csv) {
    write_text_file(o.out, latent_csv(latent.pairs));
  } else {
    PairsData data;
    data.pairs = latent.pairs;
    data.rows = o.rows;
    data.ids = IdKind::names;
    for (uint64_t i = 0; i < o.rows; ++i) data.names.push_back(fmt::format("item{}", i));
    write_pairs_binary(o.out, data);
  }
  write_npy(o.out + ".positions.npy", latent.positions, {o.rows, 3});
  spdlog::info("wrote {} ({} pairs over {} points, {:.1f}% positive) and {}.positions.npy", o.out, o.pairs, o.rows,
               100.0 * latent.pairs.positive_fraction(), o.out);
  return 0;
}

}  // namespace cudaembed
