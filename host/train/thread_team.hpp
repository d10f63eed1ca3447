// A fixed team of threads for the CPU backend's steps: one job run by every member, which meet
// at barriers inside it. Results never depend on the team's size; only the work is split.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cudaembed {

// The cores this process may run on (its affinity mask), at least 1.
int available_cores();

// A team's size for a step that moves `values` floats: one thread per 2^20 of them, at least one,
// at most `cores`. Below that a member's share is smaller than what its two barriers a step and
// the cache lines handed between cores cost (docs/design.md, "The CPU dense step").
int threads_for_values(int64_t values, int cores);

class ThreadTeam {
 public:
  // size - 1 workers are started now and kept until the team is destroyed; the caller is rank 0.
  explicit ThreadTeam(int size);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const { return size_; }
  // Runs job(rank) on every member, rank 0 on the calling thread, and returns when all are done.
  // A job must reach every barrier its other members reach: it may not throw between them (an
  // exception that leaves a job is rethrown here, after the others have finished).
  void run(const std::function<void(int rank)>& job);
  // Inside a job: returns when every member has arrived. Waits by spinning for a few
  // microseconds (a step's phase is about that long), then sleeps on a futex, so that a
  // member descheduled on a busy machine does not cost the others their time slices.
  void barrier();

 private:
  void work(int rank, std::stop_token stop);

  int size_;
  alignas(64) std::atomic<uint32_t> arrived_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};  // barriers completed
  alignas(64) std::atomic<uint32_t> job_number_{0};  // jobs started
  const std::function<void(int)>* job_ = nullptr;
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::vector<std::jthread> workers_;
};

}  // namespace cudaembed
