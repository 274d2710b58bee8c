// Filtering WebDataset shards (see filter.h, filter_shards): pass 1 scores every sample with a
// model (or the model of its fold when cross-scoring) through the shard loader, chunk by chunk
// (score_chunk, as for manifests), or takes it from a score file; the cut is
// fixed; pass 2 reads the shards again and copies each sample unchanged into the kept or
// rejected shard of the same name.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <set>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "common/metrics.h"
#include "data/image.h"
#include "data/pair_set.h"
#include "data/shard_pattern.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"
#include "eval/filter.h"
#include "eval/score_file.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

// UTF-8 to code points (an invalid byte stands for itself).
std::vector<uint32_t> code_points(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 1;
    if (n == 1 || i + n > s.size()) {
      out.push_back(c);
      ++i;
      continue;
    }
    uint32_t cp = c & (0xFFu >> (n + 1));
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
    out.push_back(cp);
    i += n;
  }
  return out;
}

// Why a sample that the loader dropped could not be scored.
std::string unscored_reason(const data::ShardSample& s, int64_t size) {
  if (!s.problem.empty()) return s.problem;
  if (s.index_in_shard >= size) return "beyond the shard's size in sizes.json";
  try {
    data::decode_image_bytes(s.image_bytes(), s.where());
  } catch (const halo::Error& e) {
    return e.message();
  }
  return "could not be scored";
}

}  // namespace

std::string npy_of_strings(const std::vector<std::string>& utf8) {
  std::vector<std::vector<uint32_t>> strings;
  size_t width = 1;
  for (const auto& s : utf8) {
    strings.push_back(code_points(s));
    width = std::max(width, strings.back().size());
  }
  std::string header = "{'descr': '<U" + std::to_string(width) +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(strings.size()) +
                       ",), }";
  const size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, newline
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  for (const auto& s : strings) {
    for (size_t i = 0; i < width; ++i) {
      const uint32_t cp = i < s.size() ? s[i] : 0;
      for (int b = 0; b < 4; ++b)
        out += static_cast<char>((cp >> (8 * b)) & 0xFF);  // little-endian UTF-32
    }
  }
  return out;
}

