// Per-pair training dynamics: the step's scores, the exact fixed-point accumulator and the
// TSV file (see pair_dynamics.h).
#include "hooks/pair_dynamics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/metrics.h"
#include "dist/process_group.h"
#include "loss/row_scores.h"

namespace halo::hooks {

namespace {

constexpr double kUnit = 16777216.0;  // 2^24: scores are summed in units of 1 / kUnit
constexpr double kLimit = 1048576.0;  // 2^20: scores are clamped to [-kLimit, kLimit]

// Fixed-point sums and counts (broadcastable) to float64 means; 0 / 0 = NaN where never seen.
torch::Tensor to_means(const torch::Tensor& sums, const torch::Tensor& counts) {
  return sums.to(torch::kFloat64) / kUnit / counts.to(torch::kFloat64);
}

int64_t column_index(const std::string& column) {
  const auto& names = pair_dynamics_columns();
  const auto c = std::find(names.begin(), names.end(), column) - names.begin();
  HALO_CHECK(c < static_cast<int64_t>(names.size()), "internal: no pair dynamics column '", column,
             "'");
  return c;
}

// Seven significant digits: the sums' resolution is 2^-24, so more would print rounding noise.
std::string format_mean(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.7g", v);
  return text;
}

}  // namespace

const std::vector<std::string>& pair_dynamics_columns() {
  static const std::vector<std::string> names{"own_mean", "cosine_mean", "in_context_log_odds_mean",
                                              "margin_mean"};
  return names;
}

torch::Tensor step_pair_scores(loss::ContrastiveLoss& loss, const loss::PairBatch& batch,
                               int64_t chunk_elements) {
  HALO_CHECK(chunk_elements >= 1, "internal: pair scores need chunks of at least one logit");
  torch::NoGradGuard no_grad;
  const loss::PairBatch b = loss::to_compute_dtype(batch);
  const torch::Tensor image = b.image_rows.detach(), text = b.text_rows.detach();
  const torch::Tensor own = loss.mismatch_score(image, text).to(torch::kFloat64);
  const torch::Tensor cosine = 1.0 - torch::cosine_similarity(image, text, 1).to(torch::kFloat64);
  // Rows of logits made at a time: at most chunk_elements of them (the abstain column included).
  const int64_t columns = b.text_cols.size(0) + (loss.abstain_logit() ? 1 : 0);
  const int64_t block_rows = std::max<int64_t>(1, chunk_elements / std::max<int64_t>(1, columns));
  const loss::RowScores i2t =
      loss::row_scores(loss, image, b.text_cols.detach(), b.row_offset, block_rows);
  const loss::RowScores t2i =
      loss::row_scores(loss, text, b.image_cols.detach(), b.row_offset, block_rows);
  // The in-context score as log-odds (loss/row_scores.h), as eval and filter rank by it: a mean of
  // probabilities would round 1 - p to 0 in the fixed-point sums and tie confident pairs.
  const torch::Tensor context = torch::logaddexp(i2t.other_log_p, t2i.other_log_p) -
                                torch::logaddexp(i2t.own_log_p, t2i.own_log_p);
  const torch::Tensor margin = -0.5 * (i2t.margin + t2i.margin);
  return torch::stack({own, cosine, context, margin}, 1).to(torch::kCPU).contiguous();
}

PairDynamics::PairDynamics(int64_t pairs) {
  HALO_CHECK(pairs >= 1, "pair dynamics need at least one pair, got ", pairs);
  const auto columns = static_cast<int64_t>(pair_dynamics_columns().size());
  sums_ = torch::zeros({pairs, columns}, torch::kInt64);
  counts_ = torch::zeros({pairs}, torch::kInt64);
}

void PairDynamics::add(const torch::Tensor& rows, const torch::Tensor& scores) {
  HALO_CHECK(pairs() > 0, "internal: pair dynamics were not set up");
  const torch::Tensor r = rows.to(torch::kCPU, torch::kInt64).reshape({-1});
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64);
  HALO_CHECK(s.dim() == 2 && s.size(0) == r.numel() && s.size(1) == sums_.size(1),
             "pair dynamics: ", r.numel(), " rows but scores of shape ", s.sizes());
  if (r.numel() == 0) return;
  HALO_CHECK(r.min().item<int64_t>() >= 0 && r.max().item<int64_t>() < pairs(),
             "pair dynamics: a row outside [0, ", pairs(), ")");
  HALO_CHECK(torch::isfinite(s).all().item<bool>(), "pair dynamics: a score is not finite");
  sums_.index_add_(0, r, (s.clamp(-kLimit, kLimit) * kUnit).round().to(torch::kInt64));
  counts_.index_add_(0, r, torch::ones({r.numel()}, torch::kInt64));
}

