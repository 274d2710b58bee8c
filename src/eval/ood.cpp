// Out-of-distribution scores of zero-shot classification and what they detect (see ood.h).
#include "eval/ood.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "data/manifest.h"

namespace halo::eval {

const std::vector<double>& OodImageScores::score(const std::string& name) const {
  for (const auto& [n, values] : scores) {
    if (n == name) return values;
  }
  HALO_FAIL("no OOD score named '", name, "'");
}

double OodImageScores::natural_value(const std::string& name, double score) {
  if (name == "abstain") return sigmoid(score);
  if (name == "msp" || name == "mcm" || name == "mcm_clip") return std::exp(-score);
  if (name == "negatives" || name == "negatives_sink") return -std::expm1(-score);  // reject mass
  return score;
}

OodImageScores ood_image_scores(loss::ContrastiveLoss& loss, const torch::Tensor& images,
                                const torch::Tensor& class_embeddings, int64_t chunk_rows,
                                const torch::Tensor& negative_embeddings) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(chunk_rows >= 1, "chunk_rows must be >= 1");
  HALO_CHECK(images.dim() == 2 && class_embeddings.dim() == 2 &&
                 images.size(1) == class_embeddings.size(1),
             "OOD scores need n x D images and C x D class embeddings of the same D");
  const std::optional<double> sink = loss.abstain_logit();
  const torch::Tensor classes = class_embeddings.to(images.device());
  const torch::Tensor unit_classes = torch::nn::functional::normalize(
      classes.to(torch::kFloat64), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const bool bank = negative_embeddings.defined() && negative_embeddings.size(0) > 0;
  HALO_CHECK(!bank || (negative_embeddings.dim() == 2 &&
                       negative_embeddings.size(1) == class_embeddings.size(1)),
             "OOD scores need K x D negative embeddings of the classes' D");
  const torch::Tensor negatives = bank ? negative_embeddings.to(images.device()) : torch::Tensor();
  std::vector<torch::Tensor> predicted, abstain, msp, mcm, mcm_clip, energy, neg, neg_sink;
  for (int64_t start = 0; start < images.size(0); start += chunk_rows) {
    const torch::Tensor x = images.slice(0, start, std::min(images.size(0), start + chunk_rows));
    const torch::Tensor logits = loss.logits(x, classes).to(torch::kFloat64);
    const torch::Tensor lse = torch::logsumexp(logits, 1);
    predicted.push_back(logits.argmax(1).cpu());
    if (sink) abstain.push_back((*sink - lse).cpu());
    msp.push_back((lse - std::get<0>(logits.max(1))).cpu());  // -max log softmax
    const torch::Tensor unit_x = torch::nn::functional::normalize(
        x.to(torch::kFloat64), torch::nn::functional::NormalizeFuncOptions().dim(1));
    const torch::Tensor cosines = unit_x.matmul(unit_classes.t());
    for (auto [temperature, out] :
         {std::pair{kMcmTemperature, &mcm}, std::pair{kMcmClipTemperature, &mcm_clip}}) {
      const torch::Tensor cos_logits = cosines / temperature;
      out->push_back((torch::logsumexp(cos_logits, 1) - std::get<0>(cos_logits.max(1))).cpu());
    }
    energy.push_back((-lse).cpu());
    if (bank) {
      const torch::Tensor all =
          torch::logaddexp(lse, torch::logsumexp(loss.logits(x, negatives).to(torch::kFloat64), 1));
      neg.push_back((all - lse).cpu());
      if (sink)
        neg_sink.push_back((torch::logaddexp(all, torch::full_like(all, *sink)) - lse).cpu());
    }
  }
  OodImageScores out;
  const torch::Tensor all_predicted = torch::cat(predicted).to(torch::kInt64).contiguous();
  out.predicted.assign(all_predicted.data_ptr<int64_t>(),
                       all_predicted.data_ptr<int64_t>() + all_predicted.numel());
  if (sink) out.scores.emplace_back("abstain", to_doubles(torch::cat(abstain)));
  out.scores.emplace_back("msp", to_doubles(torch::cat(msp)));
  out.scores.emplace_back("mcm", to_doubles(torch::cat(mcm)));
  out.scores.emplace_back("mcm_clip", to_doubles(torch::cat(mcm_clip)));
  out.scores.emplace_back("energy", to_doubles(torch::cat(energy)));
  if (bank) out.scores.emplace_back("negatives", to_doubles(torch::cat(neg)));
  if (bank && sink) out.scores.emplace_back("negatives_sink", to_doubles(torch::cat(neg_sink)));
  return out;
}

std::vector<int64_t> farthest_from_classes(const torch::Tensor& candidates,
                                           const torch::Tensor& class_embeddings, int64_t count) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(count >= 1, "the bank of negatives needs a size >= 1, got ", count);
  HALO_CHECK(candidates.dim() == 2 && class_embeddings.dim() == 2 &&
                 candidates.size(1) == class_embeddings.size(1),
             "negatives: K x D candidates and C x D classes of the same D");
  namespace F = torch::nn::functional;
  const auto unit = [](const torch::Tensor& t) {
    return F::normalize(t.to(torch::kCPU, torch::kFloat64), F::NormalizeFuncOptions().dim(1));
  };
  const torch::Tensor closest =
      std::get<0>(unit(candidates).matmul(unit(class_embeddings).t()).max(1));
  const int64_t k = std::min<int64_t>(count, candidates.size(0));
  // The k smallest, ties by candidate order (a stable sort), returned in candidate order.
  const torch::Tensor order = std::get<1>(closest.sort(/*stable=*/true, 0, false)).narrow(0, 0, k);
  const torch::Tensor chosen = std::get<0>(order.sort()).contiguous();
  return {chosen.data_ptr<int64_t>(), chosen.data_ptr<int64_t>() + k};
}

