// The classify pipeline (see classify_run.h).
#include "classify/classify_run.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <torch/torch.h>

#include "common/cpu_convolutions.h"
#include "common/error.h"
#include "common/log.h"
#include "data/manifest.h"

namespace halo::classify {

namespace {

// The manifest's rows, the first `limit` of them when limit > 0. `flag` names it in errors.
std::shared_ptr<const data::Manifest> load(const std::string& path, int64_t limit,
                                           const std::string& flag, bool need_labels) {
  data::Manifest m;
  try {
    m = data::read_manifest(path, data::ManifestOptions{});
  } catch (const halo::Error& e) {
    HALO_FAIL(flag, ": ", e.message());
  }
  HALO_CHECK(m.size() > 0, flag, ": manifest '", path, "' has no rows");
  HALO_CHECK(!need_labels || !m.labels.empty(), flag, ": manifest '", path,
             "' has no 'label' column (halo-clip prepare fashion-mnist writes one)");
  if (limit > 0 && limit < m.size()) {
    std::vector<int64_t> rows(static_cast<size_t>(limit));
    for (int64_t i = 0; i < limit; ++i) rows[static_cast<size_t>(i)] = i;
    m = data::subset(m, rows);
  }
  return std::make_shared<const data::Manifest>(std::move(m));
}

torch::Device pick_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const std::exception&) {
    HALO_FAIL("--device must be cpu, cuda or cuda:K, got '", name, "'");
  }
  HALO_CHECK(!device.is_cuda() || torch::cuda::is_available(), "--device is '", name,
             "' but no CUDA device is available");
  return device;
}

}  // namespace

ClassifyResult run_classify(const ClassifyOptions& o) {
  validate(o);
  const torch::Device device = pick_device(o.device);
  torch::manual_seed(o.seed);
  const auto train_set = load(o.train_manifest, o.train_limit, "--train", true);
  const auto test_set = load(o.test_manifest, o.eval_limit, "--test", true);
  std::vector<std::shared_ptr<const data::Manifest>> ood_sets;
  for (const auto& set : o.ood)
    ood_sets.push_back(load(set.manifest, o.eval_limit, "--ood " + set.name, false));

  ClassifyResult r;
  r.options = o;
  for (const int64_t label : train_set->labels) r.classes = std::max(r.classes, label + 1);
  for (const int64_t label : test_set->labels) {
    HALO_CHECK(label >= 0 && label < r.classes, "--test: manifest '", o.test_manifest,
               "' has label ", label, " but the training labels are 0..", r.classes - 1);
  }

  encoders::ResNet encoder(o.model);
  ClassifierHead head(o.loss, o.model.embed_dim, r.classes);
  if (device.is_cpu()) check_cpu_convolutions();  // before the first CPU convolution
  encoder->to(device);
  head->to(device);
  for (const auto& p : encoder->parameters()) r.parameters += p.numel();
  for (const auto& p : head->parameters()) r.parameters += p.numel();
  log_message(
      o.loss + " classifier: ResNet width " + std::to_string(o.model.width) + ", " +
      std::to_string(o.model.stages) + " stages of " + std::to_string(o.model.blocks_per_stage) +
      " blocks, D = " + std::to_string(o.model.embed_dim) + ", " + std::to_string(r.classes) +
      " classes, " + std::to_string(r.parameters) + " parameters");

  r.train = train_classifier(encoder, head, train_set, o, device);

  const auto start = std::chrono::steady_clock::now();
  const ScoredImages test_scores = score_images(encoder, head, test_set, o, device);
  r.test = test_metrics(test_scores, test_set->labels);
  r.scored.push_back({"test", test_set, test_scores});
  for (size_t i = 0; i < o.ood.size(); ++i) {
    ScoredImages scored = score_images(encoder, head, ood_sets[i], o, device);
    r.ood.push_back(
        {o.ood[i].name, o.ood[i].manifest, ood_metrics(test_scores.ood_score, scored.ood_score)});
    r.scored.push_back({o.ood[i].name, ood_sets[i], std::move(scored)});
  }
  r.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (head->is_halo()) {
    r.abstain_bias = head->halo->abstain_bias();
    r.gamma = head->halo->gamma().item<double>();
  }
  return r;
}

}  // namespace halo::classify
