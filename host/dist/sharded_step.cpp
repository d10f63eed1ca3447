// The row-sharded sorted step on the CPU (cpu_reference.hpp): the one-process step's phases
// (train/sorted_phases.hpp), with an all-to-all of rows before forward and backward and one of
// gradients after.
#include <algorithm>
#include <cstring>

#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "train/sorted_phases.hpp"

namespace cudaembed {
namespace {

// Which rows each rank's slice reads from each owner: work.reads for this rank's slice (by owner),
// work.serves for this rank's rows (by reader). Sorted and unique, so both sides list them alike.
void list_reads(const std::vector<PairRecord>& samples, const RowPlacement& place, ShardWorkspace& work) {
  const auto ranks = static_cast<std::size_t>(place.ranks);
  work.reads.assign(ranks, {});
  work.serves.assign(ranks, {});
  for (int reader = 0; reader < place.ranks; ++reader) {
    const Slice slice = rank_slice(samples.size(), reader, place.ranks);
    for (std::size_t lookup = 2 * slice.begin; lookup < 2 * slice.end; ++lookup) {
      const uint32_t row = lookup_row(samples, lookup);
      if (reader == place.rank) work.reads[static_cast<std::size_t>(place.owner(row))].push_back(row);
      if (place.owner(row) == place.rank) work.serves[static_cast<std::size_t>(reader)].push_back(row);
    }
  }
  for (auto* lists : {&work.reads, &work.serves})
    for (auto& rows : *lists) {
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    }
}

void exchange(Communicator& comm, ShardWorkspace& work) {
  std::size_t receiving = 0;
  for (const std::size_t c : work.recv_counts) receiving += c;
  work.received.resize(receiving);
  comm.all_to_all(work.send, work.send_counts, work.received, work.recv_counts);
}

// Exchange 1: owners send each reader the rows it listed; this rank's samples are renumbered to
// index the rows received (work.local_samples), which sit in owner order, ascending within an owner.
void fetch_rows(const ModelState& shard, const RowPlacement& place, ShardWorkspace& work, Communicator& comm) {
  const auto dims = static_cast<std::size_t>(shard.dims), ranks = static_cast<std::size_t>(place.ranks);
  work.send.clear();
  work.send_counts.assign(ranks, 0);
  work.recv_counts.assign(ranks, 0);
  for (std::size_t r = 0; r < ranks; ++r) {
    for (const uint32_t row : work.serves[r]) {
      const float* p = &shard.table[place.local(row) * dims];
      work.send.insert(work.send.end(), p, p + dims);
    }
    work.send_counts[r] = work.serves[r].size() * dims;
    work.recv_counts[r] = work.reads[r].size() * dims;
  }
  exchange(comm, work);
  const std::vector<PairRecord>& samples = work.step.samples;
  std::vector<std::size_t> first(ranks, 0);  // where each owner's rows start among those received
  for (std::size_t o = 1; o < ranks; ++o) first[o] = first[o - 1] + work.reads[o - 1].size();
  auto received_index = [&](uint32_t row) {
    const auto owner = static_cast<std::size_t>(place.owner(row));
    const auto& listed = work.reads[owner];
    const auto within = std::lower_bound(listed.begin(), listed.end(), row) - listed.begin();
    return static_cast<uint32_t>(first[owner] + static_cast<std::size_t>(within));
  };
  const Slice mine = rank_slice(samples.size(), place.rank, place.ranks);
  work.local_samples.resize(samples.size());
  for (std::size_t s = mine.begin; s < mine.end; ++s) {
    const PairRecord& x = samples[s];
    work.local_samples[s] = {received_index(x.a), received_index(x.b), x.label, x.weight};
  }
}

// Exchange 2: each lookup gradient of this rank's slice to the row's owner, in lookup order; an
// owner puts every rank's into their places in lookup_grad, where one process would have them.
void send_gradients(const RowPlacement& place, int dims, ShardWorkspace& work, Communicator& comm) {
  const std::vector<PairRecord>& samples = work.step.samples;
  const auto d = static_cast<std::size_t>(dims), ranks = static_cast<std::size_t>(place.ranks);
  const Slice mine = rank_slice(samples.size(), place.rank, place.ranks);
  work.send_counts.assign(ranks, 0);
  work.recv_counts.assign(ranks, 0);
  for (std::size_t l = 2 * mine.begin; l < 2 * mine.end; ++l)
    work.send_counts[static_cast<std::size_t>(place.owner(lookup_row(samples, l)))] += d;
  for (int reader = 0; reader < place.ranks; ++reader) {
    const Slice slice = rank_slice(samples.size(), reader, place.ranks);
    for (std::size_t l = 2 * slice.begin; l < 2 * slice.end; ++l)
      if (place.owner(lookup_row(samples, l)) == place.rank) work.recv_counts[static_cast<std::size_t>(reader)] += d;
  }
  std::vector<std::size_t> cursor(ranks, 0);
  for (std::size_t r = 1; r < ranks; ++r) cursor[r] = cursor[r - 1] + work.send_counts[r - 1];
  work.send.resize(cursor.back() + work.send_counts.back());
  const float* grads = work.step.lookup_grad.data();
  for (std::size_t l = 2 * mine.begin; l < 2 * mine.end; ++l) {
    std::size_t& at = cursor[static_cast<std::size_t>(place.owner(lookup_row(samples, l)))];
    std::memcpy(work.send.data() + at, grads + l * d, d * sizeof(float));
    at += d;
  }
  exchange(comm, work);
  const float* from = work.received.data();
  for (int reader = 0; reader < place.ranks; ++reader) {
    const Slice slice = rank_slice(samples.size(), reader, place.ranks);
    for (std::size_t l = 2 * slice.begin; l < 2 * slice.end; ++l) {
      if (place.owner(lookup_row(samples, l)) != place.rank) continue;
      std::memcpy(work.step.lookup_grad.data() + l * d, from, d * sizeof(float));
      from += d;
    }
  }
}

}  // namespace

void cpu_sharded_step(ModelState& shard, int64_t rows, std::span<const PairRecord> batch, const TrainConfig& config,
                      ShardWorkspace& work, EpochMetrics& metrics, float lr_scale, Communicator& comm) {
  const RowPlacement place{comm.rank(), comm.size()};
  SortedWorkspace& step = work.step;
  draw_samples(batch, config, shard.step, static_cast<uint32_t>(rows), shard.dims, step);
  const std::size_t samples = step.samples.size();

  // 1: the rows this rank's slice reads, from their owners; forward and backward of the slice.
  list_reads(step.samples, place, work);
  fetch_rows(shard, place, work, comm);
  forward_backward(work.received.data(), work.local_samples, shard, config, step,
                   rank_slice(samples, place.rank, place.ranks));
  // 2: the lookups' gradients to their rows' owners; every sample's Dense gradients and metrics to every rank.
  send_gradients(place, shard.dims, work, comm);
  gather_samples(comm, step, shard.dims, false);
  float dense_grad[2];
  sum_samples(step, dense_grad, metrics);

  // 3: this rank's rows: their lookups sorted by row, then by lookup, summed and applied.
  step.order.clear();
  for (std::size_t l = 0; l < 2 * samples; ++l) {
    const uint32_t row = lookup_row(step.samples, l);
    if (place.owner(row) == place.rank) step.order.push_back(place.local(row) << 32 | l);
  }
  sort_by_row(step.order, static_cast<uint32_t>(shard.rows), step.order_scratch, step.digit_count);
  update_rows(shard, step, config, lr_scale);
  update_dense(shard, dense_grad, config, lr_scale);
}

std::vector<float> gather_table(const ModelState& shard, int64_t rows, Communicator& comm) {
  const RowPlacement place{comm.rank(), comm.size()};
  const auto dims = static_cast<std::size_t>(shard.dims), ranks = static_cast<std::size_t>(place.ranks);
  ShardWorkspace work;
  work.send = shard.table;
  work.send_counts.assign(ranks, 0);
  work.send_counts[0] = shard.table.size();
  work.recv_counts.assign(ranks, 0);
  if (place.rank == 0)
    for (int r = 0; r < place.ranks; ++r)
      work.recv_counts[static_cast<std::size_t>(r)] =
          static_cast<std::size_t>(RowPlacement{r, place.ranks}.local_rows(rows)) * dims;
  exchange(comm, work);
  if (place.rank != 0) return {};
  std::vector<float> table(static_cast<std::size_t>(rows) * dims);
  const float* from = work.received.data();
  for (int r = 0; r < place.ranks; ++r) {
    const RowPlacement theirs{r, place.ranks};
    for (int64_t i = 0; i < theirs.local_rows(rows); ++i, from += dims)
      std::copy_n(from, dims, table.data() + theirs.global(static_cast<uint64_t>(i)) * dims);
  }
  return table;
}

}  // namespace cudaembed
