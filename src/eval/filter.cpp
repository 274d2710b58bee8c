// Streaming filter (see filter.h). Pass 1 reads the manifest in chunks and scores them; the
// threshold is then fixed (a probability, or the quantile for --keep-fraction); pass 2 reads the
// manifest again and writes each row to the kept or rejected manifest.
#include "eval/filter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "common/metrics.h"
#include "data/image.h"
#include "data/manifest.h"
#include "data/pair_set.h"
#include "data/shard_pattern.h"
#include "eval/evaluate.h"
#include "eval/score_file.h"
#include "loss/contrastive_loss.h"
#include "loss/row_scores.h"

namespace fs = std::filesystem;

namespace halo::eval {

// For each fold, the model that did not train on it (one model: fold 0 of 1).
std::vector<train::TrainedModel*> models_by_fold(std::vector<train::TrainedModel>& models) {
  HALO_CHECK(!models.empty(), "filter: no model");
  const auto k = static_cast<int64_t>(models.size());
  if (k == 1) {
    const auto& d = models[0].config.data;
    if (d.folds > 0) {
      std::cerr << "filter: warning: " << models[0].checkpoint << " left out fold "
                << d.holdout_fold << " of " << d.folds << " but scores every pair (give all "
                << d.folds << " checkpoints to cross-score)\n";
    }
    return {&models[0]};
  }
  std::vector<train::TrainedModel*> by_fold(static_cast<size_t>(k), nullptr);
  for (auto& m : models) {
    const auto& d = m.config.data;
    HALO_CHECK(d.folds == k, "cross-scoring with ", k,
               " checkpoints needs models trained with data.folds=", k, "; ", m.checkpoint,
               " has data.folds=", d.folds);
    HALO_CHECK(by_fold[static_cast<size_t>(d.holdout_fold)] == nullptr,
               "two checkpoints left out fold ", d.holdout_fold, " (", m.checkpoint, ")");
    by_fold[static_cast<size_t>(d.holdout_fold)] = &m;
  }
  return by_fold;
}

namespace {

std::string join_fields(const std::vector<std::string>& fields, char separator) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += separator;
    const std::string& f = fields[i];
    if (f.find(separator) != std::string::npos || f.find('"') != std::string::npos) {
      std::string quoted = "\"";
      for (char c : f) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += quoted + "\"";
    } else {
      out += f;
    }
  }
  return out;
}

// Why an image the loader could not read failed (its decoder's message).
std::string unreadable_reason(const std::string& path) {
  try {
    data::decode_image(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "image could not be read";
}

// Rows of the in-context score's softmax made at a time: memory kInContextRowBlock x chunk.
constexpr int64_t kInContextRowBlock = 1024;

struct Scored {
  int64_t line;
  double score;       // float64: the probability (or the score file's value)
  double log_odds;    // log(score / (1 - score)) computed in log space; NaN with a score file
  int8_t mismatched;  // -1: unknown
};

// A number written so that reading it back gives the same double (infinities as inf, -inf).
std::string exact_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return json_number(v);
}

// Pass 1's result: a score per readable pair, and the rows left out with the reason.
struct PassOne {
  std::vector<Scored> scored;
  std::map<int64_t, std::string> skipped;  // line -> reason
  std::map<std::string, int64_t> reasons;  // reason -> count
  void skip(const data::Manifest::SkippedRow& s) {
    skipped[s.line] = s.reason;
    ++reasons[s.reason];
  }
};

}  // namespace

void grade_rejections(FilterReport& r, const std::vector<double>& score,
                      const std::vector<int>& label) {
  if (r.mismatched < 0) return;
  r.precision = r.rejected
                    ? static_cast<double>(r.mismatched_rejected) / static_cast<double>(r.rejected)
                    : 0.0;
  r.recall = r.mismatched
                 ? static_cast<double>(r.mismatched_rejected) / static_cast<double>(r.mismatched)
                 : 0.0;
  if (r.mismatched > 0 && r.mismatched < static_cast<int64_t>(label.size())) {
    r.auroc = auroc(score, label);
    r.fpr_at_95_tpr = fpr_at_tpr(score, label, 0.95);
  }
}

