// The pieces of data-parallel training that need no second process: the split of a batch and the
// rank-order sum (distributed.hpp). test_mpi.cpp runs it under mpirun.
#include <catch2/catch.hpp>

#include "cudaembed/distributed.hpp"

namespace cudaembed::test {

TEST_CASE("distributed: each rank takes a contiguous slice, together the whole batch", "[distributed]") {
  for (const std::size_t count : {0, 1, 5, 512, 513}) {
    for (const int size : {1, 2, 3, 7}) {
      std::size_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const Slice s = rank_slice(count, rank, size);
        CHECK(s.begin == next);
        CHECK(s.end - s.begin >= count / size);
        CHECK(s.end - s.begin <= count / size + 1);
        next = s.end;
      }
      CHECK(next == count);
    }
  }
}

TEST_CASE("distributed: one process sums to itself, and mpirun is noticed by its environment", "[distributed]") {
  const auto comm = make_communicator(false);
  CHECK(comm->size() == 1);
  CHECK(comm->is_root());
  std::vector<float> values{1.5f, -2.0f}, scratch;
  sum_in_rank_order(*comm, std::span<float>(values), scratch);
  CHECK(values == std::vector<float>{1.5f, -2.0f});
  CHECK_FALSE(launched_by_mpi());  // ctest does not run under mpirun
}

}  // namespace cudaembed::test
