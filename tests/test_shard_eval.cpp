// eval and filter on shards: the same results as on the manifest they were written from, and
// a filter round trip in which kept and rejected shards together are the input, every member's
// name and bytes unchanged, with the key/score table, the kept-key list and the uid .npy.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "data/manifest.h"
#include "data/manifest_to_shards.h"
#include "data/pair_set.h"
#include "data/shard_pattern.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"
#include "eval/evaluate.h"
#include "eval/filter.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A tiny model's configuration: 20 steps on `train_manifest` into `run_dir`, with `extra`
// overrides.
train::Config tiny_config(const std::string& train_manifest, const std::string& run_dir,
                          std::vector<std::string> extra = {}) {
  extra.push_back("data.train_manifest=" + train_manifest);
  extra.push_back("train.run_dir=" + run_dir);
  return train::parse_config(
      "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, "
      "heads: 2},"
      "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {workers: 2, prefetch_batches: 2}\ntokenizer: {vocab_size: 40}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
      "train: {batch_size: 16, max_steps: 20, log_every: 5, checkpoint_every: 100, seed: 3}\n",
      extra);
}

class ShardEvalEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir("shard_eval_e2e");
    manifest_ = make_shapes_dataset(dir_ + "/data", 64, 16, /*mismatch_every=*/5);
    ASSERT_EQ(train::run_training(tiny_config(manifest_, dir_ + "/run"), {}).exit_code, 0);
    data::ManifestToShardsOptions so;
    so.out = dir_ + "/shards";
    so.samples_per_shard = 20;  // 4 shards of 16
    so.verbose = false;
    pattern_ = data::write_manifest_as_shards(data::read_manifest(manifest_, {}), so).pattern;
  }
  static std::string dir_, manifest_, pattern_;
};
std::string ShardEvalEndToEnd::dir_, ShardEvalEndToEnd::manifest_, ShardEvalEndToEnd::pattern_;

// Each sample of the shards of `pattern`: key -> its members (name, bytes) in order.
std::map<std::string, std::vector<std::pair<std::string, std::string>>> shard_contents(
    const std::string& pattern) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  for (const auto& shard : data::existing_shards(pattern)) {
    data::ShardReader reader(shard);
    data::ShardSample s;
    while (reader.next(s)) {
      auto& members = out[s.key];
      EXPECT_TRUE(members.empty()) << "key " << s.key << " twice";
      for (const auto& m : s.members) members.emplace_back(m.name, m.data);
    }
    EXPECT_EQ(reader.error(), "") << shard;
  }
  return out;
}

TEST_F(ShardEvalEndToEnd, EvalOnShardsGivesTheManifestsResults) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  eval::EvalOptions o;
  o.embed.workers = 1;  // one batch of all 64 pairs on both paths: the same embeddings
  o.classes = dir_ + "/data/classes.txt";
  o.manifest = manifest_;
  o.out_dir = dir_ + "/eval-tsv";
  const eval::EvalResult tsv = eval::evaluate(model, o);
  o.manifest = pattern_;
  o.out_dir = dir_ + "/eval-shards";
  const eval::EvalResult shards = eval::evaluate(model, o);
  EXPECT_EQ(shards.pairs, 64);
  EXPECT_EQ(shards.retrieval_pairs, 52);  // the json's mismatched flags were read
  EXPECT_EQ(shards.image_to_text.r1, tsv.image_to_text.r1);
  EXPECT_EQ(shards.text_to_image.r5, tsv.text_to_image.r5);
  EXPECT_EQ(shards.image_to_text.mean_rank, tsv.image_to_text.mean_rank);
  ASSERT_TRUE(shards.classification.has_value());  // the json's labels were read
  ASSERT_TRUE(tsv.classification.has_value());
  EXPECT_EQ(shards.classification->top1, tsv.classification->top1);
  ASSERT_EQ(shards.detection.size(), tsv.detection.size());
  for (size_t i = 0; i < tsv.detection.size(); ++i)
    EXPECT_EQ(shards.detection[i].auroc, tsv.detection[i].auroc);
  // The pair scores name each sample by its key.
  EXPECT_THAT(read_file(dir_ + "/eval-shards/pair_scores.tsv"), HasSubstr("\t000000063\t"));
}