ChunkScores score_chunk(train::TrainedModel& m, const std::string& score,
                        const torch::Tensor& image, const torch::Tensor& text) {
  // float64 and in log space: the log-odds keep ordering pairs whose probability rounds to 1.
  ChunkScores out;
  if (score == "cosine") {
    out.score =
        1.0 - torch::cosine_similarity(image.to(torch::kFloat64), text.to(torch::kFloat64), 1);
    out.log_odds = loss::cosine_log_odds(image, text);
  } else if (score == "in-context") {
    out.log_odds = loss::in_context_log_odds(*m.loss, image.to(m.device), text.to(m.device),
                                             kInContextRowBlock);
    out.score = torch::sigmoid(out.log_odds);
  } else {
    HALO_CHECK(score == "model", "internal: no pair score '", score, "'");
    out.log_odds = m.loss->mismatch_log_odds(image.to(m.device), text.to(m.device));
    out.score = torch::sigmoid(out.log_odds.to(torch::kFloat64));
  }
  out.score = out.score.to(torch::kCPU, torch::kFloat64).contiguous();
  out.log_odds = out.log_odds.to(torch::kCPU, torch::kFloat64).contiguous();
  return out;
}

std::vector<bool> keep_mask(const std::vector<double>& scores, std::optional<double> threshold,
                            std::optional<double> keep_fraction, double* chosen_threshold,
                            const std::vector<double>& rank_by, size_t* first_rejected) {
  HALO_CHECK(threshold.has_value() != keep_fraction.has_value(),
             "give exactly one of --threshold and --keep-fraction");
  std::vector<bool> keep(scores.size(), false);
  if (threshold) {
    HALO_CHECK(std::isfinite(*threshold), "--threshold must be a finite number, got ", *threshold);
    for (size_t i = 0; i < scores.size(); ++i) keep[i] = scores[i] < *threshold;
    if (chosen_threshold) *chosen_threshold = *threshold;
    if (first_rejected) *first_rejected = scores.size();
    return keep;
  }
  HALO_CHECK(*keep_fraction >= 0 && *keep_fraction <= 1, "--keep-fraction must be in [0, 1], got ",
             *keep_fraction);
  HALO_CHECK(rank_by.empty() || rank_by.size() == scores.size(), "internal: ", rank_by.size(),
             " ranking keys for ", scores.size(), " scores");
  const std::vector<double>& key = rank_by.empty() ? scores : rank_by;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
  const auto n_keep =
      static_cast<size_t>(std::llround(*keep_fraction * static_cast<double>(scores.size())));
  for (size_t k = 0; k < n_keep; ++k) keep[order[k]] = true;
  if (chosen_threshold)
    *chosen_threshold = n_keep < order.size() ? scores[order[n_keep]] : INFINITY;
  if (first_rejected) *first_rejected = n_keep < order.size() ? order[n_keep] : order.size();
  return keep;
}

