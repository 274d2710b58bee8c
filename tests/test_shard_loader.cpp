// Streaming from shards: the per-epoch assignment of shards to ranks and workers (disjoint,
// covering every sample once), the shuffle buffer, resuming mid-epoch with the same batches,
// bad samples and truncated shards, `prepare shards`, and a training run on shards that is
// stopped and resumed and ends bit-identical to an uninterrupted one.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/manifest.h"
#include "data/manifest_to_shards.h"
#include "data/shard_loader.h"
#include "data/shard_pattern.h"
#include "data/shard_plan.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"
#include "hooks/step_hook.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// `shards` shards of `per_shard` samples each (keys SS-III), with sizes.json; returns the pattern.
std::string make_shard_set(const std::string& dir, int shards, int per_shard) {
  std::vector<std::pair<std::string, int64_t>> sizes;
  for (int s = 0; s < shards; ++s) {
    std::vector<std::pair<std::string, std::string>> members;
    for (int i = 0; i < per_shard; ++i) {
      const std::string key = std::to_string(10 + s) + "-" + std::to_string(100 + i);
      members.push_back({key + ".png", png_bytes(s * per_shard + i)});
      members.push_back({key + ".txt", "caption " + key});
    }
    const std::string name = "p-" + std::to_string(s) + ".tar";
    write_tar(dir + "/" + name, members);
    sizes.emplace_back(name, per_shard);
  }
  data::write_shard_sizes(dir, sizes);
  return dir + "/p-{0.." + std::to_string(shards - 1) + "}.tar";
}

// One loader worker, shards in stream order, 8 px images: batches that a test can predict.
data::LoaderOptions one_worker_in_order(int64_t batch_size) {
  data::LoaderOptions o;
  o.batch_size = batch_size;
  o.workers = 1;
  o.shuffle = false;
  o.transform.size = 8;
  return o;
}

data::TextEncoder shard_test_tokens() {
  return [](const std::vector<std::string>& captions) {
    return torch::full({static_cast<int64_t>(captions.size()), 4}, 3, torch::kLong);
  };
}

