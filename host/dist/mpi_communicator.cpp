// MPI's world as a Communicator, with a watchdog: a collective that waits past the timeout (a
// peer stuck, or a network gone) ends this process, and mpirun then ends the others.
#include "dist/mpi_communicator.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <mpi.h>
#include <spdlog/spdlog.h>

#include "cudaembed/error.hpp"

namespace cudaembed {
namespace {

// Exit status of a rank whose collective timed out.
constexpr int kCollectiveTimeoutExit = 124;

void check(int status, const char* what, int rank) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(fmt::format("rank {}: {} failed: {}", rank, what, std::string(text, static_cast<std::size_t>(length))));
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_(timeout_s) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("MPI_Init_thread failed: is this process started by mpirun?");
    }
    // Errors come back as codes, which become Errors naming the rank, rather than aborting unexplained.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type", rank_);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    library_ = std::string(version, static_cast<std::size_t>(length));
    library_ = library_.substr(0, library_.find_first_of(",\n"));
    watchdog_ = std::thread([this] { watch(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  double collective_timeout_s() const override { return timeout_; }
  std::string describe() const override { return fmt::format("{}, {} ranks", library_, size_); }

  void all_gather(std::span<const float> mine, std::span<float> all) override {
    gather(mine.data(), all.data(), mine.size(), MPI_FLOAT);
  }
  void all_gather(std::span<const double> mine, std::span<double> all) override {
    gather(mine.data(), all.data(), mine.size(), MPI_DOUBLE);
  }

  void all_to_all(std::span<const float> send, std::span<const std::size_t> send_counts, std::span<float> recv,
                  std::span<const std::size_t> recv_counts) override {
    const std::vector<int> sends = counts_and_offsets(send_counts), receives = counts_and_offsets(recv_counts);
    const int* send_offsets = sends.data() + size_;
    const int* recv_offsets = receives.data() + size_;
    watched("MPI_Alltoallv", [&] {
      return MPI_Alltoallv(send.data(), sends.data(), send_offsets, MPI_FLOAT, recv.data(), receives.data(),
                           recv_offsets, MPI_FLOAT, MPI_COMM_WORLD);
    });
    for (int r = 0; r < size_; ++r)
      if (r != rank_) bytes_sent_ += send_counts[static_cast<std::size_t>(r)] * sizeof(float);
  }

  void broadcast(std::span<std::byte> bytes, int root) override {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX))
      throw Error(fmt::format("rank {}: a broadcast of more than 2^31 bytes", rank_));
    watched("MPI_Bcast",
            [&] { return MPI_Bcast(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, root, MPI_COMM_WORLD); });
    if (rank_ == root) bytes_sent_ += bytes.size() * static_cast<uint64_t>(size_ - 1);
  }

  void barrier() override {
    watched("MPI_Barrier", [] { return MPI_Barrier(MPI_COMM_WORLD); });
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; should it, end this rank all the same
  }

 private:
  void gather(const void* mine, void* all, std::size_t count, MPI_Datatype type) {
    if (count > static_cast<std::size_t>(INT32_MAX))
      throw Error(fmt::format("rank {}: a collective of more than 2^31 values", rank_));
    watched("MPI_Allgather", [&] {
      return MPI_Allgather(mine, static_cast<int>(count), type, all, static_cast<int>(count), type, MPI_COMM_WORLD);
    });
    int bytes = 0;
    MPI_Type_size(type, &bytes);
    bytes_sent_ += count * static_cast<uint64_t>(bytes) * static_cast<uint64_t>(size_ - 1);
  }

  // Runs one collective under the watchdog's eye (watch() below), then checks its status.
  template <class Collective>
  void watched(const char* what, Collective&& collective) {
    started_.store(now_s());
    const int status = collective();
    started_.store(0);
    check(status, what, rank_);
  }

  // MPI's int counts, then their offsets: 2 K ints.
  std::vector<int> counts_and_offsets(std::span<const std::size_t> counts) const {
    std::vector<int> out(2 * static_cast<std::size_t>(size_));
    std::size_t offset = 0;
    for (int r = 0; r < size_; ++r) {
      const std::size_t count = counts[static_cast<std::size_t>(r)];
      if (count > static_cast<std::size_t>(INT32_MAX) || offset > static_cast<std::size_t>(INT32_MAX))
        throw Error(fmt::format("rank {}: an exchange of more than 2^31 values (use a smaller --batch)", rank_));
      out[static_cast<std::size_t>(r)] = static_cast<int>(count);
      out[static_cast<std::size_t>(size_ + r)] = static_cast<int>(offset);
      offset += count;
    }
    return out;
  }

  static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  // Looks at the collective in flight once a second. It calls no MPI (the MPI library is only
  // asked for one thread): it ends the process, and mpirun ends the job.
  void watch() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return closing_; })) {
      const double started = started_.load();
      if (started > 0 && now_s() - started > timeout_) {
        spdlog::error("rank {}: a collective has waited {:.0f} s for the other ranks (a rank stuck or gone); "
                      "ending this rank so that mpirun ends the job",
                      rank_, now_s() - started);
        spdlog::default_logger()->flush();
        std::_Exit(kCollectiveTimeoutExit);
      }
    }
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string library_;
  double timeout_;
  std::atomic<double> started_{0};  // when the collective in flight began; 0: none
  std::mutex mutex_;
  std::condition_variable wake_;
  bool closing_ = false;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace cudaembed