// A shard set may label only some samples (an icon set without categories): zero-shot
// classification and the OOD scores take the labelled ones and say how many were left out.
TEST_F(ShardEvalEndToEnd, EvalOnShardsLabelledInPartClassifiesTheLabelledSamples) {
  const std::string folder = dir_ + "/partly-labelled";
  fs::create_directories(folder);
  const auto shards = data::existing_shards(pattern_);
  ASSERT_EQ(shards.size(), 4u);
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name = fs::path(shards[k]).filename().string();
    if (k > 0) {
      fs::copy_file(shards[k], folder + "/" + name);
      continue;
    }
    data::ShardReader reader(shards[k]);
    data::ShardWriter writer(folder + "/" + name);
    for (data::ShardSample s; reader.next(s); s = data::ShardSample{}) {
      std::string& json = s.members.at(static_cast<size_t>(s.json)).data;
      json = std::regex_replace(json, std::regex(R"("label":\s*\d+\s*,?)"), "");
      json = std::regex_replace(json, std::regex(R"(,\s*\})"), "}");
      writer.add(s);
    }
    writer.finish();
  }
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  eval::EvalOptions o;
  o.embed.workers = 1;
  o.classes = dir_ + "/data/classes.txt";
  o.manifest = folder + "/{00000..00003}.tar";
  o.ood = {{"itself", pattern_}};
  o.out_dir = dir_ + "/eval-partly-labelled";
  const eval::EvalResult r = eval::evaluate(model, o);
  EXPECT_EQ(r.pairs, 64);
  EXPECT_EQ(r.unlabelled, 16);
  ASSERT_TRUE(r.classification.has_value());
  EXPECT_EQ(r.classification->count, 48);
  EXPECT_THAT(read_file(o.out_dir + "/results.txt"), HasSubstr("(16 unlabelled pairs left out)"));
  // The in-distribution rows of ood_scores.tsv are the 48 labelled images.
  std::istringstream rows(read_file(o.out_dir + "/ood_scores.tsv"));
  int in_distribution = 0;
  for (std::string line; std::getline(rows, line);)
    in_distribution += line.rfind("in-distribution\t", 0) == 0;
  EXPECT_EQ(in_distribution, 48);
}

TEST_F(ShardEvalEndToEnd, FilterSplitsShardsIntoKeptAndRejectedWithTheOriginalBytes) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run/checkpoints/final.pt");
  const auto input = shard_contents(pattern_);
  ASSERT_EQ(input.size(), 64u);
  std::map<std::string, std::string> input_files;
  for (const auto& shard : data::existing_shards(pattern_)) input_files[shard] = read_file(shard);

  eval::FilterOptions o;
  o.keep_fraction = 0.75;
  o.verbose = false;
  o.embed.workers = 1;
  o.manifest = manifest_;
  o.out_dir = dir_ + "/filter-tsv";
  const eval::FilterReport tsv = eval::filter_manifest(model, o);
  o.manifest = pattern_;
  o.out_dir = dir_ + "/filter-shards";
  const eval::FilterReport r = eval::filter_manifest(model, o);
  EXPECT_EQ(r.kept, 48);
  EXPECT_EQ(r.rejected, 16);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_EQ(r.mismatched, 12);
  EXPECT_EQ(r.mismatched_rejected, tsv.mismatched_rejected);
  EXPECT_EQ(r.kept_path, dir_ + "/filter-shards/kept/{00000..00003}.tar");

  // Kept and rejected together are the input, sample for sample and byte for byte.
  const auto kept = shard_contents(r.kept_path), rejected = shard_contents(r.rejected_path);
  EXPECT_EQ(kept.size(), 48u);
  EXPECT_EQ(rejected.size(), 16u);
  for (const auto& [key, members] : input) {
    const bool in_kept = kept.count(key) > 0, in_rejected = rejected.count(key) > 0;
    EXPECT_NE(in_kept, in_rejected) << key;
    EXPECT_EQ(in_kept ? kept.at(key) : rejected.at(key), members) << key;
  }
  // The same pairs as the manifest's filter kept (keys are the manifest's row numbers).
  std::set<std::string> kept_by_tsv;
  const data::Manifest tsv_kept = data::read_manifest(dir_ + "/filter-tsv/kept.tsv", {});
  const data::Manifest all = data::read_manifest(manifest_, {});
  for (const auto& image : tsv_kept.images) {
    for (size_t i = 0; i < 64; ++i) {
      if (fs::path(image).filename() == fs::path(all.images[i]).filename()) {
        kept_by_tsv.insert(std::string(9 - std::to_string(i).size(), '0') + std::to_string(i));
      }
    }
  }
  std::set<std::string> kept_keys;
  std::istringstream keys(read_file(dir_ + "/filter-shards/kept_keys.txt"));
  for (std::string k; std::getline(keys, k);) kept_keys.insert(k);
  EXPECT_EQ(kept_keys.size(), 48u);
  EXPECT_EQ(kept_keys, kept_by_tsv);
  for (const auto& k : kept_keys) EXPECT_TRUE(kept.count(k)) << k;
  EXPECT_THAT(data::shard_sizes_from_json(data::existing_shards(r.kept_path)),
              ::testing::Each(::testing::Ge(0)));
  std::istringstream scores(read_file(r.scores_path));
  std::string line;
  std::getline(scores, line);
  EXPECT_EQ(line, "key\tshard\tscore\tkept\tmismatched\tlog_odds");
  int rows = 0;
  while (std::getline(scores, line)) ++rows;
  EXPECT_EQ(rows, 64);
  EXPECT_EQ(r.kept_uids_path, "");  // the json has no uid
  // The input is untouched, and nothing half-written is left.
  for (const auto& [shard, bytes] : input_files) EXPECT_EQ(read_file(shard), bytes) << shard;
  EXPECT_TRUE(temporary_files_in(dir_ + "/filter-shards").empty());
  EXPECT_TRUE(temporary_files_in(dir_ + "/filter-shards/kept").empty());
}