std::vector<int64_t> batch_row_list(const data::Batch& b) {
  const torch::Tensor r = b.rows.contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

// Every row this loader gives in `epoch`, in order.
std::vector<int64_t> epoch_rows(data::ShardLoader& loader, int64_t epoch) {
  std::vector<int64_t> rows;
  loader.start_epoch(epoch, 0);
  while (auto b = loader.next()) {
    const auto r = batch_row_list(*b);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  return rows;
}

TEST(ShardPlan, RanksAndWorkersGetDisjointShardsThatCoverAll) {
  const std::vector<int64_t> sizes = {5, 6, 5, 7, 5, 5, 6, 5, 5, 5, 6, 5};
  data::PlanOptions o;
  o.batch_size = 2;
  o.world_size = 2;
  o.workers = 3;
  o.seed = 9;
  std::vector<std::vector<int64_t>> rank0_orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::multiset<int64_t> seen;
    std::vector<size_t> batches;
    for (int64_t rank = 0; rank < 2; ++rank) {
      o.rank = rank;
      const data::EpochPlan plan = data::plan_epoch(sizes, o, epoch);
      ASSERT_EQ(plan.workers.size(), 3u);
      std::vector<int64_t> order;
      for (const auto& w : plan.workers) {
        EXPECT_EQ(w.shards.size(), 2u);
        for (int64_t s : w.shards) {
          seen.insert(s);
          order.push_back(s);
        }
        EXPECT_GE(w.samples, w.batches * o.batch_size);
      }
      if (rank == 0) rank0_orders.push_back(order);
      batches.push_back(plan.owner.size());
      // Workers take turns: batch b comes from worker b mod 3.
      for (size_t b = 0; b < plan.owner.size(); ++b)
        EXPECT_EQ(plan.owner[b].first, static_cast<int64_t>(b % 3));
    }
    EXPECT_EQ(seen.size(), sizes.size());
    for (int64_t s = 0; s < 12; ++s)
      EXPECT_EQ(seen.count(s), 1u) << "shard " << s << " in epoch " << epoch;
    EXPECT_EQ(batches[0], batches[1]);  // every rank steps the same number of times
    EXPECT_EQ(batches[0], 3u * 5u);  // each worker: the two smallest shards, 10 samples, 5 batches
  }
  EXPECT_TRUE(rank0_orders[1] != rank0_orders[0] || rank0_orders[2] != rank0_orders[0]);
  o.rank = 0;
  EXPECT_THAT(
      error_message([&] {
        data::plan_epoch({5, 5, 5}, o, 0);
      }),
      HasSubstr("3 shard(s) cannot give each of the 2 process(es) x 3 loader worker(s) one shard"));
}

// 33 shards for 8 processes x 4 workers, one of them small: the equal-share rule used to give
// every worker what the smallest shard fills (about 3% of the epoch). By size, the small shard
// joins one stream and every stream keeps a full shard: nearly all of the epoch is used.
TEST(ShardPlan, UnevenShardsLoseAtMostOneShardPerStream) {
  std::vector<int64_t> sizes(32, 1000);
  sizes.insert(sizes.begin() + 7, 30);
  data::PlanOptions o;
  o.batch_size = 10;
  o.world_size = 8;
  o.workers = 4;
  o.seed = 3;
  EXPECT_EQ(data::batches_per_worker(sizes, o), 100);
  EXPECT_NEAR(data::epoch_sample_share(sizes, o), 32000.0 / 32030.0, 1e-12);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::multiset<int64_t> seen;
    for (int64_t rank = 0; rank < 8; ++rank) {
      o.rank = rank;
      const data::EpochPlan plan = data::plan_epoch(sizes, o, epoch);
      EXPECT_EQ(plan.owner.size(), 400u);
      for (const auto& w : plan.workers) {
        EXPECT_EQ(w.batches, 100);
        EXPECT_GE(w.samples, 1000);
        seen.insert(w.shards.begin(), w.shards.end());
      }
    }
    EXPECT_EQ(seen.size(), 33u);
    for (int64_t s = 0; s < 33; ++s) EXPECT_EQ(seen.count(s), 1u) << s;
  }
  // Shards of very different sizes: stream totals differ by at most the largest shard.
  const std::vector<int64_t> mixed{900, 10, 20, 500, 480, 30, 400, 470};
  o.world_size = 2;
  o.workers = 2;
  // Streams: 900; 500 + 20; 480 + 30 + 10; 470 + 400. The least holds 520: 52 batches of 10.
  EXPECT_EQ(data::batches_per_worker(mixed, o), 52);
}

TEST(ShardPlan, ShuffleBufferMixesAndKeepsEveryItem) {
  auto run = [](int64_t capacity, uint64_t seed) {
    data::ShuffleBuffer<int> buffer(capacity, seed);
    std::vector<int> out;
    int item = 0;
    for (int i = 0; i < 100; ++i) {
      if (buffer.push(i, item)) out.push_back(item);
    }
    while (buffer.drain(item)) out.push_back(item);
    return out;
  };
  std::vector<int> identity(100);
  for (int i = 0; i < 100; ++i) identity[static_cast<size_t>(i)] = i;
  const auto mixed = run(10, 1);
  EXPECT_NE(mixed, identity);
  auto sorted = mixed;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(run(10, 1), mixed);
  EXPECT_NE(run(10, 2), mixed);
  EXPECT_EQ(run(1, 1), identity);
}