namespace {

// Pass 1 with models: reads, decodes and scores the manifest chunk by chunk.
PassOne score_with_models(std::vector<train::TrainedModel>& models, const FilterOptions& o,
                          const data::ManifestOptions& mo,
                          std::chrono::steady_clock::time_point start) {
  const std::vector<train::TrainedModel*> scorer = models_by_fold(models);
  const auto folds = static_cast<int64_t>(scorer.size());
  data::ManifestReader reader(o.manifest, mo);
  PassOne one;
  std::vector<Scored>& scored = one.scored;
  EmbedOptions eo = o.embed;
  eo.skip_bad = true;
  eo.verbose = false;
  while (true) {
    auto chunk = std::make_shared<data::Manifest>();
    if (reader.read(*chunk, o.chunk_rows) == 0 && chunk->skipped.empty()) break;
    for (const auto& s : chunk->skipped) one.skip(s);
    if (chunk->size() == 0) continue;
    std::vector<bool> seen(static_cast<size_t>(chunk->size()), false);
    for (int64_t fold = 0; fold < folds; ++fold) {
      std::vector<int64_t> in_fold;
      for (int64_t i = 0; i < chunk->size(); ++i) {
        if (data::fold_of_line(chunk->lines[static_cast<size_t>(i)], folds) == fold)
          in_fold.push_back(i);
      }
      if (in_fold.empty()) continue;
      train::TrainedModel& m = *scorer[static_cast<size_t>(fold)];
      const PairEmbeddings e =
          embed_pairs(m,
                      *data::PairSet::of_manifest(
                          std::make_shared<data::Manifest>(data::subset(*chunk, in_fold))),
                      eo);
      if (e.rows.empty()) continue;
      const ChunkScores chunk_scores =
          score_chunk(m, o.score, e.image, e.text);  // in-context: this chunk and fold
      const double* score_data = chunk_scores.score.data_ptr<double>();
      const double* log_odds_data = chunk_scores.log_odds.data_ptr<double>();
      for (size_t i = 0; i < e.rows.size(); ++i) {
        const auto row = static_cast<size_t>(in_fold[static_cast<size_t>(e.rows[i])]);
        seen[row] = true;
        scored.push_back({chunk->lines[row], score_data[i], log_odds_data[i],
                          chunk->mismatched.empty() ? int8_t{-1} : chunk->mismatched[row]});
      }
    }
    for (size_t row = 0; row < seen.size(); ++row) {
      if (seen[row]) continue;
      one.skipped[chunk->lines[row]] = "unreadable image: " + unreadable_reason(chunk->images[row]);
      ++one.reasons["unreadable image"];
    }
    if (o.verbose) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << "  scored " << scored.size() << " pairs (" << one.skipped.size() << " skipped), "
                << static_cast<int64_t>(static_cast<double>(scored.size()) / std::max(s, 1e-9))
                << " pairs/s" << std::endl;
    }
  }
  return one;
}

// Pass 1 with a score file: each readable row of the manifest takes the file's score for its
// line (no image is decoded); the file must hold exactly the manifest's rows.
PassOne score_from_file(const FilterOptions& o, const data::ManifestOptions& mo) {
  const ScoreFile file(o.scores_file, o.score_column);
  data::ManifestReader reader(o.manifest, mo);
  PassOne one;
  std::set<int64_t> used, skipped;
  while (true) {
    data::Manifest chunk;
    if (reader.read(chunk, o.chunk_rows) == 0 && chunk.skipped.empty()) break;
    for (const auto& s : chunk.skipped) {
      one.skip(s);
      skipped.insert(s.line);
    }
    for (int64_t i = 0; i < chunk.size(); ++i) {
      const auto row = static_cast<size_t>(i);
      const int64_t line = chunk.lines[row];
      used.insert(line);
      if (file.has_no_score(line)) {  // e.g. a pair the scoring run never trained on
        const std::string reason = "no score in " + file.path() + " (never trained on)";
        one.skipped[line] = reason;
        ++one.reasons[reason];
        continue;
      }
      one.scored.push_back({line, file.score(line, o.manifest), std::nan(""),
                            chunk.mismatched.empty() ? int8_t{-1} : chunk.mismatched[row]});
    }
  }
  file.check_all_used(used, skipped, o.manifest);
  if (o.verbose) {
    std::cout << "  read " << one.scored.size() << " scores from " << file.path() << " (column "
              << file.column() << ")" << std::endl;
  }
  return one;
}

}  // namespace

void check_filter_options(const FilterOptions& o) {
  HALO_CHECK(o.threshold.has_value() != o.keep_fraction.has_value(),
             "give exactly one of --threshold and --keep-fraction");
  if (o.threshold)
    HALO_CHECK(std::isfinite(*o.threshold), "--threshold must be a finite number, got ",
               *o.threshold);
  if (o.keep_fraction) {
    HALO_CHECK(*o.keep_fraction >= 0 && *o.keep_fraction <= 1,
               "--keep-fraction must be in [0, 1], got ", *o.keep_fraction);
  }
  HALO_CHECK(o.score == "model" || o.score == "cosine" || o.score == "in-context",
             "--score must be model, cosine or in-context, got '", o.score, "'");
  HALO_CHECK(o.scores_file.empty() || !o.score_column.empty(),
             "--scores-file needs --score-column");
  if (!o.scores_file.empty()) check_input_file(o.scores_file, "--scores-file");
  HALO_CHECK(o.chunk_rows >= 1, "--chunk must be >= 1, got ", o.chunk_rows);
  HALO_CHECK(o.embed.batch_size >= 1 && o.embed.workers >= 1,
             "--batch-size and --workers must be >= 1");
  HALO_CHECK(!o.out_dir.empty(), "--out must name a folder");
  data::check_pair_source(o.manifest, "manifest");
}