// The score column of a filter's scores.tsv by the set's row: a manifest's rows by line (row =
// line - 2), shards by key (the zero-padded row).
std::map<int64_t, double> filter_scores_by_row(const std::string& path) {
  std::map<int64_t, double> out;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);
  const bool by_line = line.rfind("line\t", 0) == 0;
  while (std::getline(in, line)) {
    const auto f = data::split_fields(line, '\t');
    out[std::stoll(f.at(0)) - (by_line ? 2 : 0)] = std::stod(f.at(2));
  }
  return out;
}

// --score in-context on shards scores each chunk of --chunk samples against itself, as on a
// manifest: the same scores for the same pairs, and another --chunk gives other ones.
TEST_F(ShardEvalEndToEnd, FilterInContextOnShardsUsesTheChunkAsOnAManifest) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run/checkpoints/final.pt");
  eval::FilterOptions o;
  o.keep_fraction = 0.75;
  o.verbose = false;
  o.embed.workers = 1;  // the shards in order, so that the chunks hold the manifest's rows
  o.score = "in-context";
  o.chunk_rows = 16;
  o.manifest = manifest_;
  o.out_dir = dir_ + "/in-context-tsv";
  const eval::FilterReport tsv = eval::filter_manifest(model, o);
  o.manifest = pattern_;
  o.out_dir = dir_ + "/in-context-shards";
  const eval::FilterReport shards = eval::filter_manifest(model, o);
  EXPECT_EQ(shards.kept, tsv.kept);
  const auto want = filter_scores_by_row(tsv.scores_path),
             got = filter_scores_by_row(shards.scores_path);
  ASSERT_EQ(got.size(), 64u);
  ASSERT_EQ(want.size(), 64u);
  for (const auto& [row, score] : want)
    EXPECT_NEAR(got.at(row), score, 1e-6 * std::max(1.0, score)) << row;
  // The model's own score is another one: in-context is not silently replaced by it.
  o.score = "model";
  o.out_dir = dir_ + "/model-shards";
  const auto model_scores = filter_scores_by_row(eval::filter_manifest(model, o).scores_path);
  int64_t differ = 0;
  for (const auto& [row, score] : got)
    differ += std::abs(model_scores.at(row) - score) > 1e-6 ? 1 : 0;
  EXPECT_GT(differ, 32);
  // A bank of 32 pairs instead of 16 changes the scores.
  o.score = "in-context";
  o.chunk_rows = 32;
  o.out_dir = dir_ + "/in-context-shards-32";
  const auto wider = filter_scores_by_row(eval::filter_manifest(model, o).scores_path);
  differ = 0;
  for (const auto& [row, score] : got) differ += std::abs(wider.at(row) - score) > 1e-9 ? 1 : 0;
  EXPECT_GT(differ, 32);
}

