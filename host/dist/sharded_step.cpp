// The row-sharded sorted step on the CPU (cpu_reference.hpp): the step's plan (plan_shard_step,
// which the GPU's step carries out too), then the one-process step's phases
// (train/sorted_phases.hpp), with an all-to-all of rows before forward and backward and one of
// gradients after.
#include <algorithm>
#include <cstring>

#include "cudaembed/cpu_reference.hpp"
#include "cudaembed/error.hpp"
#include "train/sorted_phases.hpp"

namespace cudaembed {
namespace {

// Which rows each rank's slice reads from each owner: plan.reads for this rank's slice (by owner),
// plan.serves for this rank's rows (by reader). Sorted and unique, so both sides list them alike.
void list_reads(std::span<const PairRecord> samples, const RowPlacement& place, ShardPlan& plan) {
  const auto ranks = static_cast<std::size_t>(place.ranks);
  plan.reads.assign(ranks, {});
  plan.serves.assign(ranks, {});
  for (int reader = 0; reader < place.ranks; ++reader) {
    const Slice slice = rank_slice(samples.size(), reader, place.ranks);
    for (std::size_t lookup = 2 * slice.begin; lookup < 2 * slice.end; ++lookup) {
      const uint32_t row = lookup_row(samples, lookup);
      if (reader == place.rank) plan.reads[static_cast<std::size_t>(place.owner(row))].push_back(row);
      if (place.owner(row) == place.rank) plan.serves[static_cast<std::size_t>(reader)].push_back(row);
    }
  }
  for (auto* lists : {&plan.reads, &plan.serves})
    for (auto& rows : *lists) {
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    }
}

// Exchange 1's lists, and this rank's samples renumbered to index the rows received, which sit in
// owner order, ascending within an owner.
void plan_rows(std::span<const PairRecord> samples, const RowPlacement& place, ShardPlan& plan) {
  const auto ranks = static_cast<std::size_t>(place.ranks);
  plan.serve_rows.clear();
  plan.serve_counts.assign(ranks, 0);
  plan.read_counts.assign(ranks, 0);
  for (std::size_t r = 0; r < ranks; ++r) {
    for (const uint32_t row : plan.serves[r]) plan.serve_rows.push_back(static_cast<uint32_t>(place.local(row)));
    plan.serve_counts[r] = plan.serves[r].size();
    plan.read_counts[r] = plan.reads[r].size();
  }
  std::vector<std::size_t> first(ranks, 0);  // where each owner's rows start among those received
  for (std::size_t o = 1; o < ranks; ++o) first[o] = first[o - 1] + plan.reads[o - 1].size();
  auto received_index = [&](uint32_t row) {
    const auto owner = static_cast<std::size_t>(place.owner(row));
    const auto& listed = plan.reads[owner];
    const auto within = std::lower_bound(listed.begin(), listed.end(), row) - listed.begin();
    return static_cast<uint32_t>(first[owner] + static_cast<std::size_t>(within));
  };
  const Slice mine = rank_slice(samples.size(), place.rank, place.ranks);
  plan.local_samples.resize(samples.size());
  for (std::size_t s = mine.begin; s < mine.end; ++s) {
    const PairRecord& x = samples[s];
    plan.local_samples[s] = {received_index(x.a), received_index(x.b), x.label, x.weight};
  }
}

// Exchange 2's lists, and which lookups this rank owns.
void plan_gradients(std::span<const PairRecord> samples, const RowPlacement& place, ShardPlan& plan) {
  const auto ranks = static_cast<std::size_t>(place.ranks);
  const Slice mine = rank_slice(samples.size(), place.rank, place.ranks);
  plan.send_lookup_counts.assign(ranks, 0);
  for (std::size_t l = 2 * mine.begin; l < 2 * mine.end; ++l)
    ++plan.send_lookup_counts[static_cast<std::size_t>(place.owner(lookup_row(samples, l)))];
  std::vector<std::size_t> cursor(ranks, 0);
  for (std::size_t r = 1; r < ranks; ++r) cursor[r] = cursor[r - 1] + plan.send_lookup_counts[r - 1];
  plan.send_lookups.resize(2 * (mine.end - mine.begin));
  for (std::size_t l = 2 * mine.begin; l < 2 * mine.end; ++l)
    plan.send_lookups[cursor[static_cast<std::size_t>(place.owner(lookup_row(samples, l)))]++] =
        static_cast<uint32_t>(l);
  plan.recv_lookups.clear();
  plan.recv_lookup_counts.assign(ranks, 0);
  for (int reader = 0; reader < place.ranks; ++reader) {
    const Slice slice = rank_slice(samples.size(), reader, place.ranks);
    for (std::size_t l = 2 * slice.begin; l < 2 * slice.end; ++l) {
      if (place.owner(lookup_row(samples, l)) != place.rank) continue;
      plan.recv_lookups.push_back(static_cast<uint32_t>(l));
      ++plan.recv_lookup_counts[static_cast<std::size_t>(reader)];
    }
  }
  plan.owned_row.resize(2 * samples.size());
  for (std::size_t l = 0; l < 2 * samples.size(); ++l) {
    const uint32_t row = lookup_row(samples, l);
    plan.owned_row[l] = place.owner(row) == place.rank ? static_cast<uint32_t>(place.local(row)) : ShardPlan::kNotOwned;
  }
}

void exchange(Communicator& comm, ShardWorkspace& work) {
  std::size_t receiving = 0;
  for (const std::size_t c : work.recv_counts) receiving += c;
  work.received.resize(receiving);
  comm.all_to_all(work.send, work.send_counts, work.received, work.recv_counts);
}

// Rows `index` of `from` (D floats each) one after another into `to`.
void gather_rows(const float* from, std::span<const uint32_t> index, std::size_t dims, std::vector<float>& to) {
  to.resize(index.size() * dims);
  for (std::size_t i = 0; i < index.size(); ++i)
    std::memcpy(&to[i * dims], from + index[i] * dims, dims * sizeof(float));
}

// Exchange 1: owners send each reader the rows it listed.
void fetch_rows(const ModelState& shard, ShardWorkspace& work, Communicator& comm) {
  const auto dims = static_cast<std::size_t>(shard.dims);
  gather_rows(shard.table.data(), work.plan.serve_rows, dims, work.send);
  values_of_rows(work.plan.serve_counts, dims, work.send_counts);
  values_of_rows(work.plan.read_counts, dims, work.recv_counts);
  exchange(comm, work);
}

// Exchange 2: each lookup gradient of this rank's slice to the row's owner; an owner puts every
// rank's into their places in lookup_grad, where one process would have them.
void send_gradients(int dims, ShardWorkspace& work, Communicator& comm) {
  const auto d = static_cast<std::size_t>(dims);
  const ShardPlan& plan = work.plan;
  gather_rows(work.step.lookup_grad.data(), plan.send_lookups, d, work.send);
  values_of_rows(plan.send_lookup_counts, d, work.send_counts);
  values_of_rows(plan.recv_lookup_counts, d, work.recv_counts);
  exchange(comm, work);
  for (std::size_t j = 0; j < plan.recv_lookups.size(); ++j)
    std::memcpy(work.step.lookup_grad.data() + plan.recv_lookups[j] * d, work.received.data() + j * d,
                d * sizeof(float));
}

}  // namespace

void values_of_rows(std::span<const std::size_t> rows, std::size_t dims, std::vector<std::size_t>& values) {
  values.resize(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) values[r] = rows[r] * dims;
}

void plan_shard_step(std::span<const PairRecord> samples, const RowPlacement& place, ShardPlan& plan) {
  list_reads(samples, place, plan);
  plan_rows(samples, place, plan);
  plan_gradients(samples, place, plan);
}

void cpu_sharded_step(ModelState& shard, int64_t rows, std::span<const PairRecord> batch, const TrainConfig& config,
                      ShardWorkspace& work, EpochMetrics& metrics, float lr_scale, Communicator& comm) {
  const RowPlacement place{comm.rank(), comm.size()};
  SortedWorkspace& step = work.step;
  draw_samples(batch, config, shard.step, static_cast<uint32_t>(rows), shard.dims, step);
  const std::size_t samples = step.samples.size();

  plan_shard_step(step.samples, place, work.plan);

  // 1: the rows this rank's slice reads, from their owners; forward and backward of the slice.
  fetch_rows(shard, work, comm);
  forward_backward(work.received.data(), work.plan.local_samples, shard, config, step,
                   rank_slice(samples, place.rank, place.ranks));
  // 2: the lookups' gradients to their rows' owners; every sample's Dense gradients and metrics to every rank.
  send_gradients(shard.dims, work, comm);
  gather_samples(comm, step, shard.dims, false);
  float dense_grad[2];
  sum_samples(step, dense_grad, metrics);

  // 3: this rank's rows: their lookups sorted by row, then by lookup, summed and applied.
  step.order.clear();
  for (std::size_t l = 0; l < 2 * samples; ++l)
    if (work.plan.owned_row[l] != ShardPlan::kNotOwned)
      step.order.push_back(static_cast<uint64_t>(work.plan.owned_row[l]) << 32 | l);
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
