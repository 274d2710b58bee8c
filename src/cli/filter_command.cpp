// halo-clip filter: splits a manifest into kept and rejected pairs by score (src/eval/filter.h).
#include <iostream>
#include <vector>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "eval/filter.h"

namespace halo::cli {

int run_filter(const std::vector<std::string>& argv) {
  ArgParser args(
      "filter",
      "Score every pair of a manifest with a trained model and write kept.tsv and\n"
      "rejected.tsv (the input's columns, image paths relative to --out), scores.tsv and\n"
      "skipped.tsv (unreadable rows, with the reason). HALO's score is the pair's\n"
      "abstention probability: pairs scoring >= --threshold are rejected; or\n"
      "--keep-fraction F keeps the F share with the lowest scores. The manifest streams\n"
      "through in chunks; it is never modified. With a mismatched column, prints how\n"
      "many injected mismatches were caught (precision, recall).\n"
      "Cross-scoring: give the k checkpoints of models trained with data.folds=k and\n"
      "data.holdout_fold=0..k-1; each pair is scored by the model that never saw it\n"
      "(shards: whole shards make the folds, shard i in fold i mod k).\n"
      "Precomputed scores instead of a model: --scores-file RUN_DIR/pair_dynamics.tsv\n"
      "--score-column cosine_mean (any tab-separated file with a 'line' column naming\n"
      "manifest lines; shards: line = the sample's index in the set + 2, and the file's\n"
      "image_path, where it has one, must be the sample's key); it must hold a row for\n"
      "exactly the manifest's rows ('-': no score, the pair is skipped).\n"
      "Shards (--manifest d/{00000..00099}.tar): OUT/kept/ and OUT/rejected/ hold shards of the\n"
      "same names with each sample's original members (unreadable samples go to rejected and\n"
      "skipped.tsv), each with sizes.json; scores.tsv has key and score; kept_keys.txt lists the\n"
      "kept keys and kept_uids.npy their json uids (DataComp's subset list) when every one has "
      "one.");
  args.repeated("checkpoint", "FILE|RUN_DIR",
                "a checkpoint or run folder (its latest checkpoint); k of them to cross-score")
      .required("manifest", "FILE",
                "image-caption manifest to filter, or .tar shards (a pattern: d/{000..009}.tar)")
      .required("out", "DIR", "output folder")
      .option("threshold", "P", "reject pairs whose score is >= P")
      .option("keep-fraction", "F", "keep this share of the pairs (the lowest scores)")
      .option("score", "model|cosine|in-context",
              "model (the default): the loss's pair score (HALO: abstention); cosine: 1 - cosine "
              "similarity; "
              "in-context: 1 - the pair's own probability among the other pairs of its chunk (both "
              "ways, HALO's sink "
              "included), so --chunk is the bank of candidates")
      .option("scores-file", "FILE",
              "filter by precomputed scores (no --checkpoint), joined by manifest line")
      .option("score-column", "NAME",
              "the column of --scores-file (pair_dynamics.tsv: own_mean, cosine_mean, "
              "in_context_log_odds_mean, margin_mean)")
      .option("chunk", "N", "pairs read and scored at a time (the in-context score's bank)", "8192")
      .option("batch-size", "N", "pairs embedded at a time", "256")
      .option("workers", "N", "image decoding threads", "2")
      .option("device", "DEV", "cpu, cuda or cuda:K (default: the run's device when available)");
  if (!args.parse(argv)) return 0;
  HALO_CHECK(args.has("threshold") != args.has("keep-fraction"),
             "give exactly one of --threshold and --keep-fraction");

  eval::FilterOptions o;
  o.manifest = args.str("manifest");
  o.out_dir = args.str("out");
  if (args.has("threshold")) o.threshold = args.real("threshold");
  if (args.has("keep-fraction")) o.keep_fraction = args.real("keep-fraction");
  o.score = args.has("score") ? args.str("score") : "model";
  o.chunk_rows = args.integer("chunk");
  o.embed.batch_size = args.integer("batch-size");
  o.embed.workers = args.integer("workers");
  if (args.has("scores-file")) o.scores_file = args.str("scores-file");
  if (args.has("score-column")) o.score_column = args.str("score-column");
  eval::check_filter_options(o);  // before any model is loaded or pair scored
  const auto checkpoints = args.all("checkpoint");
  std::vector<train::TrainedModel> models;
  if (args.has("scores-file")) {
    HALO_CHECK(checkpoints.empty() && !args.has("score"),
               "--scores-file replaces --checkpoint and --score");
    HALO_CHECK(args.has("score-column"), "--scores-file needs --score-column");
    o.scores_file = args.str("scores-file");
    o.score_column = args.str("score-column");
    const eval::FilterReport r = eval::filter_manifest(models, o);
    std::cout << eval::format_filter_report(r);
    return 0;
  }
  HALO_CHECK(!args.has("score-column"), "--score-column needs --scores-file");
  HALO_CHECK(!checkpoints.empty(), "--checkpoint is required (or --scores-file)");
  for (const auto& c : checkpoints)
    models.push_back(train::load_trained_model(c, args.has("device") ? args.str("device") : ""));
  const eval::FilterReport r = eval::filter_manifest(models, o);
  std::cout << eval::format_filter_report(r);
  return 0;
}

}  // namespace halo::cli