TEST_F(ShardEvalEndToEnd, FilterWritesTheKeptUidsAsANumpyArray) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  const std::string dir = make_temp_dir("shard_filter_uids");
  std::vector<std::pair<std::string, std::string>> members;
  for (int i = 0; i < 6; ++i) {
    const std::string key = "s" + std::to_string(i);
    members.push_back({key + ".png", png_bytes(i, 16, 16)});
    members.push_back({key + ".txt", "a red circle"});
    members.push_back({key + ".json", "{\"uid\": \"u" + std::to_string(i) + "\\u00e9\"}"});
  }
  members.push_back({"s6.png", "broken"});
  members.push_back({"s6.txt", "unreadable"});
  write_tar(dir + "/in/a.tar", members);
  eval::FilterOptions o;
  o.threshold = 2.0;  // keeps every scored pair
  o.verbose = false;
  o.manifest = dir + "/in/a.tar";
  o.out_dir = dir + "/out";
  const eval::FilterReport r = eval::filter_manifest(model, o);
  EXPECT_EQ(r.kept, 6);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_THAT(read_file(r.skipped_path), HasSubstr("s6\ta.tar\tcannot decode image"));
  EXPECT_EQ(shard_contents(dir + "/out/rejected/a.tar").count("s6"), 1u);  // nothing is lost
  ASSERT_EQ(r.kept_uids_path, dir + "/out/kept_uids.npy");
  std::vector<std::string> uids;
  for (int i = 0; i < 6; ++i) uids.push_back("u" + std::to_string(i) + "\xc3\xa9");
  const std::string npy = read_file(r.kept_uids_path);
  EXPECT_EQ(npy, eval::npy_of_strings(uids));
  ASSERT_GT(npy.size(), 10u);
  EXPECT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header =
      static_cast<unsigned char>(npy[8]) + 256u * static_cast<unsigned char>(npy[9]);
  EXPECT_EQ((10 + header) % 64, 0u);
  EXPECT_THAT(npy.substr(10, header),
              HasSubstr("'descr': '<U3', 'fortran_order': False, 'shape': (6,)"));
  EXPECT_EQ(npy.size(), 10 + header + 6 * 3 * 4);
  EXPECT_EQ(npy.substr(10 + header, 12), std::string("u\0\0\0"
                                                     "0\0\0\0"
                                                     "\xe9\0\0\0",
                                                     12));
}

}  // namespace
}  // namespace halo::test

