// `halo-clip classify` end to end: read the manifests, build the ResNet and the head, train,
// score the test split and each OOD set, and write results.json, results.txt and scores.tsv
// (every image's prediction and OOD score) into the output folder (each through a temporary
// file and a rename).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "classify/classify_eval.h"
#include "classify/classify_options.h"
#include "classify/classify_train.h"
#include "data/manifest.h"

namespace halo::classify {

struct OodResult {
  std::string name, manifest;
  OodMetrics metrics;
};

// One scored set, image by image, for scores.tsv ("test" or an OOD set's name).
struct ScoredSet {
  std::string name;
  std::shared_ptr<const data::Manifest> manifest;
  ScoredImages scores;
};

struct ClassifyResult {
  ClassifyOptions options;
  int64_t classes = 0, parameters = 0;
  TrainSummary train;
  TestMetrics test;
  std::vector<OodResult> ood;
  std::vector<ScoredSet> scored;  // the test split first, then each OOD set
  double eval_seconds = 0;
  double abstain_bias = 0, gamma = 0;  // HALO only
};

ClassifyResult run_classify(const ClassifyOptions& options);

// The printed table (also results.txt) and results.json.
std::string format_results(const ClassifyResult& result);
std::string results_json(const ClassifyResult& result);
// One row per scored image: set, image_path, label ("-" when unknown), predicted, confidence,
// ood_score.
std::string scores_tsv(const ClassifyResult& result);
// Writes the three into result.options.out_dir (created).
void write_results(const ClassifyResult& result);

}  // namespace halo::classify
