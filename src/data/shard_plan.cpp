// The per-epoch assignment of shards to ranks and workers (see shard_plan.h).
#include "data/shard_plan.h"

#include <algorithm>

#include "common/error.h"
#include "common/log.h"
#include "common/splitmix.h"
#include "data/loader.h"
#include "data/shard_pattern.h"
#include "data/tar_reader.h"

namespace halo::data {

ShardSet open_shard_set(const std::string& pattern) {
  ShardSet set;
  set.pattern = pattern;
  set.shards = existing_shards(pattern);
  set.sizes = shard_sizes_from_json(set.shards);
  for (size_t s = 0; s < set.shards.size(); ++s) {
    if (set.sizes[s] < 0) {
      set.sizes[s] = count_shard_samples(set.shards[s]);
      ++set.counted;
    }
    set.offsets.push_back(set.total);
    set.total += set.sizes[s];
  }
  if (set.counted > 0) {
    log_message("counted the samples of " + std::to_string(set.counted) + " shard(s) of '" + pattern +
                "' (no sizes.json lists them)");
  }
  HALO_CHECK(set.total > 0, "the shards of '", pattern, "' hold no samples");
  return set;
}

Manifest index_shard_set(const ShardSet& set, bool captions) {
  Manifest m;
  m.path = set.pattern;
  bool all_flags = true, all_labels = true;
  std::vector<int8_t> flags;
  std::vector<int64_t> labels;
  for (size_t s = 0; s < set.shards.size(); ++s) {
    ShardReader reader(set.shards[s], false);
    ShardSample sample;
    for (int64_t i = 0; i < set.sizes[s]; ++i) {
      const bool read = reader.next(sample);
      m.images.push_back(read ? sample.key : "#" + std::to_string(i));
      if (captions) m.captions.push_back(read && sample.usable() ? sample.caption_text() : std::string());
      m.lines.push_back(set.offsets[s] + i + 2);
      all_flags = all_flags && read && sample.mismatched >= 0;
      all_labels = all_labels && read && sample.label >= 0;
      if (all_flags) flags.push_back(sample.mismatched);
      if (all_labels) labels.push_back(sample.label);
    }
  }
  if (all_flags) m.mismatched = std::move(flags);
  if (all_labels) m.labels = std::move(labels);
  return m;
}

std::string shard_set_captions(const ShardSet& set) {
  std::string corpus;
  for (const auto& shard : set.shards) {
    ShardReader reader(shard, false);
    ShardSample sample;
    while (reader.next(sample)) {
      if (sample.usable()) corpus += sample.caption_text() + "\n";
    }
  }
  return corpus;
}

uint64_t shuffle_buffer_seed(uint64_t seed, int64_t epoch, int64_t rank, int64_t worker) {
  return splitmix64(splitmix64(splitmix64(seed ^ 0xb0ffe7) ^ static_cast<uint64_t>(epoch)) ^
                    (static_cast<uint64_t>(rank) << 20 | static_cast<uint64_t>(worker)));
}

namespace {

// Every worker stream of one rank in an epoch, and the rank's batch order (workers in turn).
EpochPlan rank_plan(const std::vector<int64_t>& sizes, const std::vector<int64_t>& order, const PlanOptions& o,
                    int64_t rank) {
  EpochPlan plan;
  plan.workers.resize(static_cast<size_t>(o.workers));
  int64_t q = 0;
  for (size_t p = static_cast<size_t>(rank); p < order.size(); p += static_cast<size_t>(o.world_size), ++q) {
    WorkerStream& w = plan.workers[static_cast<size_t>(q % o.workers)];
    w.shards.push_back(order[p]);
    w.samples += sizes[static_cast<size_t>(order[p])];
  }
  int64_t rounds = 0;
  for (auto& w : plan.workers) {
    w.batches = o.drop_last ? w.samples / o.batch_size : (w.samples + o.batch_size - 1) / o.batch_size;
    rounds = std::max(rounds, w.batches);
  }
  for (int64_t j = 0; j < rounds; ++j) {
    for (int64_t w = 0; w < o.workers; ++w) {
      if (j < plan.workers[static_cast<size_t>(w)].batches) plan.owner.emplace_back(w, j);
    }
  }
  return plan;
}

}  // namespace

int64_t batches_per_worker(const std::vector<int64_t>& sizes, const PlanOptions& o) {
  const int64_t streams = o.world_size * o.workers;
  const int64_t k = static_cast<int64_t>(sizes.size()) / streams;
  HALO_CHECK(k >= 1, sizes.size(), " shard(s) cannot give each of the ", o.world_size, " process(es) x ", o.workers,
             " loader worker(s) one shard: write more shards (prepare shards --samples-per-shard) or lower data.workers");
  std::vector<int64_t> sorted = sizes;
  std::sort(sorted.begin(), sorted.end());
  int64_t fewest = 0;  // the fewest samples any worker can get, in any epoch
  for (int64_t i = 0; i < k; ++i) fewest += sorted[static_cast<size_t>(i)];
  return fewest / o.batch_size;
}

EpochPlan plan_epoch(const std::vector<int64_t>& sizes, const PlanOptions& o, int64_t epoch) {
  HALO_CHECK(o.batch_size >= 1 && o.workers >= 1 && o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size,
             "shard plan: need batch_size >= 1, workers >= 1 and 0 <= rank < world_size");
  const std::vector<int64_t> order = epoch_order(static_cast<int64_t>(sizes.size()), o.seed, epoch, o.shuffle);
  EpochPlan plan = rank_plan(sizes, order, o, o.rank);
  if (o.drop_last) {
    // The same number of batches from every worker of every rank in every epoch.
    const int64_t each = batches_per_worker(sizes, o);
    plan.owner.clear();
    for (int64_t j = 0; j < each; ++j) {
      for (int64_t w = 0; w < o.workers; ++w) plan.owner.emplace_back(w, j);
    }
    for (auto& w : plan.workers) w.batches = each;
  }
  return plan;
}

}  // namespace halo::data
