// `halo-clip filter`: scores every pair of a manifest with a trained model (HALO: the pair's
// abstention probability), or takes precomputed scores from a file, and splits it into kept
// and rejected manifests, plus a scores file and a list of skipped rows with the reason. The
// manifest streams through in chunks: memory holds the current chunk and 32 bytes per pair
// (with a score file, also that file's rows, held in a map by manifest line). The input is
// never modified; outputs appear only when complete (written under temporary names, then
// renamed).
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eval/embed.h"

namespace halo::eval {

struct FilterOptions {
  std::string manifest;
  std::string out_dir;                  // kept.EXT, rejected.EXT, scores.tsv, skipped.tsv
  std::optional<double> threshold;      // reject pairs whose score is >= this
  std::optional<double> keep_fraction;  // or keep this share of pairs, those with the lowest scores
  // model (HALO: abstention probability) | cosine (1 - cos) | in-context (evaluate.h: the pair
  // against the other pairs of its chunk, so --chunk is the bank of candidates)
  std::string score = "model";
  // Or precomputed scores (no model): column `score_column` of this file, joined by manifest
  // line (e.g. RUN_DIR/pair_dynamics.tsv, column cosine_mean; eval/score_file.h).
  std::string scores_file, score_column;
  int64_t chunk_rows = 8192;  // pairs scored at a time, manifest or shards (in-context: the bank)
  EmbedOptions embed;
  bool verbose = true;
};

struct FilterReport {
  int64_t scored = 0, kept = 0, rejected = 0, skipped = 0;
  std::vector<std::pair<std::string, int64_t>> skipped_reasons;  // reason, count
  double threshold = 0;  // the score from which pairs were rejected
  // With --keep-fraction and a model: the log-odds of the first rejected pair (pairs were ranked
  // by it); NaN otherwise.
  double threshold_log_odds = std::nan("");
  // With a `mismatched` column: how many injected mismatches were rejected.
  int64_t mismatched = -1, mismatched_rejected = 0;
  double precision = 0, recall = 0;
  double auroc = 0,
         fpr_at_95_tpr = 0;  // of the score for telling mismatched pairs (with the column)
  std::string kept_path, rejected_path, scores_path, skipped_path;
  std::string kept_keys_path,
      kept_uids_path;  // shards: the kept keys (and uids, when the json has them)
  double seconds = 0;
};

// Throws halo::Error naming the flag for options that cannot work (NaN or infinite threshold,
// keep fraction outside [0, 1], a manifest that is missing or a directory, ...). Called before
// any model is loaded or pair scored.
void check_filter_options(const FilterOptions& options);

// One model scores every pair. With shards (options.manifest a .tar pattern), see
// filter_shards. Cross-scoring: k models trained with data.folds = k, one per
// data.holdout_fold, each scoring the pairs of the fold it never saw. With
// options.scores_file, `models` must be empty and the manifest's default columns are read.
FilterReport filter_manifest(std::vector<train::TrainedModel>& models,
                             const FilterOptions& options);
inline FilterReport filter_manifest(train::TrainedModel& model, const FilterOptions& options) {
  std::vector<train::TrainedModel> one{model};
  return filter_manifest(one, options);
}
std::string format_filter_report(const FilterReport& report);

// Filtering shards (filter_shards.cpp): a model scores every sample (pass 1, one chunk of
// --chunk samples in memory, scored by score_chunk as the manifest path scores its chunks); pass 2
// copies each sample, its members' names and bytes unchanged, into OUT/kept/NAME.tar or
// OUT/rejected/NAME.tar (NAME: its input shard's file name; samples that cannot be scored go to
// rejected and are listed in skipped.tsv), each folder with its sizes.json, so kept and rejected
// together are the input. Also scores.tsv (key, shard, score, kept, mismatched, log-odds),
// kept_keys.txt (one key per line) and, when every kept sample's json has a `uid`, kept_uids.npy (a
// NumPy array of those strings, DataComp's subset list).
// Cross-scoring splits the shards by whole shards (shard i, in pattern order, is in fold
// i mod k: data.folds on shards), each scored by the checkpoint that left its fold out. With
// options.scores_file (models empty), each sample takes the file's score for line = its index in
// the set + 2 (a run's pair_dynamics.tsv on the same pattern), its key checked against the file's
// image_path column.
FilterReport filter_shards(std::vector<train::TrainedModel>& models, const FilterOptions& options);

// For each fold, the model that did not train on it (one model: fold 0 of 1).
std::vector<train::TrainedModel*> models_by_fold(std::vector<train::TrainedModel>& models);

// With ground truth (r.mismatched >= 0, r.rejected and r.mismatched_rejected counted): the
// precision and recall of the rejections, and the AUROC and FPR@95 of `score` (the ranking
// each pair was cut by) against `label` (1: mismatched), both paths' shared grading.
void grade_rejections(FilterReport& r, const std::vector<double>& score,
                      const std::vector<int>& label);

// One chunk's pair scores by --score, float64 on the CPU: `score` (model: the loss's mismatch
// probability; cosine: 1 - cos; in-context: the pair against the chunk's other pairs) and its
// log-odds, which keep ordering pairs whose score rounds to 0 or 1. Both filter paths, manifest
// and shards, score through it, so a score means the same for either.
struct ChunkScores {
  torch::Tensor score, log_odds;
};
ChunkScores score_chunk(train::TrainedModel& model, const std::string& score,
                        const torch::Tensor& image, const torch::Tensor& text);

// A NumPy .npy file (format 1.0) holding a 1-d array of unicode strings ('<U' + longest).
std::string npy_of_strings(const std::vector<std::string>& utf8);

// The pairs to keep given scores: score < threshold, or the round(f * n) lowest by `rank_by`
// (the log-odds; empty: by the scores), ties broken by position. `first_rejected`: the index
// of the lowest-ranked rejected pair under keep_fraction (scores.size() when none or with a
// threshold). Exposed for tests.
std::vector<bool> keep_mask(const std::vector<double>& scores, std::optional<double> threshold,
                            std::optional<double> keep_fraction, double* chosen_threshold,
                            const std::vector<double>& rank_by = {},
                            size_t* first_rejected = nullptr);

}  // namespace halo::eval