FilterReport filter_shards(std::vector<train::TrainedModel>& models, const FilterOptions& o) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  check_filter_options(o);
  const bool from_file = !o.scores_file.empty();
  HALO_CHECK(from_file != !models.empty(),
             from_file ? "filter: give either checkpoints or a score file, not both"
                       : "filter: give a checkpoint or a score file");
  const auto pairs = data::PairSet::open(
      o.manifest, {},
      from_file ? data::PairSet::ShardIndex::keys : data::PairSet::ShardIndex::none);
  const std::shared_ptr<const data::ShardSet> set = pairs->shards();
  std::set<std::string> names;
  for (const auto& shard : set->shards) {
    HALO_CHECK(names.insert(fs::path(shard).filename().string()).second, "shard name '",
               fs::path(shard).filename().string(), "' appears twice in '", o.manifest,
               "': kept and rejected shards keep the input's names, which must differ");
  }
  const fs::path out(o.out_dir), kept_dir = out / "kept", rejected_dir = out / "rejected";
  fs::create_directories(kept_dir);
  fs::create_directories(rejected_dir);
  for (const auto& shard : set->shards) {
    for (const auto& dir : {kept_dir, rejected_dir}) {
      const fs::path target = dir / fs::path(shard).filename();
      HALO_CHECK(!fs::exists(target) || !fs::equivalent(target, shard), "output '", target.string(),
                 "' would overwrite an input shard");
    }
  }
  FilterReport r;
  r.kept_path = data::shard_pattern_in(o.manifest, kept_dir);
  r.rejected_path = data::shard_pattern_in(o.manifest, rejected_dir);
  r.scores_path = (out / "scores.tsv").string();
  r.skipped_path = (out / "skipped.tsv").string();
  r.kept_keys_path = (out / "kept_keys.txt").string();

  // ---- pass 1: a score per usable sample, by shard set index ---------------------------------
  const double none = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> score(static_cast<size_t>(set->total), none),
      log_odds(static_cast<size_t>(set->total), none);
  std::map<int64_t, std::string> no_score;  // rows a score file has "-" for, with the reason
  int64_t scored_count = 0;
  if (from_file) {
    const ScoreFile file(o.scores_file, o.score_column);
    const data::Manifest& rows = pairs->rows();
    std::set<int64_t> used;
    for (int64_t i = 0; i < set->total; ++i) {
      const int64_t line = rows.lines[static_cast<size_t>(i)];
      const std::string& key = rows.images[static_cast<size_t>(i)];
      const std::string named = file.image_of(line);
      HALO_CHECK(named.empty() || named == key, o.scores_file, ": line ", line, " names '", named,
                 "' but sample ", i, " of '", o.manifest, "' is '", key,
                 "' (was the file written for another shard set?)");
      used.insert(line);
      if (file.has_no_score(line)) {
        no_score[i] = "no score in " + file.path() + " (never trained on)";
        continue;
      }
      score[static_cast<size_t>(i)] = file.score(line, o.manifest);
      ++scored_count;
    }
    file.check_all_used(used, {}, o.manifest);
    if (o.verbose) {
      std::cout << "  read " << scored_count << " scores from " << file.path() << " (column "
                << file.column() << ")" << std::endl;
    }
  } else {
    const std::vector<train::TrainedModel*> scorer = models_by_fold(models);
    const auto folds = static_cast<int64_t>(scorer.size());
    HALO_CHECK(folds == 1 || static_cast<int64_t>(set->shards.size()) >= folds, "cross-scoring ",
               o.manifest, " with ", folds, " checkpoints needs at least ", folds,
               " shards (shard i is in fold i mod ", folds, "); it has ", set->shards.size());
    // The folds are whole shards by position: each model must have trained on shards of the
    // same names in the same order (another folder is fine: e.g. a noisy copy of the set).
    std::vector<std::string> names_in_order;
    for (const auto& shard : set->shards) names_in_order.push_back(fs::path(shard).filename());
    for (const train::TrainedModel* fold_model : scorer) {
      if (folds == 1) break;
      const std::string& trained = fold_model->config.data.train_manifest;
      HALO_CHECK(data::is_shard_source(trained), fold_model->checkpoint,
                 " left out a fold of the rows of manifest '", trained,
                 "'; cross-scoring shards needs models trained with data.folds on shards");
      std::vector<std::string> trained_names;
      for (const auto& shard : data::expand_shard_pattern(trained))
        trained_names.push_back(fs::path(shard).filename());
      HALO_CHECK(trained_names == names_in_order, fold_model->checkpoint, " trained on '", trained,
                 "', whose shards are not those of '", o.manifest,
                 "' in the same order: its folds would be other shards");
    }
    EmbedOptions eo = o.embed;
    eo.skip_bad = true;
    for (int64_t fold = 0; fold < folds; ++fold) {
      train::TrainedModel& m = *scorer[static_cast<size_t>(fold)];
      const auto part = folds == 1 ? pairs
                                   : pairs->shard_fold(folds, fold, /*complement=*/false,
                                                       data::PairSet::ShardIndex::none);
      const std::vector<int64_t>& whole = part->whole_set_rows();
      // Batches are gathered into chunks of --chunk pairs and each chunk is scored as the
      // manifest path scores its chunks (score_chunk): the in-context score's bank is the chunk
      // (of one fold when cross-scoring).
      std::vector<torch::Tensor> images, texts, rows;
      int64_t pending = 0;
      auto score_pending = [&] {
        if (pending == 0) return;
        const ChunkScores chunk = score_chunk(m, o.score, torch::cat(images), torch::cat(texts));
        const torch::Tensor chunk_rows = torch::cat(rows).contiguous();
        const auto* row = chunk_rows.data_ptr<int64_t>();
        for (int64_t i = 0; i < chunk_rows.numel(); ++i) {
          const auto at =
              static_cast<size_t>(whole.empty() ? row[i] : whole[static_cast<size_t>(row[i])]);
          score[at] = chunk.score.data_ptr<double>()[i];
          log_odds[at] = chunk.log_odds.data_ptr<double>()[i];
        }
        scored_count += pending;
        images.clear(), texts.clear(), rows.clear();
        pending = 0;
        if (o.verbose) {
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::cout << "  scored " << scored_count << " of " << set->total << " samples"
                    << (folds > 1 ? " (fold " + std::to_string(fold) + " of " +
                                        std::to_string(folds) + ")"
                                  : std::string())
                    << ", "
                    << static_cast<int64_t>(static_cast<double>(scored_count) / std::max(s, 1e-9))
                    << " pairs/s" << std::endl;
        }
      };
      embed_pair_batches(
          m, *part, eo,
          [&](const data::Batch& batch, const torch::Tensor& image, const torch::Tensor& text) {
            for (int64_t from = 0; from < batch.rows.numel();) {
              const int64_t take = std::min(batch.rows.numel() - from, o.chunk_rows - pending);
              images.push_back(image.narrow(0, from, take));
              texts.push_back(text.narrow(0, from, take));
              rows.push_back(batch.rows.narrow(0, from, take));
              pending += take;
              from += take;
              if (pending == o.chunk_rows) score_pending();
            }
          });
      score_pending();
    }
  }
  HALO_CHECK(scored_count > 0, "no sample of '", o.manifest, "' could be scored");
  std::vector<double> values, rank_by;
  std::vector<int64_t> scored_rows;
  for (int64_t i = 0; i < set->total; ++i) {
    if (std::isnan(score[static_cast<size_t>(i)])) continue;
    scored_rows.push_back(i);
    values.push_back(score[static_cast<size_t>(i)]);
    rank_by.push_back(from_file ? score[static_cast<size_t>(i)] : log_odds[static_cast<size_t>(i)]);
  }
  size_t first_rejected = values.size();
  const std::vector<bool> keep_scored =
      keep_mask(values, o.threshold, o.keep_fraction, &r.threshold, rank_by, &first_rejected);
  if (first_rejected < values.size()) r.threshold_log_odds = rank_by[first_rejected];
  std::vector<bool> keep(static_cast<size_t>(set->total), false);
  for (size_t k = 0; k < scored_rows.size(); ++k)
    keep[static_cast<size_t>(scored_rows[k])] = keep_scored[k];

  // ---- pass 2: every sample, unchanged, to the kept or the rejected shard of its name --------
  AtomicFile scores_file(r.scores_path), skipped_file(r.skipped_path), keys_file(r.kept_keys_path);
  scores_file.out() << "key\tshard\tscore\tkept\tmismatched\tlog_odds\n";
  skipped_file.out() << "key\tshard\treason\n";
  std::vector<std::pair<std::string, int64_t>> kept_sizes, rejected_sizes;
  std::vector<std::string> uids;
  bool all_uids = true;
  std::map<std::string, int64_t> reasons;
  std::vector<double> detector_scores;
  std::vector<int> detector_labels;
  for (size_t s = 0; s < set->shards.size(); ++s) {
    const std::string name = fs::path(set->shards[s]).filename().string();
    data::ShardWriter kept((kept_dir / name).string()), rejected((rejected_dir / name).string());
    data::ShardReader reader(set->shards[s]);
    data::ShardSample sample;
    while (reader.next(sample)) {
      const int64_t row = set->offsets[s] + sample.index_in_shard;
      const bool in_set = sample.index_in_shard < set->sizes[s];
      const auto r_index = static_cast<size_t>(row);
      const bool scored = in_set && !std::isnan(score[r_index]);
      const bool k = scored && keep[r_index];
      (k ? kept : rejected).add(sample);
      if (!scored) {
        const auto why = no_score.find(row);
        const std::string reason =
            why != no_score.end() ? why->second : unscored_reason(sample, set->sizes[s]);
        skipped_file.out() << data::tsv_field(sample.key) << '\t' << name << '\t'
                           << data::tsv_field(reason) << '\n';
        ++reasons[reason];
        ++r.skipped;
        continue;
      }
      scores_file.out() << data::tsv_field(sample.key) << '\t' << name << '\t'
                        << json_number(score[r_index]) << '\t' << (k ? 1 : 0) << '\t'
                        << (sample.mismatched < 0 ? std::string("-")
                                                  : std::to_string(sample.mismatched))
                        << '\t' << json_number(log_odds[r_index]) << '\n';
      ++r.scored;
      (k ? r.kept : r.rejected) += 1;
      if (sample.mismatched >= 0) {
        r.mismatched = std::max<int64_t>(r.mismatched, 0) + sample.mismatched;
        r.mismatched_rejected += (!k && sample.mismatched == 1) ? 1 : 0;
        // A score file gives no log-odds: its score ranks (the same order).
        detector_scores.push_back(from_file ? score[r_index] : log_odds[r_index]);
        detector_labels.push_back(sample.mismatched);
      }
      if (k) {
        keys_file.out() << sample.key << '\n';
        all_uids = all_uids && !sample.uid.empty();
        if (all_uids) uids.push_back(sample.uid);
      }
    }
    if (!reader.error().empty()) {
      std::cerr << "filter: warning: " << reader.error() << "\n";
      ++reasons["truncated or corrupt shard"];
    }
    kept_sizes.emplace_back(name, kept.samples());
    rejected_sizes.emplace_back(name, rejected.samples());
    kept.finish();
    rejected.finish();
  }
  data::write_shard_sizes(kept_dir.string(), kept_sizes);
  data::write_shard_sizes(rejected_dir.string(), rejected_sizes);
  scores_file.commit();
  skipped_file.commit();
  keys_file.commit();
  if (all_uids && r.kept > 0) {
    r.kept_uids_path = (out / "kept_uids.npy").string();
    write_file_atomically(r.kept_uids_path, npy_of_strings(uids));
  }
  r.skipped_reasons.assign(reasons.begin(), reasons.end());
  grade_rejections(r, detector_scores, detector_labels);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomically((out / "summary.txt").string(), format_filter_report(r));
  return r;
}

}  // namespace halo::eval
