// The per-epoch assignment of shards to ranks and workers (see shard_plan.h).
#include "data/shard_plan.h"

#include <algorithm>
#include <functional>
#include <queue>

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
    log_message("counted the samples of " + std::to_string(set.counted) + " shard(s) of '" +
                pattern + "' (no sizes.json lists them)");
  }
  HALO_CHECK(set.total > 0, "the shards of '", pattern, "' hold no samples");
  return set;
}

Manifest index_shard_set(const ShardSet& set, bool captions) {
  Manifest m;
  m.path = set.pattern;
  bool all_flags = true, any_label = false;
  std::vector<int8_t> flags;
  std::vector<int64_t> labels;
  for (size_t s = 0; s < set.shards.size(); ++s) {
    ShardReader reader(set.shards[s], false);
    ShardSample sample;
    for (int64_t i = 0; i < set.sizes[s]; ++i) {
      const bool read = reader.next(sample);
      m.images.push_back(read ? sample.key : "#" + std::to_string(i));
      if (captions)
        m.captions.push_back(read && sample.usable() ? sample.caption_text() : std::string());
      m.lines.push_back(set.offsets[s] + i + 2);
      all_flags = all_flags && read && sample.mismatched >= 0;
      any_label = any_label || (read && sample.label >= 0);
      if (all_flags) flags.push_back(sample.mismatched);
      labels.push_back(read ? sample.label : -1);
    }
  }
  if (all_flags) m.mismatched = std::move(flags);
  // Labels where any sample has one (-1 for the others: a shard set may label only some of its
  // samples, e.g. the icons of a set without categories).
  if (any_label) m.labels = std::move(labels);
  return m;
}

void for_each_shard_caption(const ShardSet& set,
                            const std::function<void(const std::string&)>& take) {
  for (const auto& shard : set.shards) {
    ShardReader reader(shard, false);
    ShardSample sample;
    while (reader.next(sample)) {
      if (sample.usable()) take(sample.caption_text());
    }
  }
}

uint64_t shuffle_buffer_seed(uint64_t seed, int64_t epoch, int64_t rank, int64_t worker) {
  return splitmix64(splitmix64(splitmix64(seed ^ 0xb0ffe7) ^ static_cast<uint64_t>(epoch)) ^
                    (static_cast<uint64_t>(rank) << 20 | static_cast<uint64_t>(worker)));
}

namespace {

// The streams (one per rank and loader worker; stream s is read by rank s mod W, worker s / W)
// and their shards in an epoch: largest shard first, each to the stream with the fewest samples
// so far (lowest index on a tie), so that stream totals differ by at most one shard's size.
// Shards of equal size are taken in the epoch's permuted order, so the assignment changes from
// epoch to epoch while the totals do not; each stream reads its shards in that order too.
std::vector<WorkerStream> epoch_streams(const std::vector<int64_t>& sizes, const PlanOptions& o,
                                        int64_t epoch) {
  const int64_t streams = o.world_size * o.workers;
  HALO_CHECK(static_cast<int64_t>(sizes.size()) >= streams, sizes.size(),
             " shard(s) cannot give each of the ", o.world_size, " process(es) x ", o.workers,
             " loader worker(s) one shard: write more shards (prepare shards --samples-per-shard) "
             "or lower data.workers");
  const std::vector<int64_t> order =
      epoch_order(static_cast<int64_t>(sizes.size()), o.seed, epoch, o.shuffle);
  std::vector<int64_t> position(sizes.size());
  for (size_t p = 0; p < order.size(); ++p)
    position[static_cast<size_t>(order[p])] = static_cast<int64_t>(p);
  std::vector<int64_t> by_size = order;
  std::stable_sort(by_size.begin(), by_size.end(), [&](int64_t a, int64_t b) {
    return sizes[static_cast<size_t>(a)] > sizes[static_cast<size_t>(b)];
  });
  std::vector<WorkerStream> out(static_cast<size_t>(streams));
  // (samples so far, stream): the least loaded stream on top.
  std::priority_queue<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>,
                      std::greater<>>
      load;
  for (int64_t s = 0; s < streams; ++s) load.emplace(0, s);
  for (int64_t shard : by_size) {
    auto [samples, s] = load.top();
    load.pop();
    WorkerStream& w = out[static_cast<size_t>(s)];
    w.shards.push_back(shard);
    w.samples += sizes[static_cast<size_t>(shard)];
    load.emplace(w.samples, s);
  }
  for (auto& w : out) {
    std::sort(w.shards.begin(), w.shards.end(), [&](int64_t a, int64_t b) {
      return position[static_cast<size_t>(a)] < position[static_cast<size_t>(b)];
    });
  }
  return out;
}

}  // namespace

int64_t batches_per_worker(const std::vector<int64_t>& sizes, const PlanOptions& o) {
  int64_t fewest = -1;  // the same in every epoch: the totals do not depend on the order
  for (const auto& w : epoch_streams(sizes, o, 0))
    fewest = fewest < 0 ? w.samples : std::min(fewest, w.samples);
  return fewest / o.batch_size;
}

double epoch_sample_share(const std::vector<int64_t>& sizes, const PlanOptions& o) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  const int64_t used = batches_per_worker(sizes, o) * o.batch_size * o.world_size * o.workers;
  return total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0;
}

EpochPlan plan_epoch(const std::vector<int64_t>& sizes, const PlanOptions& o, int64_t epoch) {
  HALO_CHECK(o.batch_size >= 1 && o.workers >= 1 && o.world_size >= 1 && o.rank >= 0 &&
                 o.rank < o.world_size,
             "shard plan: need batch_size >= 1, workers >= 1 and 0 <= rank < world_size");
  const std::vector<WorkerStream> streams = epoch_streams(sizes, o, epoch);
  EpochPlan plan;
  int64_t rounds = 0, fewest = -1;
  for (const auto& w : streams) fewest = fewest < 0 ? w.samples : std::min(fewest, w.samples);
  for (int64_t w = 0; w < o.workers; ++w) {
    WorkerStream stream = streams[static_cast<size_t>(w * o.world_size + o.rank)];
    // With drop_last every worker of every rank gives the same number of batches (what the
    // smallest stream fills); without it each gives all its samples, the last batch shorter.
    stream.batches =
        o.drop_last ? fewest / o.batch_size : (stream.samples + o.batch_size - 1) / o.batch_size;
    rounds = std::max(rounds, stream.batches);
    plan.workers.push_back(std::move(stream));
  }
  for (int64_t j = 0; j < rounds; ++j) {
    for (int64_t w = 0; w < o.workers; ++w) {
      if (j < plan.workers[static_cast<size_t>(w)].batches) plan.owner.emplace_back(w, j);
    }
  }
  return plan;
}

}  // namespace halo::data