TEST(ShardLoader, EverySampleOnceAcrossRanksAndWorkersInEachEpoch) {
  const std::string dir = make_temp_dir("shard_loader_cover");
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(make_shard_set(dir, 8, 6)));
  ASSERT_EQ(set->total, 48);
  EXPECT_EQ(set->counted, 0);  // sizes.json
  data::LoaderOptions o;
  o.batch_size = 3;
  o.world_size = 2;
  o.workers = 2;
  o.seed = 4;
  o.transform.size = 8;
  std::vector<int64_t> first_epoch;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::vector<int64_t> all;
    for (int64_t rank = 0; rank < 2; ++rank) {
      o.rank = rank;
      data::ShardLoader loader(set, shard_test_tokens(), o, 5);
      EXPECT_EQ(loader.batches_per_epoch(), 8);
      const auto rows = epoch_rows(loader, epoch);
      EXPECT_EQ(rows.size(), 24u);
      all.insert(all.end(), rows.begin(), rows.end());
    }
    if (epoch == 0) {
      first_epoch = all;
    } else {
      EXPECT_NE(all, first_epoch);  // another shard order and mixing
    }
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < 48; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  }
}

TEST(ShardLoader, FewerShardsThanWorkersMeansFewerWorkers) {
  const std::string dir = make_temp_dir("shard_loader_few");
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(make_shard_set(dir, 2, 6)));
  data::LoaderOptions o;
  o.batch_size = 3;
  o.workers = 4;  // only 2 shards: 2 workers, 2 batches each
  o.transform.size = 8;
  data::ShardLoader loader(set, shard_test_tokens(), o, 4);
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  auto rows = epoch_rows(loader, 0);
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  o.world_size = 3;  // fewer shards than processes
  EXPECT_THAT(error_message([&] { data::ShardLoader(set, shard_test_tokens(), o, 4); }),
              HasSubstr("2 shard(s) cannot give each of the 3 process(es)"));
}

TEST(ShardLoader, StartingMidEpochGivesTheSameBatchesAsReadingThrough) {
  const std::string dir = make_temp_dir("shard_loader_resume");
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(make_shard_set(dir, 4, 7)));
  data::LoaderOptions o;
  o.batch_size = 4;
  o.workers = 2;
  o.seed = 11;
  o.transform.size = 8;
  o.transform.random_resized_crop = true;
  data::ShardLoader through(set, shard_test_tokens(), o, 6);
  ASSERT_EQ(through.batches_per_epoch(), 6);  // two workers, 14 samples each: 3 batches each
  std::vector<data::Batch> batches;
  through.start_epoch(1, 0);
  while (auto b = through.next()) batches.push_back(*b);
  ASSERT_EQ(batches.size(), 6u);
  for (const int64_t first : {1, 3, 4}) {
    data::ShardLoader resumed(set, shard_test_tokens(), o, 6);
    resumed.start_epoch(1, first);
    for (int64_t b = first; b < 6; ++b) {
      auto batch = resumed.next();
      ASSERT_TRUE(batch.has_value());
      EXPECT_EQ(batch->index, b);
      EXPECT_EQ(batch_row_list(*batch), batch_row_list(batches[static_cast<size_t>(b)]))
          << "from " << first;
      EXPECT_TRUE(torch::equal(batch->images, batches[static_cast<size_t>(b)].images))
          << "batch " << b;
    }
    EXPECT_FALSE(resumed.next().has_value());
  }
}

TEST(ShardLoader, BadSampleNamesShardAndKeyOrIsSkippedAndCounted) {
  const std::string dir = make_temp_dir("shard_loader_bad");
  write_tar(dir + "/a.tar", {{"k1.png", png_bytes(1)},
                             {"k1.txt", "one"},
                             {"k2.png", png_bytes(2)},  // no caption
                             {"k3.png", "broken"},
                             {"k3.txt", "three"},  // undecodable
                             {"k4.png", png_bytes(4)},
                             {"k4.txt", "four"}});
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(dir + "/a.tar"));
  EXPECT_EQ(set->counted, 1);  // no sizes.json: counted once
  ASSERT_EQ(set->total, 4);
  data::LoaderOptions o = one_worker_in_order(4);
  {
    data::ShardLoader loader(set, shard_test_tokens(), o, 1);
    loader.start_epoch(0, 0);
    EXPECT_THAT(error_message([&] { loader.next(); }),
                HasSubstr("shard '" + dir + "/a.tar', sample 'k2': no caption (k2.txt)"));
  }
  o.skip_bad = true;
  data::ShardLoader loader(set, shard_test_tokens(), o, 1);
  loader.start_epoch(0, 0);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch_row_list(*batch), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(batch->skipped, 2);
  EXPECT_EQ(loader.skipped_images(), 2);
}

