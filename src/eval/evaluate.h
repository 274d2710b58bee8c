// `halo-clip eval`: a trained model on a manifest. Retrieval both ways (R@1/5/10, mean and
// median rank), zero-shot classification from class names and prompt templates (top-1, top-5,
// ECE with its reliability bins), when the manifest records which pairs were mismatched, how
// well the model's pair score and the embeddings' cosine similarity tell them apart, and with
// OOD sets, how well zero-shot classification says "I don't know" to their images (ood.h).
// Embeddings are computed in batches and similarities in row chunks, so memory stays bounded.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "eval/embed.h"
#include "eval/ood.h"

namespace halo::eval {

constexpr int kBootstrapResamples = 1000;

struct EvalOptions {
  std::string manifest;
  std::string classes;  // class names, one per line ("" -> classes.txt beside the manifest, if any)
  std::string templates;  // prompt templates with "{}", one per line ("" -> just "{}")
  std::string out_dir;    // results.json, pair_scores.tsv, reliability.tsv, examples.tsv
  // Out-of-distribution sets (name, manifest) whose images zero-shot classification should
  // tell from this manifest's (needs labels and class names; eval/ood.h).
  std::vector<std::pair<std::string, std::string>> ood;
  // With ood: a bank of negative captions beside the classes (the `negatives` scores of ood.h):
  // from a file (one per line) or the captions of a manifest or shard set; of these, the
  // negatives_count farthest from every class prompt.
  std::string negatives, negatives_from;
  int64_t negatives_count = 10000;
  EmbedOptions embed;
  int64_t chunk_rows = 1024;  // query rows per similarity block
  int64_t examples = 8;       // retrieval examples kept for the report
};

struct DetectionScores {
  std::string name;  // "abstain" (HALO), "infonce", "siglip", "cosine" or "in-context"
  double auroc = 0, fpr95 = 0;
  double mean_clean = 0, mean_mismatched = 0, median_clean = 0, median_mismatched = 0;
};

struct ClassificationResult {
  int64_t classes = 0, count = 0;
  double top1 = 0, top5 = 0;
  Calibration calibration;
  double mean_abstain = -1;  // HALO: mean probability of the abstain class; else -1
};

struct RetrievalExample {
  std::string image, caption;                       // the query pair
  std::vector<std::pair<std::string, double>> top;  // best captions with their logits
  int64_t rank = 0;                                 // rank of the true caption
};

struct NegativeBank {
  std::string source;
  int64_t candidates = 0, size = 0;   // after removing repeats and class names; kept
  std::vector<std::string> examples;  // the first few kept
};

struct EvalResult {
  std::string checkpoint, manifest, loss;
  int64_t step = 0, pairs = 0, skipped = 0, retrieval_pairs = 0;
  int64_t unlabelled = 0;  // readable pairs without a label, left out of zero-shot and OOD
  std::optional<NegativeBank> negatives;
  RankSummary image_to_text, text_to_image;
  std::optional<ClassificationResult> classification;
  std::vector<DetectionScores>
      detection;  // model score, cosine, in-context; empty without ground truth
  // AUROC of the model's score and of the in-context score minus the cosine's, with a paired
  // bootstrap interval (95%, kBootstrapResamples resamples of the pairs); with ground truth only.
  std::vector<std::pair<std::string, Interval>> versus_cosine;
  std::vector<RetrievalExample> examples;
  std::vector<OodDetection> ood;          // with options.ood: each set against each score
  std::vector<SelectiveScore> selective;  // with options.ood: this manifest's images by each score
  double seconds = 0;
};

EvalResult evaluate(train::TrainedModel& model, const EvalOptions& options);

// A pair score in the context of the whole set: 1 - (p_i2t + p_t2i) / 2, with p_i2t the
// probability of pair i's own caption in the softmax of its image over every caption of the set
// (plus HALO's abstain logit when the loss has one), and p_t2i the same the other way. Unlike
// the pair-alone scores, it asks whether another caption of the set fits the image better.
// Rows in chunks of `chunk_rows`; returns one value per pair.
std::vector<double> in_context_mismatch_score(loss::ContrastiveLoss& loss,
                                              const torch::Tensor& image, const torch::Tensor& text,
                                              int64_t chunk_rows);
// Its log-odds, log(s / (1 - s)), float64 and computed in log space (from the two directions'
// log-probabilities), so that pairs whose s rounds to 1 or 0 keep their order.
std::vector<double> in_context_log_odds(loss::ContrastiveLoss& loss, const torch::Tensor& image,
                                        const torch::Tensor& text, int64_t chunk_rows);

// The printed table and the JSON file.
std::string format_eval_table(const EvalResult& result);
std::string eval_json(const EvalResult& result);

}  // namespace halo::eval
