// ThreadTeam: std::jthread workers, and a barrier that spins briefly before it sleeps.
#include "train/thread_team.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>

namespace cudaembed {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a member spins at a barrier before it sleeps: longer than a step's phase at the
// default shape (~1 us), far shorter than a scheduler's time slice (ms).
constexpr auto kSpinTime = std::chrono::microseconds(50);

// Spins until `word` differs from `seen`, then sleeps on it; returns its new value.
uint32_t wait_for_change(const std::atomic<uint32_t>& word, uint32_t seen) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (int i = 0;; ++i) {
    const uint32_t now = word.load(std::memory_order_acquire);
    if (now != seen) return now;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) break;
  }
  for (;;) {
    word.wait(seen, std::memory_order_acquire);
    const uint32_t now = word.load(std::memory_order_acquire);
    if (now != seen) return now;
  }
}

}  // namespace

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int threads_for_values(int64_t values, int cores) {
  return static_cast<int>(std::clamp<int64_t>(values >> 20, 1, std::max(cores, 1)));
}

ThreadTeam::ThreadTeam(int size) : size_(std::max(1, size)) {
  workers_.reserve(static_cast<std::size_t>(size_ - 1));
  for (int rank = 1; rank < size_; ++rank)
    workers_.emplace_back([this, rank](std::stop_token stop) { work(rank, stop); });
}

ThreadTeam::~ThreadTeam() {
  for (auto& w : workers_) w.request_stop();
  job_number_.fetch_add(1, std::memory_order_release);  // wakes them to see the request
  job_number_.notify_all();
}  // the jthreads join

void ThreadTeam::barrier() {
  if (size_ == 1) return;
  const uint32_t generation = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == static_cast<uint32_t>(size_ - 1)) {
    arrived_.store(0, std::memory_order_relaxed);  // nobody arrives again before the release below
    generation_.store(generation + 1, std::memory_order_release);
    generation_.notify_all();
    return;
  }
  wait_for_change(generation_, generation);
}

void ThreadTeam::run(const std::function<void(int)>& job) {
  if (size_ == 1) {
    job(0);
    return;
  }
  job_ = &job;
  error_ = nullptr;
  job_number_.fetch_add(1, std::memory_order_release);
  job_number_.notify_all();
  try {
    job(0);
  } catch (...) {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
  barrier();  // every worker has finished the job
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadTeam::work(int rank, std::stop_token stop) {
  uint32_t seen = 0;
  for (;;) {
    seen = wait_for_change(job_number_, seen);
    if (stop.stop_requested()) return;
    try {
      (*job_)(rank);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    barrier();
  }
}

}  // namespace cudaembed