// What training reads of a sample is its image, caption and json: other members (features,
// class files) are skipped unread and left out; a copy of the whole sample keeps them.
TEST(ShardReader, TrainingReadsOnlyThePairsMembers) {
  const std::string dir = make_temp_dir("shard_reader_members");
  const std::string img = png_bytes(1), features(1 << 20, 'x');
  write_tar(dir + "/m.tar", {{"k1.png", img},
                             {"k1.npy", features},
                             {"k1.txt", "one"},
                             {"k1.json", "{\"label\": 2}"},
                             {"k1.cls", "7"},
                             {"k2.png", png_bytes(2)},
                             {"k2.txt", "two"}});
  data::ShardSample s;
  data::ShardReader pairs_only(dir + "/m.tar", /*read_images=*/true, /*keep_other_members=*/false);
  ASSERT_TRUE(pairs_only.next(s));
  ASSERT_TRUE(s.usable()) << s.problem;
  ASSERT_EQ(s.members.size(), 3u);
  EXPECT_EQ(s.members[0].name, "k1.png");
  EXPECT_EQ(s.members[1].name, "k1.txt");
  EXPECT_EQ(s.members[2].name, "k1.json");
  EXPECT_EQ(s.image_bytes(), img);
  EXPECT_EQ(s.caption_text(), "one");
  EXPECT_EQ(s.label, 2);
  ASSERT_TRUE(pairs_only.next(s));
  EXPECT_EQ(s.key, "k2");
  EXPECT_FALSE(pairs_only.next(s));
  EXPECT_EQ(pairs_only.error(), "");
  data::ShardReader whole(dir + "/m.tar");
  ASSERT_TRUE(whole.next(s));
  ASSERT_EQ(s.members.size(), 5u);
  EXPECT_EQ(s.members[1].data, features);
}

// Two samples under one key, one right after the other and one further on: neither is merged
// into the first sample, so the shard keeps the length its sizes.json gives; each repeat is an
// error naming the shard and the key, or is skipped and counted with skip_bad.
TEST(ShardLoader, RepeatedKeyIsAnErrorNamingItOrSkippedAndCounted) {
  const std::string dir = make_temp_dir("shard_loader_repeated_key");
  write_tar(dir + "/d.tar", {{"k1.png", png_bytes(1)},
                             {"k1.txt", "one"},
                             {"k1.png", png_bytes(2)},
                             {"k1.txt", "one again"},  // right after
                             {"k2.png", png_bytes(3)},
                             {"k2.txt", "two"},
                             {"k1.png", png_bytes(4)},
                             {"k1.txt", "one, later"},  // further on
                             {"k3.png", png_bytes(5)},
                             {"k3.txt", "three"}});
  data::write_shard_sizes(dir, {{"d.tar", 5}});
  std::vector<data::ShardSample> samples;
  data::ShardReader reader(dir + "/d.tar");
  for (data::ShardSample sample; reader.next(sample);) samples.push_back(sample);
  ASSERT_EQ(samples.size(), 5u);
  EXPECT_EQ(data::count_shard_samples(dir + "/d.tar"), 5);
  for (size_t i : {0u, 2u, 4u}) EXPECT_TRUE(samples[i].usable()) << i << ": " << samples[i].problem;
  for (size_t i : {1u, 3u}) {
    EXPECT_EQ(samples[i].key, "k1");
    EXPECT_THAT(samples[i].problem, HasSubstr("the key 'k1' repeats in this shard"));
    EXPECT_EQ(samples[i].members.size(), 2u);
  }
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(dir + "/d.tar"));
  ASSERT_EQ(set->total, 5);
  data::LoaderOptions o = one_worker_in_order(5);
  {
    data::ShardLoader loader(set, shard_test_tokens(), o, 1);
    loader.start_epoch(0, 0);
    EXPECT_THAT(
        error_message([&] { loader.next(); }),
        HasSubstr("shard '" + dir + "/d.tar', sample 'k1': the key 'k1' repeats in this shard"));
  }
  o.skip_bad = true;
  data::ShardLoader loader(set, shard_test_tokens(), o, 1);
  loader.start_epoch(0, 0);
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch_row_list(*batch), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(batch->skipped, 2);
}

