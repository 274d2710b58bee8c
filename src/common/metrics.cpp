// Metric functions; see metrics.h for the definitions and the tie rule.
#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"

namespace halo {

std::vector<double> to_doubles(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

namespace {

// Throws naming the first non-finite score: NaN would make the sorts below undefined behaviour
// and an infinity ties with itself silently.
void check_finite(const std::vector<double>& score, const char* what) {
  for (size_t i = 0; i < score.size(); ++i) {
    HALO_CHECK(std::isfinite(score[i]), what, ": score ", i, " of ", score.size(), " is ", score[i],
               "; every score must be finite");
  }
}

}  // namespace

std::vector<int64_t> true_ranks(const torch::Tensor& scores, const std::vector<int64_t>& truth) {
  HALO_CHECK(scores.dim() == 2 && scores.size(0) == static_cast<int64_t>(truth.size()),
             "true_ranks: need an n x m score matrix and n true indices, got ", scores.sizes(),
             " and ", truth.size());
  const torch::Tensor s = scores.to(torch::kFloat64).contiguous();
  HALO_CHECK(s.numel() == 0 || torch::isfinite(s).all().item<bool>(),
             "true_ranks: a score is NaN or infinite; every score must be finite");
  const auto index = torch::tensor(truth, torch::kInt64);
  HALO_CHECK(truth.empty() ||
                 (index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < s.size(1)),
             "true_ranks: a true index is outside the ", s.size(1), " candidates");
  const torch::Tensor true_score = s.gather(1, index.unsqueeze(1));
  // Candidates at least as good as the true one, the true one included: that count is the rank.
  const torch::Tensor rank = (s >= true_score).sum(1);
  const auto* r = rank.data_ptr<int64_t>();
  return std::vector<int64_t>(r, r + rank.size(0));
}

RankSummary summarize_ranks(const std::vector<int64_t>& ranks) {
  RankSummary out;
  out.count = static_cast<int64_t>(ranks.size());
  if (ranks.empty()) return out;
  std::vector<int64_t> sorted = ranks;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (int64_t r : sorted) sum += static_cast<double>(r);
  out.r1 = top_k_accuracy(ranks, 1);
  out.r5 = top_k_accuracy(ranks, 5);
  out.r10 = top_k_accuracy(ranks, 10);
  out.mean_rank = sum / static_cast<double>(sorted.size());
  const size_t n = sorted.size();
  out.median_rank = n % 2 ? static_cast<double>(sorted[n / 2])
                          : 0.5 * static_cast<double>(sorted[n / 2 - 1] + sorted[n / 2]);
  return out;
}

double top_k_accuracy(const std::vector<int64_t>& ranks, int64_t k) {
  if (ranks.empty()) return 0;
  const auto hits = std::count_if(ranks.begin(), ranks.end(), [k](int64_t r) { return r <= k; });
  return static_cast<double>(hits) / static_cast<double>(ranks.size());
}

Calibration calibration(const std::vector<double>& confidence, const std::vector<int>& correct,
                        int bins) {
  HALO_CHECK(confidence.size() == correct.size(), "calibration: ", confidence.size(),
             " confidences but ", correct.size(), " outcomes");
  HALO_CHECK(bins >= 1, "calibration: need at least one bin");
  Calibration out;
  out.bins.resize(static_cast<size_t>(bins));
  std::vector<double> conf_sum(static_cast<size_t>(bins), 0.0),
      hit_sum(static_cast<size_t>(bins), 0.0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const double c = confidence[i];
    HALO_CHECK(c >= 0 && c <= 1, "calibration: confidence ", c, " is outside [0, 1]");
    // Bin b holds (b/B, (b+1)/B]; 0 goes to the first bin.
    int b = static_cast<int>(std::ceil(c * bins)) - 1;
    b = std::clamp(b, 0, bins - 1);
    out.bins[static_cast<size_t>(b)].count += 1;
    conf_sum[static_cast<size_t>(b)] += c;
    hit_sum[static_cast<size_t>(b)] += correct[i] ? 1.0 : 0.0;
  }
  const double n = static_cast<double>(confidence.size());
  for (int b = 0; b < bins; ++b) {
    CalibrationBin& bin = out.bins[static_cast<size_t>(b)];
    bin.lower = static_cast<double>(b) / bins;
    bin.upper = static_cast<double>(b + 1) / bins;
    if (bin.count == 0) continue;
    bin.mean_confidence = conf_sum[static_cast<size_t>(b)] / static_cast<double>(bin.count);
    bin.accuracy = hit_sum[static_cast<size_t>(b)] / static_cast<double>(bin.count);
    out.ece += static_cast<double>(bin.count) / n * std::abs(bin.accuracy - bin.mean_confidence);
  }
  return out;
}

namespace {
void check_detection_input(const std::vector<double>& score, const std::vector<int>& label,
                           const char* what) {
  HALO_CHECK(score.size() == label.size(), what, ": ", score.size(), " scores but ", label.size(),
             " labels");
  check_finite(score, what);
  const auto positives = std::count(label.begin(), label.end(), 1);
  HALO_CHECK(positives > 0 && positives < static_cast<int64_t>(label.size()), what,
             ": need at least one positive and one negative, got ", positives, " positives of ",
             label.size());
}
}  // namespace

double auroc(const std::vector<double>& score, const std::vector<int>& label) {
  check_detection_input(score, label, "auroc");
  // Mann-Whitney U from average ranks (ties share their average rank).
  std::vector<size_t> order(score.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double positive_rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && score[order[j]] == score[order[i]]) ++j;
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1 .. j
    for (size_t k = i; k < j; ++k) {
      if (label[order[k]] == 1) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    }
    i = j;
  }
  const double p = static_cast<double>(positives);
  const double q = static_cast<double>(score.size()) - p;
  return (positive_rank_sum - p * (p + 1) / 2) / (p * q);
}

double fpr_at_tpr(const std::vector<double>& score, const std::vector<int>& label, double tpr) {
  check_detection_input(score, label, "fpr_at_tpr");
  HALO_CHECK(tpr > 0 && tpr <= 1, "fpr_at_tpr: tpr ", tpr, " is outside (0, 1]");
  std::vector<double> positive, negative;
  for (size_t i = 0; i < score.size(); ++i)
    (label[i] == 1 ? positive : negative).push_back(score[i]);
  std::sort(positive.begin(), positive.end(), std::greater<>());
  // The k-th best positive, k = ceil(tpr * P), is the highest threshold flagging >= tpr of them.
  const auto k = static_cast<size_t>(std::ceil(tpr * static_cast<double>(positive.size()) - 1e-9));
  const double threshold = positive[std::max<size_t>(k, 1) - 1];
  const auto flagged =
      std::count_if(negative.begin(), negative.end(), [&](double s) { return s >= threshold; });
  return static_cast<double>(flagged) / static_cast<double>(negative.size());
}

SelectiveResult selective_classification(const std::vector<double>& confidence,
                                         const std::vector<int>& correct,
                                         const std::vector<double>& coverages) {
  HALO_CHECK(!confidence.empty() && confidence.size() == correct.size(),
             "selective_classification: need as many confidences as outcomes, and at least one");
  check_finite(confidence, "selective_classification");
  std::vector<size_t> order(confidence.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return confidence[a] > confidence[b]; });
  const size_t n = order.size();
  // Expected errors among the k most confident: whole blocks of equal confidence before k, and
  // for the block that k cuts, its error rate times the share of it that is answered.
  std::vector<double> errors_in_top(n + 1, 0.0);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    int64_t block_errors = 0;
    while (j < n && confidence[order[j]] == confidence[order[i]])
      block_errors += correct[order[j++]] ? 0 : 1;
    const double rate = static_cast<double>(block_errors) / static_cast<double>(j - i);
    for (size_t k = i + 1; k <= j; ++k)
      errors_in_top[k] = errors_in_top[i] + rate * static_cast<double>(k - i);
    errors_in_top[j] =
        errors_in_top[i] + static_cast<double>(block_errors);  // exact at the block's end
    i = j;
  }
  SelectiveResult r;
  for (double c : coverages) {
    HALO_CHECK(c > 0 && c <= 1, "selective_classification: coverage ", c, " is outside (0, 1]");
    const auto k =
        std::max<size_t>(1, static_cast<size_t>(std::ceil(c * static_cast<double>(n) - 1e-9)));
    r.coverage.push_back(c);
    r.accuracy.push_back(1.0 - errors_in_top[k] / static_cast<double>(k));
  }
  for (size_t k = 1; k <= n; ++k) r.aurc += errors_in_top[k] / static_cast<double>(k);
  r.aurc /= static_cast<double>(n);
  return r;
}