FilterReport filter_manifest(std::vector<train::TrainedModel>& models, const FilterOptions& o) {
  if (data::is_shard_source(o.manifest)) return filter_shards(models, o);
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  check_filter_options(o);
  fs::create_directories(o.out_dir);
  const std::string ext = fs::path(o.manifest).extension().string().empty()
                              ? ".tsv"
                              : fs::path(o.manifest).extension().string();
  FilterReport r;
  r.kept_path = (fs::path(o.out_dir) / ("kept" + ext)).string();
  r.rejected_path = (fs::path(o.out_dir) / ("rejected" + ext)).string();
  r.scores_path = (fs::path(o.out_dir) / "scores.tsv").string();
  r.skipped_path = (fs::path(o.out_dir) / "skipped.tsv").string();
  for (const auto& p : {r.kept_path, r.rejected_path, r.scores_path, r.skipped_path}) {
    HALO_CHECK(!fs::exists(p) || !fs::equivalent(p, o.manifest), "output '", p,
               "' would overwrite the input manifest");
  }

  // ---- pass 1: score every readable pair ----------------------------------------------------
  data::ManifestOptions mo = data::DataConfig{}.manifest_options();  // the default columns
  if (o.scores_file.empty()) {
    HALO_CHECK(!models.empty(), "filter: give a checkpoint or a score file");
    mo = models[0].config.data.manifest_options();
  } else {
    HALO_CHECK(models.empty(), "filter: give either checkpoints or a score file, not both");
  }
  mo.skip_bad = true;
  PassOne one =
      o.scores_file.empty() ? score_with_models(models, o, mo, start) : score_from_file(o, mo);
  std::vector<Scored>& scored = one.scored;
  const std::map<int64_t, std::string>& skipped = one.skipped;
  HALO_CHECK(!scored.empty(), "no pair of manifest '", o.manifest, "' could be scored");
  std::sort(scored.begin(), scored.end(),
            [](const Scored& a, const Scored& b) { return a.line < b.line; });

  // --keep-fraction ranks by the log-odds (a score file: by its values).
  std::vector<double> values, rank_by;
  for (const auto& s : scored) values.push_back(s.score);
  if (o.scores_file.empty()) {
    for (const auto& s : scored) rank_by.push_back(s.log_odds);
  }
  size_t first_rejected = scored.size();
  const std::vector<bool> keep =
      keep_mask(values, o.threshold, o.keep_fraction, &r.threshold, rank_by, &first_rejected);
  if (first_rejected < scored.size() && !rank_by.empty())
    r.threshold_log_odds = rank_by[first_rejected];

  // ---- pass 2: copy each row to kept or rejected, image paths relative to the output folder --
  AtomicFile kept(r.kept_path), rejected(r.rejected_path), scores_file(r.scores_path),
      skipped_file(r.skipped_path);
  std::ifstream in(o.manifest);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  kept.out() << line << '\n';
  rejected.out() << line << '\n';
  scores_file.out() << "line\t" << mo.image_key << "\tscore\tkept\tmismatched\tlog_odds\n";
  skipped_file.out() << "line\treason\n";
  const fs::path manifest_dir = fs::absolute(o.manifest).parent_path();
  const fs::path out_dir = fs::absolute(o.out_dir);
  const auto image_col = static_cast<size_t>(data::ManifestReader(o.manifest, mo).image_column());
  size_t next = 0;
  for (int64_t line_no = 2; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (auto it = skipped.find(line_no); it != skipped.end()) {
      skipped_file.out() << line_no << '\t' << it->second << '\n';
      continue;
    }
    if (next >= scored.size() || scored[next].line != line_no) continue;  // a blank line
    std::vector<std::string> fields = data::split_fields(line, mo.separator);
    fs::path image(fields[image_col]);
    if (!image.is_absolute())
      fields[image_col] = fs::relative(manifest_dir / image, out_dir).lexically_normal().string();
    const bool k = keep[next];
    (k ? kept : rejected).out() << join_fields(fields, mo.separator) << '\n';
    const Scored& s = scored[next];
    scores_file.out() << line_no << '\t' << fields[image_col] << '\t' << json_number(s.score)
                      << '\t' << (k ? 1 : 0) << '\t'
                      << (s.mismatched < 0 ? std::string("-") : std::to_string(s.mismatched))
                      << '\t'
                      << (std::isnan(s.log_odds) ? std::string("-") : exact_number(s.log_odds))
                      << '\n';
    (k ? r.kept : r.rejected) += 1;
    if (s.mismatched >= 0) {
      r.mismatched = std::max<int64_t>(r.mismatched, 0) + s.mismatched;
      r.mismatched_rejected += (!k && s.mismatched == 1) ? 1 : 0;
    }
    ++next;
  }
  HALO_CHECK(next == scored.size(), "manifest '", o.manifest,
             "' changed while it was being filtered");
  kept.commit();
  rejected.commit();
  scores_file.commit();
  skipped_file.commit();

  r.scored = static_cast<int64_t>(scored.size());
  r.skipped = static_cast<int64_t>(skipped.size());
  r.skipped_reasons.assign(one.reasons.begin(), one.reasons.end());
  if (r.mismatched >= 0) {
    std::vector<double> score;
    std::vector<int> label;
    for (const auto& s : scored) {
      if (s.mismatched < 0) continue;
      score.push_back(std::isnan(s.log_odds) ? s.score : s.log_odds);  // the ranking, untied
      label.push_back(s.mismatched);
    }
    grade_rejections(r, score, label);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  halo::write_file_atomically((fs::path(o.out_dir) / "summary.txt").string(),
                              format_filter_report(r));
  return r;
}

std::string format_filter_report(const FilterReport& r) {
  std::ostringstream o;
  char line[256];
  // The threshold with every digit it needs to reproduce the cut (the shortest round trip).
  const std::string cut =
      "score >= " + exact_number(r.threshold) +
      (std::isnan(r.threshold_log_odds) ? std::string()
                                        : ", log-odds >= " + exact_number(r.threshold_log_odds));
  std::snprintf(line, sizeof line,
                "scored %lld pairs in %.1f s: kept %lld, rejected %lld (%s), skipped %lld\n",
                static_cast<long long>(r.scored), r.seconds, static_cast<long long>(r.kept),
                static_cast<long long>(r.rejected), cut.c_str(), static_cast<long long>(r.skipped));
  o << line;
  for (const auto& [reason, count] : r.skipped_reasons)
    o << "  skipped " << count << ": " << reason << "\n";
  if (r.mismatched >= 0) {
    std::snprintf(line, sizeof line,
                  "injected mismatches: %lld; rejected %lld of them: precision %.3f, recall %.3f\n",
                  static_cast<long long>(r.mismatched),
                  static_cast<long long>(r.mismatched_rejected), r.precision, r.recall);
    o << line;
    std::snprintf(line, sizeof line,
                  "score as a mismatch detector: AUROC %.3f, FPR at 95%% TPR %.3f\n", r.auroc,
                  r.fpr_at_95_tpr);
    o << line;
  }
  o << "kept:     " << r.kept_path << "\nrejected: " << r.rejected_path
    << "\nscores:   " << r.scores_path << "\nskipped:  " << r.skipped_path << "\n";
  if (!r.kept_keys_path.empty()) o << "keys:     " << r.kept_keys_path << "\n";
  if (!r.kept_uids_path.empty()) o << "uids:     " << r.kept_uids_path << "\n";
  return o.str();
}

}  // namespace halo::eval