namespace halo::test {
namespace {

// Cross-scoring splits a shard set by whole shards: shard i is in fold i mod k.
TEST_F(ShardEvalEndToEnd, ShardFoldsAreWholeShardsByIndex) {
  const auto all = data::PairSet::open(pattern_, {}, data::PairSet::ShardIndex::keys);
  const auto fold1 = all->shard_fold(2, 1, /*complement=*/false, data::PairSet::ShardIndex::keys);
  const auto others = all->shard_fold(2, 1, /*complement=*/true, data::PairSet::ShardIndex::none);
  ASSERT_EQ(fold1->shards()->shards.size(), 2u);
  EXPECT_EQ(fold1->shards()->shards[0], all->shards()->shards[1]);
  EXPECT_EQ(fold1->shards()->shards[1], all->shards()->shards[3]);
  EXPECT_EQ(others->shards()->shards[0], all->shards()->shards[0]);
  EXPECT_EQ(others->shards()->shards[1], all->shards()->shards[2]);
  EXPECT_EQ(fold1->size() + others->size(), all->size());
  // Each row of the fold knows its row in the whole set: the same key.
  ASSERT_EQ(fold1->whole_set_rows().size(), static_cast<size_t>(fold1->size()));
  for (int64_t i = 0; i < fold1->size(); ++i) {
    const auto whole = static_cast<size_t>(fold1->whole_set_rows()[static_cast<size_t>(i)]);
    EXPECT_EQ(fold1->rows().images[static_cast<size_t>(i)], all->rows().images[whole]);
  }
  EXPECT_THROW(all->shard_fold(5, 4, false, data::PairSet::ShardIndex::none), halo::Error);
}

// Two models trained on shards with data.folds=2 cross-score them: every sample takes the score
// of the model that left its shard's fold out, as that model alone would give it.
TEST_F(ShardEvalEndToEnd, FilterCrossScoresShardsWithTheModelThatNeverSawThem) {
  const std::string dir = make_temp_dir("shard_cross_scoring");
  std::vector<train::TrainedModel> models;
  for (int fold = 0; fold < 2; ++fold) {
    const std::string run = dir + "/fold" + std::to_string(fold);
    ASSERT_EQ(train::run_training(
                  tiny_config(pattern_, run,
                              {"data.folds=2", "data.holdout_fold=" + std::to_string(fold),
                               "train.pair_dynamics=false"}),
                  {})
                  .exit_code,
              0);
    models.push_back(train::load_trained_model(run));
  }
  eval::FilterOptions o;
  o.keep_fraction = 0.5;
  o.verbose = false;
  o.embed.workers = 1;
  o.manifest = pattern_;
  o.out_dir = dir + "/cross";
  const auto cross = filter_scores_by_row(eval::filter_manifest(models, o).scores_path);
  ASSERT_EQ(cross.size(), 64u);
  std::vector<std::map<int64_t, double>> alone;
  for (int fold = 0; fold < 2; ++fold) {
    o.out_dir = dir + "/alone" + std::to_string(fold);
    alone.push_back(filter_scores_by_row(eval::filter_manifest(models[fold], o).scores_path));
  }
  // Keys are the manifest's rows; 16 samples a shard, shard i in fold i mod 2.
  int differ = 0;
  for (const auto& [row, score] : cross) {
    const int fold = static_cast<int>((row / 16) % 2);
    EXPECT_NEAR(score, alone[static_cast<size_t>(fold)].at(row), 1e-6) << "row " << row;
    differ += std::abs(score - alone[static_cast<size_t>(1 - fold)].at(row)) > 1e-6 ? 1 : 0;
  }
  EXPECT_GT(differ, 32);  // the other model scores differently

  // Models that left out folds of a manifest's rows cannot cross-score shards.
  std::vector<train::TrainedModel> by_rows;
  for (int fold = 0; fold < 2; ++fold) {
    const std::string run = dir + "/rows" + std::to_string(fold);
    ASSERT_EQ(train::run_training(
                  tiny_config(manifest_, run,
                              {"data.folds=2", "data.holdout_fold=" + std::to_string(fold),
                               "train.pair_dynamics=false"}),
                  {})
                  .exit_code,
              0);
    by_rows.push_back(train::load_trained_model(run));
  }
  o.out_dir = dir + "/by-rows";
  EXPECT_THAT(error_message([&] { eval::filter_manifest(by_rows, o); }),
              HasSubstr("cross-scoring shards needs models trained with data.folds on shards"));
}

// --scores-file on shards: a shard run's pair_dynamics.tsv, joined by line and checked by key.
TEST_F(ShardEvalEndToEnd, FilterShardsByAPairDynamicsFile) {
  const std::string dir = make_temp_dir("shard_scores_file");
  ASSERT_EQ(train::run_training(tiny_config(pattern_, dir + "/run"), {}).exit_code, 0);
  const std::string dynamics = dir + "/run/pair_dynamics.tsv";
  // own_mean by key, from the file.
  std::map<std::string, double> own;
  {
    std::istringstream in(read_file(dynamics));
    std::string line;
    std::getline(in, line);
    const auto header = data::split_fields(line, '\t');
    const auto col =
        static_cast<size_t>(std::find(header.begin(), header.end(), "own_mean") - header.begin());
    ASSERT_LT(col, header.size());
    while (std::getline(in, line)) {
      const auto f = data::split_fields(line, '\t');
      if (f.at(col) != "-") own[f.at(1)] = std::stod(f.at(col));
    }
  }
  ASSERT_GT(own.size(), 0u);
  eval::FilterOptions o;
  o.keep_fraction = 0.5;
  o.verbose = false;
  o.manifest = pattern_;
  o.out_dir = dir + "/out";
  o.scores_file = dynamics;
  o.score_column = "own_mean";
  std::vector<train::TrainedModel> none;
  const eval::FilterReport r = eval::filter_manifest(none, o);
  EXPECT_EQ(r.scored, static_cast<int64_t>(own.size()));
  EXPECT_EQ(r.skipped, 64 - static_cast<int64_t>(own.size()));
  // The kept samples are those with the lowest own_mean.
  double highest_kept = -1e300, lowest_rejected = 1e300;
  std::istringstream kept(read_file(r.kept_keys_path));
  std::set<std::string> kept_keys;
  for (std::string key; std::getline(kept, key);) kept_keys.insert(key);
  EXPECT_EQ(kept_keys.size(), static_cast<size_t>(std::llround(0.5 * own.size())));
  for (const auto& [key, v] : own)
    (kept_keys.count(key) ? highest_kept : lowest_rejected) =
        kept_keys.count(key) ? std::max(highest_kept, v) : std::min(lowest_rejected, v);
  EXPECT_LE(highest_kept, lowest_rejected);
  // The manifest run's file names image paths, not these keys: refused.
  o.scores_file = dir_ + "/run/pair_dynamics.tsv";
  o.out_dir = dir + "/wrong";
  try {
    eval::filter_manifest(none, o);
    ADD_FAILURE() << "a score file of another set was accepted";
  } catch (const halo::Error& e) {
    EXPECT_THAT(e.message(), HasSubstr("was the file written for another shard set?"));
  }
}

}  // namespace
}  // namespace halo::test
