// results.txt, results.json and scores.tsv of `halo-clip classify` (declared in classify_run.h).
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "classify/classify_run.h"
#include "common/atomic_file.h"
#include "common/json.h"

namespace halo::classify {

namespace {
std::string ood_score_name(const std::string& loss) {
  return loss == "halo" ? "abstain probability" : "1 - max softmax probability";
}
}  // namespace

std::string format_results(const ClassifyResult& r) {
  const ClassifyOptions& o = r.options;
  std::string out;
  char line[300];
  std::snprintf(
      line, sizeof line,
      "loss %s, seed %llu: ResNet width %lld, %lld stages x %lld blocks, D = %lld, %lld px, "
      "%lld parameters\n",
      o.loss.c_str(), static_cast<unsigned long long>(o.seed),
      static_cast<long long>(o.model.width), static_cast<long long>(o.model.stages),
      static_cast<long long>(o.model.blocks_per_stage), static_cast<long long>(o.model.embed_dim),
      static_cast<long long>(o.image_size), static_cast<long long>(r.parameters));
  out += line;
  std::snprintf(line, sizeof line,
                "trained %lld steps (%lld images) in %.0f s, %.0f images/s, final loss %.4f\n",
                static_cast<long long>(r.train.steps), static_cast<long long>(r.train.images),
                r.train.seconds,
                static_cast<double>(r.train.images) / std::max(r.train.seconds, 1e-9),
                r.train.final_loss);
  out += line;
  std::snprintf(line, sizeof line,
                "test: %lld images, accuracy %.4f, ECE %.4f (15 bins), mean confidence %.4f\n",
                static_cast<long long>(r.test.images), r.test.accuracy, r.test.ece,
                r.test.mean_confidence);
  out += line;
  if (!r.ood.empty()) {
    out += "OOD score: " + ood_score_name(o.loss) + " (test split = in distribution)\n";
    std::snprintf(line, sizeof line, "%-16s %8s %8s %8s %12s\n", "OOD set", "images", "AUROC",
                  "FPR@95", "mean score");
    out += line;
    std::snprintf(line, sizeof line, "%-16s %8lld %8s %8s %12.4f\n", "(test split)",
                  static_cast<long long>(r.test.images), "-", "-", r.test.mean_ood_score);
    out += line;
    for (const auto& set : r.ood) {
      std::snprintf(line, sizeof line, "%-16s %8lld %8.4f %8.4f %12.4f\n", set.name.c_str(),
                    static_cast<long long>(set.metrics.images), set.metrics.auroc,
                    set.metrics.fpr95, set.metrics.mean_ood_score);
      out += line;
    }
  }
  return out;
}

std::string results_json(const ClassifyResult& r) {
  const ClassifyOptions& o = r.options;
  JsonObject model;
  model.add("preset", o.preset)
      .add("width", o.model.width)
      .add("stages", o.model.stages)
      .add("blocks_per_stage", o.model.blocks_per_stage)
      .add("embed_dim", o.model.embed_dim)
      .add("image_size", o.image_size)
      .add("parameters", r.parameters)
      .add("classes", r.classes);
  if (o.loss == "halo") model.add("abstain_bias", r.abstain_bias).add("gamma", r.gamma);
  JsonObject train;
  train.add("manifest", o.train_manifest)
      .add("epochs", o.epochs)
      .add("batch_size", o.batch_size)
      .add("lr", o.optim.lr)
      .add("weight_decay", o.optim.weight_decay)
      .add("warmup_steps", o.optim.warmup_steps)
      .add("augment", o.augment)
      .add("train_limit", o.train_limit)
      .add("steps", r.train.steps)
      .add("images", r.train.images)
      .add("seconds", r.train.seconds)
      .add("images_per_s", static_cast<double>(r.train.images) / std::max(r.train.seconds, 1e-9))
      .add("final_loss", r.train.final_loss)
      .add("device", o.device);
  JsonObject test;
  test.add("manifest", o.test_manifest)
      .add("images", r.test.images)
      .add("accuracy", r.test.accuracy)
      .add("ece", r.test.ece)
      .add("mean_confidence", r.test.mean_confidence)
      .add("mean_ood_score", r.test.mean_ood_score);
  std::vector<JsonObject> ood;
  for (const auto& set : r.ood) {
    ood.push_back(JsonObject()
                      .add("name", set.name)
                      .add("manifest", set.manifest)
                      .add("images", set.metrics.images)
                      .add("auroc", set.metrics.auroc)
                      .add("fpr95", set.metrics.fpr95)
                      .add("mean_ood_score", set.metrics.mean_ood_score));
  }
  JsonObject root;
  root.add("loss", o.loss)
      .add("seed", static_cast<int64_t>(o.seed))
      .add("ood_score", ood_score_name(o.loss))
      .add("model", model)
      .add("train", train)
      .add("test", test)
      .add("ood", ood)
      .add("eval_seconds", r.eval_seconds);
  return root.dump(2) + "\n";
}

std::string scores_tsv(const ClassifyResult& r) {
  std::string out = "set\timage_path\tlabel\tpredicted\tconfidence\tood_score\n";
  char numbers[96];
  for (const ScoredSet& set : r.scored) {
    const data::Manifest& m = *set.manifest;
    const ScoredImages& s = set.scores;
    for (size_t i = 0; i < s.ood_score.size(); ++i) {
      const std::string label = m.labels.empty() ? "-" : std::to_string(m.labels[i]);
      std::snprintf(numbers, sizeof numbers, "\t%lld\t%.6g\t%.6g\n",
                    static_cast<long long>(s.predicted[i]), s.confidence[i], s.ood_score[i]);
      out +=
          data::tsv_field(set.name) + "\t" + data::tsv_field(m.images[i]) + "\t" + label + numbers;
    }
  }
  return out;
}

void write_results(const ClassifyResult& r) {
  const std::filesystem::path dir(r.options.out_dir);
  std::filesystem::create_directories(dir);
  halo::write_file_atomically((dir / "results.json").string(), results_json(r));
  halo::write_file_atomically((dir / "results.txt").string(), format_results(r));
  halo::write_file_atomically((dir / "scores.tsv").string(), scores_tsv(r));
}

}  // namespace halo::classify
