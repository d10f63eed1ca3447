// Training on K processes (docs/scaling.md): who this process is, and the one collective data-parallel
// training needs. MPI starts the processes (`mpirun -np K cudaembed train ...`) and carries the
// collectives on the CPU backend; without mpirun there is one process and nothing is exchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cudaembed/rank_slice.hpp"

namespace cudaembed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // among the ranks on this machine: which GPU to take
  virtual std::string describe() const = 0;  // for the log and run.json: "Open MPI v4.1.4, 2 ranks"
  // How long a collective may wait for the other ranks (--collective-timeout); 0: for ever.
  virtual double collective_timeout_s() const { return 0; }
  // Every rank's `mine` (the same length on every rank), in rank order, into `all`
  // (size() * mine.size() values). Throws Error when the exchange fails.
  virtual void all_gather(std::span<const float> mine, std::span<float> all) = 0;
  virtual void all_gather(std::span<const double> mine, std::span<double> all) = 0;
  // Sends send_counts[r] values of `send` (in rank order) to each rank r, and receives
  // recv_counts[r] values from each rank r into `recv`, in rank order. Both sides know the counts
  // (row sharding derives them from the step's samples), so none travel.
  virtual void all_to_all(std::span<const float> send, std::span<const std::size_t> send_counts,
                          std::span<float> recv, std::span<const std::size_t> recv_counts) = 0;
  // Rank `root`'s bytes into every rank's `bytes` (the same length everywhere): how the NCCL
  // communicator's id reaches the ranks.
  virtual void broadcast(std::span<std::byte> bytes, int root) = 0;
  // Returns once every rank has called it (a checkpoint is committed only when every shard is written).
  virtual void barrier() = 0;
  // Ends every rank's process with `code`, now: one rank's error must not leave the others waiting
  // in a collective.
  [[noreturn]] virtual void abort(int code) = 0;
  bool is_root() const { return rank() == 0; }
  // Bytes this rank has sent to the other ranks so far: what the benchmark's volume per step counts.
  uint64_t bytes_sent() const { return bytes_sent_; }
  // What collectives carried elsewhere (NCCL's, between GPUs) sent, counted here with the rest.
  void count_bytes_sent(uint64_t bytes) { bytes_sent_ += bytes; }

 protected:
  uint64_t bytes_sent_ = 0;
};

// Sums `values` across the ranks, in place: every rank's values are gathered, then added in rank
// order, so every replica gets the same bits whatever order MPI's own reductions would take.
template <class T>
void sum_in_rank_order(Communicator& comm, std::span<T> values, std::vector<T>& scratch) {
  const auto n = values.size();
  scratch.resize(n * static_cast<std::size_t>(comm.size()));
  comm.all_gather(std::span<const T>(values), std::span<T>(scratch));
  for (std::size_t i = 0; i < n; ++i) {
    T sum = scratch[i];
    for (int r = 1; r < comm.size(); ++r) sum += scratch[static_cast<std::size_t>(r) * n + i];
    values[i] = sum;
  }
}

// How K ranks split the work (--parallel): data, every rank holds the whole table and trains its
// slice of each batch; rows, each rank holds its rows of the table and their optimizer state.
enum class Parallel { data, rows };
Parallel parse_parallel(const std::string& name);
const char* to_string(Parallel parallel);

// Row sharding: row r lives on rank r mod K, at local row r / K. Power-law files number their hot
// rows first, so the hottest rows land on different ranks.
struct RowPlacement {
  static constexpr const char* kRule = "row r on rank r mod K, at local row r / K";
  int rank = 0, ranks = 1;
  int owner(uint64_t row) const { return static_cast<int>(row % static_cast<uint64_t>(ranks)); }
  uint64_t local(uint64_t row) const { return row / static_cast<uint64_t>(ranks); }
  uint64_t global(uint64_t local_row) const { return local_row * static_cast<uint64_t>(ranks) + rank; }
  // How many of rows [0, rows) this rank holds.
  int64_t local_rows(int64_t rows) const { return rows > rank ? (rows - rank + ranks - 1) / ranks : 0; }
};

// Whether an MPI launcher (mpirun, srun) started this process: its environment says so.
bool launched_by_mpi();

// The communicator of this process: MPI's world when launched_by_mpi() or `distributed`, else one
// process alone. Throws Error where MPI is wanted but the build has none (CUDAEMBED_MPI=OFF), or
// when it cannot start. A collective that takes longer than `timeout_s` aborts every rank.
std::unique_ptr<Communicator> make_communicator(bool distributed, double timeout_s = 300);

}  // namespace cudaembed