TEST(ShardLoader, TruncatedLastShardIsReportedAndItsLostSamplesSkipped) {
  const std::string dir = make_temp_dir("shard_loader_truncated");
  const std::string pattern = make_shard_set(dir, 2, 4);
  const std::string last = read_file(dir + "/p-1.tar");
  write_text(dir + "/p-1.tar", last.substr(0, last.size() / 3));  // sizes.json still says 4
  auto set = std::make_shared<data::ShardSet>(data::open_shard_set(pattern));
  data::LoaderOptions o;
  o.batch_size = 2;
  o.workers = 1;
  o.shuffle = false;
  o.drop_last = false;
  o.transform.size = 8;
  {
    data::ShardLoader loader(set, shard_test_tokens(), o, 1);
    const std::string message = error_message([&] { epoch_rows(loader, 0); });
    EXPECT_THAT(message, HasSubstr("shard '" + dir + "/p-1.tar'"));
    EXPECT_THAT(message, HasSubstr("truncated"));
  }
  o.skip_bad = true;
  data::ShardLoader loader(set, shard_test_tokens(), o, 1);
  const auto rows = epoch_rows(loader, 0);
  EXPECT_GE(rows.size(), 4u);  // the first shard whole
  EXPECT_LT(rows.size(), 8u);
  EXPECT_EQ(static_cast<int64_t>(rows.size()) + loader.skipped_images(), 8);
  EXPECT_EQ(loader.broken_shards(), 1);
}

TEST(PrepareShards, ManifestBecomesBalancedShardsWithOriginalBytes) {
  const std::string dir = make_temp_dir("prepare_shards");
  const std::string manifest_path = make_shapes_dataset(dir + "/data", 25, 16, 4);
  const data::Manifest m = data::read_manifest(manifest_path, {});
  data::ManifestToShardsOptions o;
  o.out = dir + "/shards";
  o.samples_per_shard = 10;
  o.verbose = false;
  const auto report = data::write_manifest_as_shards(m, o);
  EXPECT_EQ(report.shards, 3);
  EXPECT_EQ(report.pattern, dir + "/shards/{00000..00002}.tar");
  const data::ShardSet set = data::open_shard_set(report.pattern);
  EXPECT_EQ(set.sizes, (std::vector<int64_t>{8, 8, 9}));
  EXPECT_EQ(set.counted, 0);
  std::string previous;
  int64_t row = 0;
  for (const auto& shard : set.shards) {
    data::ShardReader reader(shard);
    data::ShardSample s;
    while (reader.next(s)) {
      const auto r = static_cast<size_t>(row++);
      ASSERT_TRUE(s.usable()) << s.problem;
      EXPECT_GT(s.key, previous);  // sorted keys
      previous = s.key;
      EXPECT_EQ(s.image_bytes(), read_file(m.images[r]));
      EXPECT_EQ(s.caption_text(), m.captions[r]);
      EXPECT_EQ(s.mismatched, m.mismatched[r]);
      EXPECT_EQ(s.label, m.labels[r]);
    }
    EXPECT_EQ(reader.error(), "");
  }
  EXPECT_EQ(row, 25);
  EXPECT_TRUE(temporary_files_in(dir + "/shards").empty());
}