PairDynamics PairDynamics::summed_over_ranks(dist::ProcessGroup& group) const {
  PairDynamics total;
  total.sums_ = sums_.clone();
  total.counts_ = counts_.clone();
  std::vector<torch::Tensor> tensors{total.sums_, total.counts_};
  group.all_reduce_sum(tensors);
  return total;
}

void PairDynamics::add_totals(const PairDynamics& other) {
  HALO_CHECK(other.pairs() == pairs() && pairs() > 0, "internal: adding pair dynamics of ",
             other.pairs(), " pairs to ", pairs());
  sums_ = sums_ + other.sums_;  // new tensors: a copy of this accumulator shares them
  counts_ = counts_ + other.counts_;
}

RunPairDynamics::RunPairDynamics(int64_t pairs, bool keep_history, bool main_rank)
    : keep_history_(keep_history), main_rank_(main_rank), since_(pairs) {
  if (keep_history_) synced_ = PairDynamics(pairs);
}

void RunPairDynamics::load_state(const std::map<std::string, torch::Tensor>& state) {
  PairDynamics loaded(since_.pairs());
  loaded.load_state(state);
  if (keep_history_) {
    synced_ = loaded;
  } else if (main_rank_) {
    since_ = loaded;  // the other ranks start from zero: the sums are added once, in fold()
  }
}

PairDynamics RunPairDynamics::fold(dist::ProcessGroup& group) {
  PairDynamics totals = since_.summed_over_ranks(group);
  if (!keep_history_) return totals;
  totals.add_totals(synced_);
  synced_ = totals;
  since_ = PairDynamics(since_.pairs());
  return totals;
}

torch::Tensor RunPairDynamics::history_means(const torch::Tensor& rows,
                                             const std::string& column) const {
  HALO_CHECK(keep_history_, "internal: the pair dynamics keep no history");
  const int64_t c = column_index(column);
  const torch::Tensor r = rows.to(torch::kCPU, torch::kInt64).reshape({-1});
  auto sums = [&](const PairDynamics& d) { return d.sums_.index_select(0, r).select(1, c); };
  auto counts = [&](const PairDynamics& d) { return d.counts_.index_select(0, r); };
  return to_means(sums(synced_) + sums(since_), counts(synced_) + counts(since_));
}

torch::Tensor RunPairDynamics::sink_shares(const torch::Tensor& rows, double beta, double fraction,
                                           dist::ProcessGroup& group) const {
  const torch::Tensor mine = history_means(rows, "margin_mean");
  const torch::Tensor batch = group.size() > 1 ? group.all_gather(mine) : mine;
  const torch::Tensor share = history_sink_share(batch, beta, fraction);
  return share.slice(0, group.rank() * mine.size(0), (group.rank() + 1) * mine.size(0));
}

