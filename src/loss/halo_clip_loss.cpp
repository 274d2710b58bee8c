// Batch-level HALO loss over rows and columns, and the pair abstention score.
#include "loss/halo_clip_loss.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <torch/torch.h>

#include "common/error.h"
#include "loss/halo_terms.h"
#include "loss/halo_tiled.h"
#include "loss/shifted_distance.h"

namespace halo::loss {

void check_pair_batch(const PairBatch& batch, bool check_finite) {
  check_embeddings("image embeddings (rows)", batch.image_rows, check_finite);
  check_embeddings("text embeddings (rows)", batch.text_rows, check_finite);
  const bool cols_are_rows =
      batch.image_cols.is_same(batch.image_rows) && batch.text_cols.is_same(batch.text_rows);
  if (!cols_are_rows) {
    check_embeddings("image embeddings (columns)", batch.image_cols, check_finite);
    check_embeddings("text embeddings (columns)", batch.text_cols, check_finite);
  }
  const int64_t D = batch.image_rows.size(1);
  for (const auto* t : {&batch.text_rows, &batch.image_cols, &batch.text_cols}) {
    HALO_CHECK(t->size(1) == D, "embedding sizes differ within the batch: image rows have D = ", D,
               " but another input has D = ", t->size(1));
  }
  HALO_CHECK(batch.image_rows.size(0) == batch.text_rows.size(0),
             "pairs need as many image rows as text rows, got ", batch.image_rows.size(0),
             " images and ", batch.text_rows.size(0), " texts");
  HALO_CHECK(batch.image_cols.size(0) == batch.text_cols.size(0),
             "candidate columns need as many images as texts, got ", batch.image_cols.size(0),
             " and ", batch.text_cols.size(0));
  HALO_CHECK(batch.row_offset >= 0 && batch.row_offset + batch.rows() <= batch.cols(),
             "row_offset ", batch.row_offset, " with ", batch.rows(),
             " rows points past the last of ", batch.cols(), " columns");
  if (batch.sink_share.defined()) {
    const torch::Tensor& s = batch.sink_share;
    HALO_CHECK(s.dim() == 1 && s.size(0) == batch.rows() && s.is_floating_point(),
               "the sink share must hold one floating-point value per row (", batch.rows(),
               "), got shape ", s.sizes());
    HALO_CHECK(!check_finite || !((s < 0) | (s >= 1) | torch::isnan(s)).any().item<bool>(),
               "the sink share must be in [0, 1)");
  }
  if (batch.partner_dropped.defined()) {
    const torch::Tensor& d = batch.partner_dropped;
    HALO_CHECK(d.dim() == 1 && d.size(0) == batch.rows() && d.scalar_type() == torch::kBool,
               "the dropped partners must be one boolean per row (", batch.rows(), "), got ",
               d.scalar_type(), " of shape ", d.sizes());
  }
}

PairBatch to_compute_dtype(const PairBatch& batch) {
  // Convert a tensor used as both rows and columns once, so that its gradient is summed in the
  // compute dtype and rounded once on the way back.
  PairBatch out{to_compute_dtype(batch.image_rows),
                to_compute_dtype(batch.text_rows),
                {},
                {},
                batch.row_offset,
                batch.sink_share,
                batch.partner_dropped};
  out.image_cols = batch.image_cols.is_same(batch.image_rows) ? out.image_rows
                                                              : to_compute_dtype(batch.image_cols);
  out.text_cols =
      batch.text_cols.is_same(batch.text_rows) ? out.text_rows : to_compute_dtype(batch.text_cols);
  return out;
}

namespace {

struct DirectionResult {
  torch::Tensor cross_entropy;  // mean over the rows
  torch::Tensor
      pair_abstain;  // per row, detached: sigmoid(b - S_i,true) (bootstrapping from the model only)
};

// One direction: queries q (n x D) against candidates c (M x D) plus the sink. given_share:
// the batch's sink_share or undefined; dropped: the rows whose partner is hidden, or undefined.
// A dropped row's cross-entropy is logaddexp(logsumexp_{j != true} S_ij, b) - b: its true column
// leaves the softmax and the sink takes the whole target (its share or bootstrap do not apply).
DirectionResult direction_cross_entropy(const torch::Tensor& q, const torch::Tensor& c,
                                        const torch::Tensor& true_col, const torch::Tensor& gamma,
                                        double b, const HaloClipOptions& options,
                                        const torch::Tensor& given_share,
                                        const torch::Tensor& dropped) {
  torch::Tensor S = shifted_distance(q, c, gamma);
  const double eps = options.label_smoothing;
  torch::Tensor targets = options.distill ? distill_targets(S, gamma, q, true_col, eps)
                                          : smoothing_targets(S, true_col, eps);
  const double beta = options.model_bootstrap();
  if (beta == 0.0 && !given_share.defined() && !dropped.defined())
    return {sink_cross_entropy(S, b, targets), {}};
  // Share m_i of the target on the sink: loss_i = lse_i - (1 - m_i) t_i.S_i - m_i b, with
  // m_i = beta * a_i from the model, or the given share (a constant either way).
  torch::Tensor a, m;
  if (given_share.defined()) {
    m = given_share.detach().to(S.options());
  } else if (beta > 0.0) {
    a = torch::sigmoid(b - S.gather(1, true_col.unsqueeze(1)).squeeze(1)).detach();
    m = beta * a;
  }
  if (!m.defined()) m = torch::zeros({S.size(0)}, S.options());
  // The candidates each row sees: a dropped row's true column is hidden (-inf).
  torch::Tensor seen = S;
  if (dropped.defined()) {
    const torch::Tensor hide =
        torch::zeros_like(S, torch::kBool).scatter_(1, true_col.unsqueeze(1), dropped.unsqueeze(1));
    seen = S.masked_fill(hide, -std::numeric_limits<double>::infinity());
  }
  const torch::Tensor lse_with_sink =
      torch::logaddexp(torch::logsumexp(seen, 1), torch::full_like(m, b));
  torch::Tensor rows = lse_with_sink - (1.0 - m) * (targets * S).sum(1) - m * b;
  if (dropped.defined()) rows = torch::where(dropped, lse_with_sink - b, rows);
  return {rows.mean(), a};
}

bool use_tiled(const HaloClipOptions& options, const PairBatch& batch) {
  return resolve_loss_implementation(options.implementation, batch.rows(), batch.cols()) !=
         LossImplementation::kDense;
}

// The tiled path: no n x M matrix. ATen tiles compute in fp32/fp64 like the dense path; the CUDA
// kernels read bf16 embeddings as they are.
HaloClipParts tiled_clip_loss(const PairBatch& input, const torch::Tensor& gamma_raw, double b,
                              const HaloClipOptions& options) {
  const bool kernel = parse_loss_implementation(options.implementation, "loss.implementation") ==
                      LossImplementation::kKernel;
  HALO_CHECK(!kernel || input.image_rows.is_cuda(),
             "loss.implementation 'kernel' runs the CUDA kernels and needs CUDA tensors, but the "
             "embeddings are on ",
             input.image_rows.device(), " (use 'tiled' there)");
  const bool keep_bf16 = kernel && input.image_rows.scalar_type() == torch::kBFloat16;
  const PairBatch batch = keep_bf16 ? input : to_compute_dtype(input);
  const auto dtype = batch.image_rows.scalar_type();
  const auto compute = keep_bf16 ? torch::kFloat : dtype;
  const torch::Tensor gamma = gamma_from_raw(gamma_raw, compute);
  HALO_CHECK(!kernel || !batch.partner_dropped.defined(),
             "loss.sink_partner_drop is implemented by the dense and the tiled loss, not by the "
             "CUDA kernels (loss.implementation: kernel)");
  TiledDirectionParams p{batch.row_offset,  b,      options.label_smoothing, options.distill,
                         options.tile_size, kernel, batch.partner_dropped};
  const torch::Tensor image_cols = batch.image_cols.to(dtype),
                      text_cols = batch.text_cols.to(dtype);
  const torch::Tensor text_rows = batch.text_rows.to(dtype);
  HaloClipParts out;
  out.ce_image_to_text = tiled_direction_cross_entropy(batch.image_rows, text_cols, gamma, p);
  out.ce_text_to_image = tiled_direction_cross_entropy(text_rows, image_cols, gamma, p);
  const torch::Tensor diff = batch.image_rows.to(compute) - text_rows.to(compute);
  out.radial = radial_nll(diff.pow(2).mean(1), options.embed_dim);
  out.total =
      0.5 * (out.ce_image_to_text + out.ce_text_to_image) + options.radial_weight * out.radial;
  return out;
}

}  // namespace

int64_t dense_loss_bytes(int64_t n, int64_t m) {
  return 7 * n * m * int64_t{4};
}

LossImplementation resolve_loss_implementation(const std::string& name, int64_t n, int64_t m) {
  const LossImplementation implementation = parse_loss_implementation(name, "loss.implementation");
  if (implementation != LossImplementation::kAuto) return implementation;
  return dense_loss_bytes(n, m) > kAutoDenseBudgetBytes ? LossImplementation::kTiled
                                                        : LossImplementation::kDense;
}

int64_t tiled_loss_bytes(int64_t n, int64_t m, int64_t dim, int64_t tile_size) {
  const int64_t tile = std::min(tile_size, n) * std::min(tile_size, m);
  return (4 * tile + 2 * (n + m) * dim) * int64_t{4};
}

LossImplementation parse_loss_implementation(const std::string& name, const std::string& what) {
  if (name == "dense") return LossImplementation::kDense;
  if (name == "tiled") return LossImplementation::kTiled;
  if (name == "kernel") return LossImplementation::kKernel;
  if (name == "auto") return LossImplementation::kAuto;
  HALO_FAIL(what, " must be dense, tiled, kernel or auto, got '", name, "'");
}

std::string loss_implementation_name(LossImplementation implementation) {
  switch (implementation) {
    case LossImplementation::kDense:
      return "dense";
    case LossImplementation::kTiled:
      return "tiled";
    case LossImplementation::kKernel:
      return "kernel";
    case LossImplementation::kAuto:
      return "auto";
  }
  HALO_FAIL("internal: unknown loss implementation");
}

HaloClipParts halo_clip_loss(const PairBatch& input, const torch::Tensor& gamma_raw, double b,
                             const HaloClipOptions& options) {
  options.validate();
  check_pair_batch(input, options.check_finite);
  HALO_CHECK(input.image_rows.size(1) == options.embed_dim,
             "HALO loss was built for D = ", options.embed_dim,
             " but the embeddings have D = ", input.image_rows.size(1));
  if (use_tiled(options, input)) {
    HALO_CHECK(options.model_bootstrap() == 0.0 && !input.sink_share.defined(),
               "sink_bootstrap and a given sink share are implemented by the dense loss only "
               "(loss.implementation: dense)");
    return tiled_clip_loss(input, gamma_raw, b, options);
  }
  const PairBatch batch = to_compute_dtype(input);
  const auto dtype = batch.image_rows.scalar_type();
  const torch::Tensor gamma = gamma_from_raw(gamma_raw, dtype);
  const torch::Tensor true_col =
      torch::arange(batch.row_offset, batch.row_offset + batch.rows(),
                    torch::TensorOptions().dtype(torch::kLong).device(batch.image_rows.device()));
  const torch::Tensor image_cols = batch.image_cols.to(dtype),
                      text_cols = batch.text_cols.to(dtype);
  const torch::Tensor text_rows = batch.text_rows.to(dtype);

  const DirectionResult i2t =
      direction_cross_entropy(batch.image_rows, text_cols, true_col, gamma, b, options,
                              input.sink_share, input.partner_dropped);
  const DirectionResult t2i = direction_cross_entropy(
      text_rows, image_cols, true_col, gamma, b, options, input.sink_share, input.partner_dropped);
  torch::Tensor radial_rows =
      radial_nll_per_row((batch.image_rows - text_rows).pow(2).mean(1), options.embed_dim);
  if (input.sink_share.defined()) {
    radial_rows = radial_rows * (1.0 - input.sink_share.detach().to(radial_rows.options()));
  } else if (options.model_bootstrap() > 0.0) {
    radial_rows = radial_rows *
                  (1.0 - options.model_bootstrap() * 0.5 * (i2t.pair_abstain + t2i.pair_abstain));
  }
  HaloClipParts out;
  out.ce_image_to_text = i2t.cross_entropy;
  out.ce_text_to_image = t2i.cross_entropy;
  out.radial = radial_rows.mean();
  out.total =
      0.5 * (out.ce_image_to_text + out.ce_text_to_image) + options.radial_weight * out.radial;
  return out;
}

namespace {

// b - S_i2t and b - S_t2i of each pair, in `dtype`, after the checks every pair score makes.
std::pair<torch::Tensor, torch::Tensor> sink_gaps(const torch::Tensor& image_in,
                                                  const torch::Tensor& text_in,
                                                  const torch::Tensor& gamma_raw, double b,
                                                  c10::ScalarType dtype) {
  check_embeddings("image embeddings", image_in, /*check_finite=*/true);
  check_embeddings("text embeddings", text_in, /*check_finite=*/true);
  HALO_CHECK(image_in.sizes() == text_in.sizes(),
             "pair scores need matching image and text shapes, got ", image_in.sizes(), " and ",
             text_in.sizes());
  const torch::Tensor image = image_in.to(dtype);
  const torch::Tensor text = text_in.to(dtype);
  const torch::Tensor gamma = gamma_from_raw(gamma_raw, dtype);
  const torch::Tensor dot2 = 2.0 * (image * text).mean(1);
  return {b - gamma * (dot2 - text.pow(2).mean(1)), b - gamma * (dot2 - image.pow(2).mean(1))};
}

}  // namespace

torch::Tensor pair_abstain_score(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& gamma_raw, double b) {
  const auto [x1, x2] = sink_gaps(image, text, gamma_raw, b, to_compute_dtype(image).scalar_type());
  return 0.5 * (torch::sigmoid(x1) + torch::sigmoid(x2));
}

torch::Tensor pair_abstain_log_odds(const torch::Tensor& image, const torch::Tensor& text,
                                    const torch::Tensor& gamma_raw, double b) {
  const auto [x1, x2] = sink_gaps(image, text, gamma_raw, b, torch::kFloat64);
  // p = (sigmoid(x1) + sigmoid(x2)) / 2 and 1 - p = (sigmoid(-x1) + sigmoid(-x2)) / 2; the halves
  // cancel in the ratio. log sigmoid(x) = -softplus(-x).
  namespace F = torch::nn::functional;
  const auto log_sigmoid = [](const torch::Tensor& x) { return -F::softplus(-x); };
  return torch::logaddexp(log_sigmoid(x1), log_sigmoid(x2)) -
         torch::logaddexp(log_sigmoid(-x1), log_sigmoid(-x2));
}

}  // namespace halo::loss