// A folder that holds another set's shards is refused, naming them: a brace pattern over the
// folder would mix the two sets. --overwrite replaces the old set, leaving no stale shard.
TEST(PrepareShards, FolderWithAnotherSetIsRefusedUnlessOverwritten) {
  const std::string dir = make_temp_dir("prepare_shards_overwrite");
  const std::string manifest_path = make_shapes_dataset(dir + "/data", 25, 16, 4);
  const data::Manifest m = data::read_manifest(manifest_path, {});
  data::ManifestToShardsOptions o;
  o.out = dir + "/shards";
  o.samples_per_shard = 5;
  o.verbose = false;
  EXPECT_EQ(data::write_manifest_as_shards(m, o).shards, 5);
  o.samples_per_shard = 10;
  const std::string message = error_message([&] { data::write_manifest_as_shards(m, o); });
  EXPECT_THAT(message, HasSubstr("output folder '" + dir +
                                 "/shards' already holds a shard set (00000.tar, 00001.tar, "
                                 "00002.tar, 00003.tar, 00004.tar and 1 more)"));
  EXPECT_THAT(message, HasSubstr("--overwrite"));
  EXPECT_TRUE(fs::exists(dir + "/shards/00004.tar"));  // nothing was touched
  o.overwrite = true;
  EXPECT_EQ(data::write_manifest_as_shards(m, o).shards, 3);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir + "/shards"))
    names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"00000.tar", "00001.tar", "00002.tar", "sizes.json"}));
  EXPECT_EQ(data::open_shard_set(dir + "/shards/{00000..00002}.tar").total, 25);
  // An input inside the folder is never removed.
  write_tar(dir + "/shards/input.tar", {{"x.txt", "x"}});
  data::Manifest with_input = m;
  with_input.path = dir + "/shards/input.tar";
  EXPECT_THAT(error_message([&] { data::write_manifest_as_shards(with_input, o); }),
              HasSubstr("holds the input '" + dir + "/shards/input.tar'"));
}

