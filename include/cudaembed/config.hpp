// Training settings shared by the trainer and both backends. Defaults are the tutorial's.
#pragma once

#include <cstdint>
#include <string>

#include "cudaembed/math.hpp"

namespace cudaembed {

struct TrainConfig {
  int dims = 2;
  bool normalize = false;  // L2-normalise each row before the head
  Head head = Head::euclidean;
  Optimizer optimizer = Optimizer::adam;
  int negatives = 0;    // random negatives drawn per pair, each step
  int64_t burn_in = 0;  // Riemannian optimizers: the first epochs at kBurnInFactor times the learning rate
  int64_t epochs = 500;
  int64_t batch = 512;  // the last partial batch of an epoch is kept
  AdamHyper adam;       // adam.lr is every optimizer's learning rate, adam.epsilon Adagrad's too
  SecondMoment second_moment = SecondMoment::lookups;
  uint64_t seed = 42;           // pairs, initial weights and every epoch's shuffle derive from it
  std::string kernel = "auto";  // kernel variant: "sorted", or (CUDA) one of the dense ones
  bool phase_profile = false;   // CUDA persistent kernel: clock64() stamps per phase (bench --phase-profile)
  // CUDA persistent kernels: epochs one launch trains, at most (bench --epochs-per-launch). Each
  // epoch's weights still reach the host, copied back while the next launch trains.
  int epochs_per_launch = 32;
  int threads = 0;  // CPU backend's dense step: threads sharing each step (never changes a bit); 0: the cores available
};

// Whether a run needs the sorted-segment path: anything the tutorial's dense kernels do not do
// (another head, optimizer, negatives or pair weights), or --kernel sorted.
bool needs_sorted_path(const TrainConfig& config, bool weighted_pairs);

SecondMoment parse_second_moment(const std::string& name);
const char* to_string(SecondMoment moment);
// "euclidean", "dot", "cosine" (dot on normalised rows) or "poincare": sets head and normalize.
void parse_head(const std::string& name, TrainConfig& config);
std::string head_name(const TrainConfig& config);
Optimizer parse_optimizer(const std::string& name);
const char* to_string(Optimizer optimizer);
// Keras's default learning rate for each optimizer; the Riemannian ones', what trains a tree closure.
float default_learning_rate(Optimizer optimizer);
// What --head poincare trains with where the command line does not say: Nickel & Kiela's radam
// from a ball of radius 1e-3 with a 10-epoch burn-in, and batches of 10 pairs (gensim's
// PoincareModel's) for 100 epochs. The batch matters most: at 512 a 1,000-node tree closure gets 12
// steps an epoch and reconstructs far worse in the same epochs (docs/benchmarks.md).
struct PoincareDefaults {
  Optimizer optimizer = Optimizer::radam;
  float init_range = 1e-3f;
  int64_t burn_in = 10;
  int64_t batch = 10;
  int64_t epochs = 100;
};

// Throws where the head and the optimizer do not go together: the Poincaré head needs a Riemannian
// optimizer (which keeps rows inside the ball) and no normalisation; the Riemannian optimizers need
// the Poincaré head; --burn-in needs a Riemannian optimizer.
void check_head_optimizer(const TrainConfig& config);

// Batches per epoch over `pairs` pairs: ceil(pairs / batch).
inline int64_t steps_per_epoch(uint64_t pairs, int64_t batch) {
  return static_cast<int64_t>((pairs + static_cast<uint64_t>(batch) - 1) / static_cast<uint64_t>(batch));
}

}  // namespace cudaembed
