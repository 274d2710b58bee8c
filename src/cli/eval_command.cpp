// halo-clip eval: evaluates a checkpoint on a manifest and prints a table (see
// src/eval/evaluate.h).
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "data/pair_set.h"
#include "eval/evaluate.h"

namespace halo::cli {

int run_eval(const std::vector<std::string>& argv) {
  ArgParser args(
      "eval",
      "Evaluate a trained model on an image-caption manifest: retrieval image->text and\n"
      "text->image (R@1/5/10, mean and median rank), zero-shot classification when the\n"
      "manifest has a label column (classes.txt beside it, or --classes), and, when it\n"
      "has a mismatched column, AUROC and FPR@95 of the model's pair score (HALO: the\n"
      "abstention probability) against the cosine score. With --ood, how well zero-shot\n"
      "classification tells the manifest's images from each OOD set's (HALO's abstain\n"
      "probability, maximum softmax probability, MCM, energy: AUROC, FPR@95) and its\n"
      "accuracy when it may say \"I don't know\" (selective classification). Writes\n"
      "results.json, results.txt, pair_scores.tsv, reliability.tsv, examples.tsv\n"
      "(and ood_scores.tsv) into --out. Manifests and OOD sets may be shard patterns.");
  args.required("checkpoint", "FILE|RUN_DIR",
                "a checkpoint, or a run folder (its latest checkpoint)")
      .required("manifest", "FILE",
                "image-caption manifest (TSV/CSV with a header), or .tar shards (a pattern: "
                "d/{000..009}.tar)")
      .option("out", "DIR", "output folder (default: RUN_DIR/eval-<manifest folder name>)")
      .option("classes", "FILE",
              "class names, one per line (default: classes.txt beside the manifest)")
      .option("templates", "FILE",
              "prompt templates with {} for the class name, one per line (default: {})")
      .repeated("ood", "NAME=MANIFEST",
                "an out-of-distribution set whose images zero-shot classification should "
                "reject (repeatable; needs labels and class names for --manifest)")
      .option("negatives", "FILE",
              "with --ood: negative captions, one per line (e.g. scripts/wordnet_nouns.sh), put "
              "beside the classes; adds the scores negatives (and HALO's negatives_sink)")
      .option("negatives-from", "MANIFEST",
              "with --ood: take the negative captions from a manifest's or shard set's captions "
              "instead (e.g. the training set)")
      .option("negatives-count", "N",
              "the bank's size: of the candidates, the N farthest from every class prompt", "10000")
      .option("batch-size", "N", "pairs embedded at a time", "256")
      .option("workers", "N", "image decoding threads", "2")
      .option("device", "DEV", "cpu, cuda or cuda:K (default: the run's device when available)")
      .toggle("skip-bad", "skip and count unreadable images instead of stopping");
  if (!args.parse(argv)) return 0;

  eval::EvalOptions o;
  o.manifest = args.str("manifest");
  if (args.has("classes")) o.classes = args.str("classes");
  if (args.has("templates")) o.templates = args.str("templates");
  if (args.has("negatives")) o.negatives = args.str("negatives");
  if (args.has("negatives-from")) o.negatives_from = args.str("negatives-from");
  o.negatives_count = args.integer("negatives-count");
  o.embed.batch_size = args.integer("batch-size");
  o.embed.workers = args.integer("workers");
  o.embed.skip_bad = args.on("skip-bad");
  // Flags and inputs are checked before the model is loaded.
  HALO_CHECK(o.embed.batch_size >= 1 && o.embed.workers >= 1,
             "--batch-size and --workers must be >= 1");
  HALO_CHECK(std::filesystem::exists(args.str("checkpoint")), "checkpoint '",
             args.str("checkpoint"), "' does not exist");
  data::check_pair_source(o.manifest, "manifest");
  if (!o.classes.empty()) check_input_file(o.classes, "--classes file");
  if (!o.templates.empty()) check_input_file(o.templates, "--templates file");
  for (const auto& spec : args.all("ood")) {
    const auto eq = spec.find('=');
    HALO_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(),
               "--ood expects NAME=MANIFEST, got '", spec, "'");
    HALO_CHECK(spec.substr(0, eq) != "in-distribution",
               "--ood: the name 'in-distribution' is the evaluation set's");
    o.ood.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
    for (size_t k = 0; k + 1 < o.ood.size(); ++k) {
      HALO_CHECK(o.ood[k].first != o.ood.back().first, "--ood names the set '", o.ood.back().first,
                 "' twice");
    }
    data::check_pair_source(o.ood.back().second, "--ood " + o.ood.back().first + " manifest");
  }
  HALO_CHECK(o.negatives.empty() || o.negatives_from.empty(),
             "give --negatives or --negatives-from, not both");
  HALO_CHECK((o.negatives.empty() && o.negatives_from.empty()) || !o.ood.empty(),
             "--negatives and --negatives-from need --ood (they add OOD scores)");
  HALO_CHECK(o.negatives_count >= 1, "--negatives-count must be >= 1, got ", o.negatives_count);
  if (!o.negatives.empty()) check_input_file(o.negatives, "--negatives file");
  if (!o.negatives_from.empty()) data::check_pair_source(o.negatives_from, "--negatives-from");
  train::TrainedModel model = train::load_trained_model(
      args.str("checkpoint"), args.has("device") ? args.str("device") : "");
  const std::filesystem::path run_dir =
      std::filesystem::path(model.checkpoint).parent_path().parent_path();
  const std::string folder =
      std::filesystem::path(data::pair_source_folder(o.manifest)).filename().string();
  o.out_dir = args.has("out") ? args.str("out") : (run_dir / ("eval-" + folder)).string();
  const eval::EvalResult r = eval::evaluate(model, o);
  std::cout << eval::format_eval_table(r) << "\nwritten to " << o.out_dir << "/results.json\n";
  return 0;
}

}  // namespace halo::cli