TEST(PrepareShards, JsonLinesListWithItsOwnFieldNamesBecomesShards) {
  const std::string dir = make_temp_dir("prepare_shards_jsonl");
  write_text(dir + "/img/a.png", png_bytes(1));
  write_text(dir + "/img/b.png", png_bytes(2));
  write_text(dir + "/list.jsonl",
             "{\"file\": \"img/a.png\", \"text\": \"a red square\", \"mismatched\": false}\n"
             "\n"
             "{\"file\": \"img/b.png\", \"text\": \"a \\\"blue\\\" square\", \"mismatched\": 1}\n");
  data::ManifestOptions mo;
  mo.image_key = "file";
  mo.caption_key = "text";
  const data::Manifest m = data::read_jsonl_manifest(dir + "/list.jsonl", mo);
  ASSERT_EQ(m.size(), 2);
  EXPECT_EQ(m.images[1], dir + "/img/b.png");
  EXPECT_EQ(m.captions[1], "a \"blue\" square");
  EXPECT_EQ(m.lines, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(m.mismatched, (std::vector<int8_t>{0, 1}));
  data::ManifestToShardsOptions o;
  o.out = dir + "/shards";
  o.verbose = false;
  const auto report = data::write_manifest_as_shards(m, o);
  EXPECT_EQ(report.shards, 1);
  data::ShardReader reader(dir + "/shards/00000.tar");
  data::ShardSample s;
  ASSERT_TRUE(reader.next(s));
  ASSERT_TRUE(reader.next(s));
  EXPECT_EQ(s.image_bytes(), png_bytes(2));
  EXPECT_EQ(s.caption_text(), "a \"blue\" square");
  EXPECT_EQ(s.mismatched, 1);
  write_text(dir + "/bad.jsonl",
             "{\"file\": \"img/a.png\", \"text\": \"x\"}\n{\"file\": \"img/b.png\"}\n");
  EXPECT_THAT(error_message([&] { data::read_jsonl_manifest(dir + "/bad.jsonl", mo); }),
              HasSubstr(dir + "/bad.jsonl:2: empty caption"));
  write_text(dir + "/bad.jsonl", "[1, 2]\n");
  EXPECT_THAT(error_message([&] { data::read_jsonl_manifest(dir + "/bad.jsonl", mo); }),
              HasSubstr(dir + "/bad.jsonl:1: not a JSON object"));
  // Shards keep the original bytes, so only types that readers know are accepted.
  write_text(dir + "/img/c.bmp", "BM");
  write_text(dir + "/bmp.jsonl", "{\"file\": \"img/c.bmp\", \"text\": \"x\"}\n");
  o.out = dir + "/shards_bmp";
  EXPECT_THAT(error_message([&] {
                data::write_manifest_as_shards(data::read_jsonl_manifest(dir + "/bmp.jsonl", mo),
                                               o);
              }),
              HasSubstr(dir + "/bmp.jsonl:1: image '" + dir +
                        "/img/c.bmp' is not a .jpg, .jpeg, .png or .webp file"));
}

// The tiny model of the training tests, on shards.
train::Config shard_run_config(const std::string& pattern, const std::string& run_dir) {
  return train::parse_config(
      "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, heads: "
      "2},"
      "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {workers: 2, prefetch_batches: 2, shuffle_buffer: 5}\n"
      "tokenizer: {vocab_size: 40}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2, weight_decay: 0.01}\n"
      "train: {batch_size: 8, epochs: 100, log_every: 1, checkpoint_every: 4, seed: 5}\n",
      {"data.train_manifest=" + pattern, "train.run_dir=" + run_dir});
}

class StopShardRunAfter : public hooks::StepHook {
 public:
  explicit StopShardRunAfter(int64_t steps) : steps_(steps) {}
  std::string name() const override { return "stop_shard_run_after"; }
  void after_step(const hooks::StepContext&, Metrics&) override { ++done_; }
  std::string stop_reason() const override {
    return done_ >= steps_ ? "after step " + std::to_string(steps_) : "";
  }

 private:
  int64_t steps_, done_ = 0;
};

std::map<std::string, torch::Tensor> shard_run_parameters(const std::string& run_dir) {
  train::TrainedModel m = train::load_trained_model(run_dir + "/checkpoints/final.pt", "cpu");
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

TEST(ShardTraining, StoppedAndResumedRunEqualsUninterruptedRun) {
  const std::string dir = make_temp_dir("shard_train_resume");
  const data::Manifest m = data::read_manifest(make_shapes_dataset(dir + "/data", 48, 16, 6), {});
  data::ManifestToShardsOptions so;
  so.out = dir + "/shards";
  so.samples_per_shard = 12;
  so.verbose = false;
  const std::string pattern = data::write_manifest_as_shards(m, so).pattern;  // 4 shards of 12

  auto straight = shard_run_config(pattern, dir + "/straight");
  straight.train.eval_manifest = pattern;  // validation on shards too (it draws no random numbers)
  straight.train.eval_every = 4;
  // 2 workers x 2 shards x 12 samples: 3 batches of 8 each, 6 steps per epoch.
  straight.train.max_steps = 9;
  ASSERT_EQ(train::run_training(straight, {}).exit_code, 0);

  auto split = shard_run_config(pattern, dir + "/split");
  split.train.eval_manifest = pattern;
  split.train.eval_every = 4;
  split.train.max_steps = 9;
  split.tokenizer.model = dir + "/straight/tokenizer.model";
  train::TrainOptions first;
  first.hooks.push_back(
      std::make_shared<StopShardRunAfter>(8));  // in the middle of the second epoch
  const auto stopped = train::run_training(split, first);
  EXPECT_EQ(stopped.state.step, 8);
  train::TrainOptions resume;
  resume.resume = "latest";
  const auto resumed = train::run_training(split, resume);
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.state.step, 9);

  const auto a = shard_run_parameters(dir + "/straight"), b = shard_run_parameters(dir + "/split");
  ASSERT_FALSE(a.empty());
  for (const auto& [name, value] : a) EXPECT_TRUE(torch::equal(value, b.at(name))) << name;
  EXPECT_EQ(logged_losses(dir + "/split"), logged_losses(dir + "/straight"));
  EXPECT_THAT(read_file(dir + "/straight/metrics.jsonl"), HasSubstr("\"val_mismatch_auroc\""));
  // Pair dynamics name each sample by its key, and went through the checkpoint.
  const std::string dynamics = read_file(dir + "/straight/pair_dynamics.tsv");
  EXPECT_THAT(dynamics, HasSubstr("\t000000047\t"));
  EXPECT_EQ(read_file(dir + "/split/pair_dynamics.tsv"), dynamics);
}

// The shard order depends on the workers, the shuffle buffer, the processes, the batch and the
// shards: a resume mid-epoch that changes any of them would repeat and skip samples. It is
// refused before anything is written, naming each change; --restart-epoch starts the epoch over.
TEST(ShardTraining, ResumeWithAnotherDataLayoutIsRefusedNamingEachChange) {
  const std::string dir = make_temp_dir("shard_train_layout");
  const data::Manifest m = data::read_manifest(make_shapes_dataset(dir + "/data", 48, 16, 6), {});
  data::ManifestToShardsOptions so;
  so.out = dir + "/shards";
  so.samples_per_shard = 12;
  so.verbose = false;
  const std::string pattern = data::write_manifest_as_shards(m, so).pattern;  // 4 shards of 12
  auto c = shard_run_config(pattern, dir + "/run");
  c.train.max_steps = 9;
  train::TrainOptions first;
  first.hooks.push_back(std::make_shared<StopShardRunAfter>(4));  // mid-epoch (6 steps per epoch)
  ASSERT_EQ(train::run_training(c, first).state.step, 4);
  const std::string metrics = read_file(dir + "/run/metrics.jsonl"),
                    config = read_file(dir + "/run/config.yaml");

  auto changed = c;
  changed.data.workers = 1;
  changed.data.shuffle_buffer = c.data.shuffle_buffer + 7;
  train::TrainOptions resume;
  resume.resume = "latest";
  const std::string message = error_message([&] { train::run_training(changed, resume); });
  EXPECT_THAT(message, HasSubstr("the data would be read in another order (2 difference(s))"));
  EXPECT_THAT(message, HasSubstr("loader workers per process (data.workers): checkpoint 2, now 1"));
  EXPECT_THAT(message, HasSubstr("shuffle buffer (data.shuffle_buffer): checkpoint " +
                                 std::to_string(c.data.shuffle_buffer) + ", now " +
                                 std::to_string(changed.data.shuffle_buffer)));
  EXPECT_THAT(message, HasSubstr("--restart-epoch"));
  EXPECT_EQ(read_file(dir + "/run/metrics.jsonl"), metrics);  // nothing was written
  EXPECT_EQ(read_file(dir + "/run/config.yaml"), config);

  resume.restart_epoch = true;  // epoch 0 (steps 1-6) starts over at step 4: it ends at step 10
  changed.train.max_steps = 10;
  const auto resumed = train::run_training(changed, resume);
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.state.step, 10);
  EXPECT_EQ(resumed.state.epoch, 1);
  EXPECT_EQ(resumed.state.batch_in_epoch, 0);
  // The same layout resumes as before.
  EXPECT_THAT(train::checkpoint_data_layout(dir + "/run/checkpoints/final.pt"),
              HasSubstr("loader workers per process (data.workers): 1\n"));
}

}  // namespace
}  // namespace halo::test
