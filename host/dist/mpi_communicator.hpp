// MPI's world as a Communicator: host/dist/mpi_communicator.cpp in a build with MPI, and
// host/dist/no_mpi.cpp (which says how to get one) in a build without.
#pragma once

#include <memory>

#include "cudaembed/distributed.hpp"

namespace cudaembed {

// Initialises MPI (once per process) and finalises it when the communicator goes.
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s);

}  // namespace cudaembed