std::vector<OodDetection> ood_detection(const std::string& set,
                                        const OodImageScores& in_distribution,
                                        const OodImageScores& ood) {
  std::vector<OodDetection> out;
  for (const auto& [name, id_values] : in_distribution.scores) {
    const std::vector<double>& ood_values = ood.score(name);
    // In-distribution images are the positives, ranked by confidence (-score): FPR at 95% TPR is
    // the share of OOD images still accepted when 95% of the evaluation set's are.
    std::vector<double> confidence;
    std::vector<int> is_id;
    for (double v : id_values) confidence.push_back(-v), is_id.push_back(1);
    for (double v : ood_values) confidence.push_back(-v), is_id.push_back(0);
    out.push_back({set, name, static_cast<int64_t>(ood_values.size()), auroc(confidence, is_id),
                   fpr_at_tpr(confidence, is_id, 0.95)});
  }
  return out;
}

std::vector<SelectiveScore> selective_by_score(const OodImageScores& scores,
                                               const std::vector<int64_t>& labels) {
  HALO_CHECK(labels.size() == scores.predicted.size(), "selective classification: ", labels.size(),
             " labels for ", scores.predicted.size(), " images");
  std::vector<int> correct;
  for (size_t i = 0; i < labels.size(); ++i)
    correct.push_back(scores.predicted[i] == labels[i] ? 1 : 0);
  std::vector<SelectiveScore> out;
  for (const auto& [name, values] : scores.scores) {
    std::vector<double> confidence;
    for (double v : values) confidence.push_back(-v);
    out.push_back({name, selective_classification(confidence, correct, {0.5, 0.8, 0.95})});
  }
  return out;
}

void write_ood_scores(const std::string& path, const std::vector<OodScoredSet>& sets) {
  HALO_CHECK(!sets.empty(), "no scored set to write to ", path);
  std::ostringstream out;
  out << "set\timage_path\tlabel\tpredicted\tcorrect";
  for (const auto& [name, values] : sets.front().scores.scores)
    out << '\t' << name << '\t' << name << "_score";
  out << '\n';
  for (const auto& set : sets) {
    for (size_t i = 0; i < set.images.size(); ++i) {
      const int64_t label = set.labels.empty() ? -1 : set.labels[i],
                    predicted = set.scores.predicted[i];
      out << data::tsv_field(set.name) << '\t' << data::tsv_field(set.images[i]) << '\t' << label
          << '\t' << predicted << '\t' << (label < 0 ? -1 : static_cast<int>(label == predicted));
      for (const auto& [name, values] : set.scores.scores) {
        out << '\t' << json_number(OodImageScores::natural_value(name, values[i])) << '\t'
            << json_number(values[i]);
      }
      out << '\n';
    }
  }
  write_file_atomically(path, out.str());
}

}  // namespace halo::eval
