// The single-process communicator and the launcher check shared by every build.
#include <cstdlib>
#include <algorithm>

#include "cudaembed/distributed.hpp"
#include "cudaembed/error.hpp"
#include "dist/mpi_communicator.hpp"

namespace cudaembed {
namespace {

// One process: gathering is copying, and there is nobody to abort but itself.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "one process"; }
  void all_gather(std::span<const float> mine, std::span<float> all) override { std::ranges::copy(mine, all.begin()); }
  void all_gather(std::span<const double> mine, std::span<double> all) override {
    std::ranges::copy(mine, all.begin());
  }
  void all_to_all(std::span<const float> send, std::span<const std::size_t>, std::span<float> recv,
                  std::span<const std::size_t>) override {
    std::ranges::copy(send, recv.begin());
  }
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

}  // namespace

Parallel parse_parallel(const std::string& name) {
  if (name == "data") return Parallel::data;
  if (name == "rows") return Parallel::rows;
  throw Error("--parallel: '" + name + "' is not a way to split the work (data, rows)");
}

const char* to_string(Parallel parallel) { return parallel == Parallel::rows ? "rows" : "data"; }

bool launched_by_mpi() {
  // Open MPI's mpirun, and PMI/PMIx launchers (Slurm's srun, MPICH's hydra).
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

std::unique_ptr<Communicator> make_communicator(bool distributed, double timeout_s) {
  if (!distributed && !launched_by_mpi()) return std::make_unique<SoloCommunicator>();
  return make_mpi_communicator(timeout_s);
}

}  // namespace cudaembed
