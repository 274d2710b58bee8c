// halo-clip eval: evaluates a checkpoint on a manifest and prints a table (see src/eval/evaluate.h).
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "data/shard_pattern.h"
#include "eval/evaluate.h"

namespace halo::cli {

int run_eval(const std::vector<std::string>& argv) {
  ArgParser args("eval",
                 "Evaluate a trained model on an image-caption manifest: retrieval image->text and\n"
                 "text->image (R@1/5/10, mean and median rank), zero-shot classification when the\n"
                 "manifest has a label column (classes.txt beside it, or --classes), and, when it\n"
                 "has a mismatched column, AUROC and FPR@95 of the model's pair score (HALO: the\n"
                 "abstention probability) against the cosine score. Writes results.json,\n"
                 "results.txt, pair_scores.tsv, reliability.tsv and examples.tsv into --out.");
  args.required("checkpoint", "FILE|RUN_DIR", "a checkpoint, or a run folder (its latest checkpoint)")
      .required("manifest", "FILE", "image-caption manifest (TSV/CSV with a header), or .tar shards (a pattern: d/{000..009}.tar)")
      .option("out", "DIR", "output folder (default: RUN_DIR/eval-<manifest folder name>)")
      .option("classes", "FILE", "class names, one per line (default: classes.txt beside the manifest)")
      .option("templates", "FILE", "prompt templates with {} for the class name, one per line (default: {})")
      .option("batch-size", "N", "pairs embedded at a time", "256")
      .option("workers", "N", "image decoding threads", "2")
      .option("device", "DEV", "cpu, cuda or cuda:K (default: the run's device when available)")
      .toggle("skip-bad", "skip and count unreadable images instead of stopping");
  if (!args.parse(argv)) return 0;

  eval::EvalOptions o;
  o.manifest = args.str("manifest");
  if (args.has("classes")) o.classes = args.str("classes");
  if (args.has("templates")) o.templates = args.str("templates");
  o.embed.batch_size = args.integer("batch-size");
  o.embed.workers = args.integer("workers");
  o.embed.skip_bad = args.on("skip-bad");
  // Flags and inputs are checked before the model is loaded.
  HALO_CHECK(o.embed.batch_size >= 1 && o.embed.workers >= 1, "--batch-size and --workers must be >= 1");
  HALO_CHECK(std::filesystem::exists(args.str("checkpoint")), "checkpoint '", args.str("checkpoint"),
             "' does not exist");
  const bool shards = data::is_shard_source(o.manifest);
  if (shards) {
    data::existing_shards(o.manifest);
  } else {
    check_input_file(o.manifest, "manifest");
  }
  if (!o.classes.empty()) check_input_file(o.classes, "--classes file");
  if (!o.templates.empty()) check_input_file(o.templates, "--templates file");
  train::TrainedModel model = train::load_trained_model(args.str("checkpoint"), args.has("device") ? args.str("device") : "");
  const std::filesystem::path run_dir = std::filesystem::path(model.checkpoint).parent_path().parent_path();
  const std::string input = shards ? data::expand_shard_pattern(o.manifest).front() : o.manifest;
  o.out_dir = args.has("out") ? args.str("out")
                              : (run_dir / ("eval-" + std::filesystem::absolute(input).parent_path().filename().string())).string();
  const eval::EvalResult r = eval::evaluate(model, o);
  std::cout << eval::format_eval_table(r) << "\nwritten to " << o.out_dir << "/results.json\n";
  return 0;
}

}  // namespace halo::cli
