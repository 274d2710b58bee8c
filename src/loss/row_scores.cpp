// Row-block softmax scores and the in-context log-odds (see row_scores.h).
#include "loss/row_scores.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::loss {

RowScores row_scores(ContrastiveLoss& loss, const torch::Tensor& queries,
                     const torch::Tensor& candidates, int64_t offset, int64_t block_rows) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(block_rows >= 1, "row scores need blocks of at least one row, got ", block_rows);
  HALO_CHECK(offset >= 0 && offset + queries.size(0) <= candidates.size(0), "row scores: rows ",
             offset, "..", offset + queries.size(0), " have no own column among ",
             candidates.size(0), " candidates");
  const std::optional<double> sink = loss.abstain_logit();
  std::vector<torch::Tensor> own_parts, other_parts, margin_parts;
  for (int64_t start = 0; start < queries.size(0); start += block_rows) {
    const int64_t rows = std::min(block_rows, queries.size(0) - start);
    // The n x M pass stays in the logits' precision: the own logit is read out, its place set
    // to -inf, and the others give their maximum and their log-sum-exp. Everything after is per
    // row, in float64.
    torch::Tensor logits = loss.logits(queries.narrow(0, start, rows), candidates);
    if (!logits.is_floating_point() || logits.element_size() < 4) logits = logits.to(torch::kFloat);
    const torch::Tensor own_column =
        torch::arange(offset + start, offset + start + rows,
                      torch::dtype(torch::kLong).device(logits.device()))
            .unsqueeze(1);
    const torch::Tensor own = logits.gather(1, own_column).squeeze(1).to(torch::kFloat64);
    logits.scatter_(1, own_column, -std::numeric_limits<double>::infinity());
    // The others' log-sum-exp around their maximum, in place: max, subtract, exp, sum.
    const torch::Tensor top = std::get<0>(logits.max(1, /*keepdim=*/true));
    const torch::Tensor shift = top.masked_fill(top.isinf(), 0);  // a row with no other column
    torch::Tensor other_lse =
        logits.sub_(shift).exp_().sum(1).to(torch::kFloat64).log_() + shift.squeeze(1);
    torch::Tensor other_max = top.squeeze(1).to(torch::kFloat64);
    if (sink) {
      other_lse = torch::logaddexp(other_lse, torch::full_like(other_lse, *sink));
      other_max = other_max.clamp_min(*sink);
    }
    // log p = own - logaddexp(own, others) = log sigmoid(own - others), and log(1 - p) the same
    // with the roles swapped: neither rounds to 0 where p is within 1e-16 of 1.
    own_parts.push_back(torch::log_sigmoid(own - other_lse));
    other_parts.push_back(torch::log_sigmoid(other_lse - own));
    margin_parts.push_back(own - other_max);
  }
  if (own_parts.empty()) {
    const torch::Tensor none =
        torch::empty({0}, torch::dtype(torch::kFloat64).device(queries.device()));
    return {none, none, none};
  }
  return {torch::cat(own_parts), torch::cat(other_parts), torch::cat(margin_parts)};
}

torch::Tensor in_context_log_odds(ContrastiveLoss& loss, const torch::Tensor& image_rows,
                                  const torch::Tensor& text_rows, const torch::Tensor& image_cols,
                                  const torch::Tensor& text_cols, int64_t offset,
                                  int64_t block_rows) {
  HALO_CHECK(image_rows.sizes() == text_rows.sizes(),
             "in-context scores need as many images as texts");
  const RowScores i2t = row_scores(loss, image_rows, text_cols, offset, block_rows);
  const RowScores t2i = row_scores(loss, text_rows, image_cols, offset, block_rows);
  // s / (1 - s) = ((1 - p1) + (1 - p2)) / (p1 + p2): each p and 1 - p from the logits themselves.
  return torch::logaddexp(i2t.other_log_p, t2i.other_log_p) -
         torch::logaddexp(i2t.own_log_p, t2i.own_log_p);
}

}  // namespace halo::loss
