// A build without MPI (CUDAEMBED_MPI=OFF, or no MPI found): one process only.
#include "cudaembed/error.hpp"
#include "dist/mpi_communicator.hpp"

namespace cudaembed {

std::unique_ptr<Communicator> make_mpi_communicator(double) {
  throw Error(
      "this cudaembed was built without MPI, so it trains in one process only: install Open MPI "
      "(apt-get install libopenmpi-dev openmpi-bin), configure again with -DCUDAEMBED_MPI=ON and rebuild, or run "
      "without mpirun and --distributed");
}

}  // namespace cudaembed