torch::Tensor history_sink_share(const torch::Tensor& history, double beta, double fraction) {
  const torch::Tensor h = history.to(torch::kCPU, torch::kFloat64).reshape({-1});
  torch::Tensor share = torch::zeros_like(h);
  const torch::Tensor known = torch::nonzero(~torch::isnan(h)).reshape({-1});
  const auto hardest =
      static_cast<int64_t>(std::llround(fraction * static_cast<double>(known.numel())));
  if (hardest == 0) return share;
  // A stable sort, descending, so that ties keep the batch order.
  const torch::Tensor order =
      std::get<1>(h.index_select(0, known).sort(/*stable=*/true, 0, /*descending=*/true));
  share.index_fill_(0, known.index_select(0, order.slice(0, 0, hardest)), beta);
  return share;
}

torch::Tensor PairDynamics::means() const {
  return to_means(sums_, counts_.unsqueeze(1));
}

std::map<std::string, torch::Tensor> PairDynamics::state() const {
  if (pairs() == 0) return {};
  return {{"pair_dynamics_sums", sums_}, {"pair_dynamics_counts", counts_}};
}

void PairDynamics::load_state(const std::map<std::string, torch::Tensor>& state) {
  const auto sums = state.find("pair_dynamics_sums");
  const auto counts = state.find("pair_dynamics_counts");
  HALO_CHECK(sums != state.end() && counts != state.end(), "the checkpoint holds no pair dynamics");
  HALO_CHECK(sums->second.dtype() == torch::kInt64 && counts->second.dtype() == torch::kInt64 &&
                 sums->second.dim() == 2 && counts->second.dim() == 1 &&
                 sums->second.size(1) == static_cast<int64_t>(pair_dynamics_columns().size()),
             "the checkpoint's pair dynamics are malformed");
  HALO_CHECK(counts->second.size(0) == pairs() && sums->second.size(0) == pairs(),
             "the checkpoint's pair dynamics are for ", counts->second.size(0),
             " pairs but the training manifest has ", pairs());
  sums_ = sums->second.clone();
  counts_ = counts->second.clone();
}

std::vector<DynamicsDetection> write_pair_dynamics(const std::string& path,
                                                   const PairDynamics& totals,
                                                   const data::Manifest& manifest) {
  HALO_CHECK(totals.pairs() == manifest.size(), "internal: pair dynamics for ", totals.pairs(),
             " pairs, manifest has ", manifest.size());
  const auto& columns = pair_dynamics_columns();
  const torch::Tensor means = totals.means();
  const auto* mean = means.data_ptr<double>();
  const auto* seen = totals.counts().data_ptr<int64_t>();
  const bool truth = !manifest.mismatched.empty();
  std::vector<std::vector<double>> scores(columns.size());
  std::vector<int> labels;

  std::ostringstream out;
  out << "line\timage_path\tmismatched\tseen";
  for (const auto& c : columns) out << '\t' << c;
  out << '\n';
  for (int64_t i = 0; i < manifest.size(); ++i) {
    const auto row = static_cast<size_t>(i);
    out << manifest.lines[row] << '\t' << data::tsv_field(manifest.images[row]) << '\t'
        << (truth ? std::to_string(manifest.mismatched[row]) : std::string("-")) << '\t' << seen[i];
    for (size_t c = 0; c < columns.size(); ++c) {
      const double v = mean[static_cast<size_t>(i) * columns.size() + c];
      out << '\t' << (seen[i] > 0 ? format_mean(v) : std::string("-"));
      if (seen[i] > 0) scores[c].push_back(v);
    }
    out << '\n';
    if (seen[i] > 0 && truth) labels.push_back(manifest.mismatched[row]);
  }
  write_file_atomically(path, out.str());

  std::vector<DynamicsDetection> result;
  const auto positives = std::count(labels.begin(), labels.end(), 1);
  if (!truth || positives == 0 || positives == static_cast<int64_t>(labels.size())) return result;
  for (size_t c = 0; c < columns.size(); ++c) {
    result.push_back(
        {columns[c], halo::auroc(scores[c], labels), halo::fpr_at_tpr(scores[c], labels, 0.95)});
  }
  return result;
}

}  // namespace halo::hooks