Interval paired_bootstrap_auroc_difference(const std::vector<double>& a,
                                           const std::vector<double>& b,
                                           const std::vector<int>& label, int resamples,
                                           double level, uint64_t seed) {
  HALO_CHECK(a.size() == b.size() && a.size() == label.size(),
             "paired bootstrap: the scores and labels differ in length");
  HALO_CHECK(resamples >= 10 && level > 0 && level < 1,
             "paired bootstrap: need >= 10 resamples and a level in (0, 1)");
  check_finite(a, "paired bootstrap (first score)");
  check_finite(b, "paired bootstrap (second score)");
  Interval r;
  r.estimate = auroc(a, label) - auroc(b, label);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, a.size() - 1);
  std::vector<double> differences, ra(a.size()), rb(a.size());
  std::vector<int> rl(a.size());
  while (static_cast<int>(differences.size()) < resamples) {
    int64_t positives = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const size_t j = pick(rng);
      ra[i] = a[j], rb[i] = b[j], rl[i] = label[j];
      positives += label[j];
    }
    if (positives == 0 || positives == static_cast<int64_t>(a.size())) continue;
    differences.push_back(auroc(ra, rl) - auroc(rb, rl));
  }
  std::sort(differences.begin(), differences.end());
  auto quantile = [&](double q) {
    const double at = q * static_cast<double>(differences.size() - 1);
    const auto lo = static_cast<size_t>(std::floor(at));
    const size_t hi = std::min(lo + 1, differences.size() - 1);
    return differences[lo] + (at - static_cast<double>(lo)) * (differences[hi] - differences[lo]);
  };
  r.lower = quantile((1 - level) / 2);
  r.upper = quantile(1 - (1 - level) / 2);
  return r;
}

}  // namespace halo
