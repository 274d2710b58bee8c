// The tiled HALO direction in ATen, on any device (CPU, or CUDA where cuBLAS does the tiles'
// products): operations on (tile x tile) blocks of the shifted distance matrix, never the whole
// matrix. Forward: online log-sum-exp per row of the model's
// logits (and, for distillation, of the target logits together with the target-weighted logit
// sum). Backward: each tile of S is recomputed, G = (softmax - targets) * grad / n formed for
// the tile only, and accumulated into G C, G^T Q and colsum(G) (docs/kernel.md).
#include "loss/halo_tiled.h"

#include <algorithm>
#include <limits>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::loss {

namespace {

// Everything a tile needs that depends on whole rows or columns, computed once.
struct Precomputed {
  int64_t n, m, d;
  torch::Tensor neg_c_sq_over_d;  // 1 x M: -||c_j||^2 / D
  torch::Tensor q_shift;          // n x 1: gamma * mean(q_i^2), the per-row term of the true logits
  torch::Tensor g;                // 0-d gamma
};

Precomputed precompute(const torch::Tensor& q, const torch::Tensor& c, const torch::Tensor& gamma) {
  Precomputed p{q.size(0), c.size(0), q.size(1), {}, {}, gamma.reshape({})};
  p.neg_c_sq_over_d = c.pow(2).sum(1).div(-static_cast<double>(p.d)).unsqueeze(0);
  p.q_shift = (p.g * q.pow(2).mean(1)).unsqueeze(1);
  return p;
}

// Rows [r0, r0 + nr) by columns [c0, c0 + nc) of S, as in shifted_distance_forward.
torch::Tensor s_tile(const torch::Tensor& q, const torch::Tensor& c, const Precomputed& p,
                     int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
  torch::Tensor s = torch::addmm(p.neg_c_sq_over_d.narrow(1, c0, nc), q.narrow(0, r0, nr),
                                 c.narrow(0, c0, nc).t(), /*beta=*/1,
                                 /*alpha=*/2.0 / static_cast<double>(p.d));
  return s.mul_(p.g);
}

// The part of the tile's diagonal that holds true columns (column row_offset + i of row i),
// as a view, or an undefined tensor when the tile holds none.
torch::Tensor true_entries(const torch::Tensor& tile, int64_t row_offset, int64_t r0, int64_t c0) {
  const int64_t nr = tile.size(0), nc = tile.size(1);
  const int64_t lo = std::max<int64_t>(r0, c0 - row_offset);
  const int64_t hi = std::min<int64_t>(r0 + nr, c0 + nc - row_offset);
  if (hi <= lo) return {};
  return tile.narrow(0, lo - r0, hi - lo).narrow(1, lo + row_offset - c0, hi - lo).diagonal();
}

// Distillation target logits of a tile: min(S - gamma mean(q^2), 0) / eps, 0 at true columns.
torch::Tensor target_logits(const torch::Tensor& s, const Precomputed& p, int64_t r0,
                            const TiledDirectionParams& params, int64_t c0) {
  torch::Tensor z = torch::clamp_max(s - p.q_shift.narrow(0, r0, s.size(0)), 0.0).div_(params.eps);
  torch::Tensor diag = true_entries(z, params.row_offset, r0, c0);
  if (diag.defined()) diag.fill_(0.0);
  return z;
}

// Partner dropout: the tile's true entries of dropped rows set to -inf (they leave the softmax).
void hide_dropped_partners(torch::Tensor& s, const TiledDirectionParams& params, int64_t r0,
                           int64_t c0) {
  if (!params.dropped.defined()) return;
  torch::Tensor diag = true_entries(s, params.row_offset, r0, c0);
  if (!diag.defined()) return;
  const int64_t first = std::max<int64_t>(r0, c0 - params.row_offset);
  const torch::Tensor dropped = params.dropped.narrow(0, first, diag.size(0));
  diag.masked_fill_(dropped, -std::numeric_limits<double>::infinity());
}

// Online log-sum-exp of a row block: running max and sum of exp(x - max), optionally with a
// running weighted sum sum_j exp(x_j - max) w_j.
struct OnlineLse {
  torch::Tensor max, sum, weighted;
  OnlineLse(int64_t rows, const torch::TensorOptions& o, bool with_weights)
      : max(torch::full({rows}, -std::numeric_limits<double>::infinity(), o)),
        sum(torch::zeros({rows}, o)),
        weighted(with_weights ? torch::zeros({rows}, o) : torch::Tensor()) {}
  void add(const torch::Tensor& x, const torch::Tensor& w = {}) {
    const torch::Tensor new_max = torch::maximum(max, x.amax(1));
    const torch::Tensor rescale = torch::exp(max - new_max);
    const torch::Tensor e = (x - new_max.unsqueeze(1)).exp_();
    sum = sum * rescale + e.sum(1);
    if (w.defined()) weighted = weighted * rescale + (e * w).sum(1);
    max = new_max;
  }
  torch::Tensor lse() const { return max + torch::log(sum); }
};

void check_tile(int64_t tile) {
  HALO_CHECK(tile >= 1, "the loss tile size must be >= 1, got ", tile);
}

}  // namespace

TiledForward tiled_direction_forward_aten(const torch::Tensor& q, const torch::Tensor& c,
                                          const torch::Tensor& gamma,
                                          const TiledDirectionParams& params) {
  check_tile(params.tile);
  torch::NoGradGuard no_grad;
  const Precomputed p = precompute(q, c, gamma);
  const auto o = q.options();
  TiledForward out;
  out.lse_sink = torch::empty({p.n}, o);
  if (params.distill) out.target_lse = torch::empty({p.n}, o);
  torch::Tensor target_sum = torch::empty({p.n}, o);  // sum_j T_ij S_ij

  for (int64_t r0 = 0; r0 < p.n; r0 += params.tile) {
    const int64_t nr = std::min(params.tile, p.n - r0);
    OnlineLse model(nr, o, false), target(nr, o, params.distill);
    torch::Tensor row_sum = torch::zeros({nr}, o), true_s = torch::zeros({nr}, o);
    for (int64_t c0 = 0; c0 < p.m; c0 += params.tile) {
      const int64_t nc = std::min(params.tile, p.m - c0);
      const torch::Tensor s = s_tile(q, c, p, r0, nr, c0, nc);
      if (params.dropped.defined()) {
        torch::Tensor seen = s.clone();
        hide_dropped_partners(seen, params, r0, c0);
        model.add(seen);
      } else {
        model.add(s);
      }
      if (params.distill) {
        target.add(target_logits(s, p, r0, params, c0), s);
      } else {
        row_sum += s.sum(1);
        const torch::Tensor diag = true_entries(s, params.row_offset, r0, c0);
        if (diag.defined()) {
          const int64_t first = std::max<int64_t>(r0, c0 - params.row_offset) - r0;
          true_s.narrow(0, first, diag.size(0)).copy_(diag);
        }
      }
    }
    const torch::Tensor lse = model.lse();
    out.lse_sink.narrow(0, r0, nr).copy_(torch::logaddexp(lse, torch::full_like(lse, params.b)));
    if (params.distill) {
      out.target_lse.narrow(0, r0, nr).copy_(target.lse());
      target_sum.narrow(0, r0, nr).copy_(target.weighted / target.sum);
    } else {
      const double m = static_cast<double>(p.m);
      target_sum.narrow(0, r0, nr).copy_(row_sum * (params.eps / m) + true_s * (1.0 - params.eps));
    }
  }
  // A dropped row's whole target is the sink: its target-weighted logit is b.
  if (params.dropped.defined()) target_sum.masked_fill_(params.dropped, params.b);
  out.ce = (out.lse_sink - target_sum).mean();
  return out;
}

TiledGrads tiled_direction_backward_aten(const torch::Tensor& grad_out, const torch::Tensor& q,
                                         const torch::Tensor& c, const torch::Tensor& gamma,
                                         const TiledForward& saved,
                                         const TiledDirectionParams& params, bool need_q,
                                         bool need_c, bool need_gamma) {
  check_tile(params.tile);
  torch::NoGradGuard no_grad;
  const Precomputed p = precompute(q, c, gamma);
  const torch::Tensor scale = grad_out.reshape({}).to(q.scalar_type()) / static_cast<double>(p.n);
  const bool want_gc = need_q || need_gamma, want_cols = need_c || need_gamma;
  torch::Tensor gc = want_gc ? torch::zeros_like(q) : torch::Tensor();  // G C
  torch::Tensor gtq = need_c ? torch::zeros_like(c) : torch::Tensor();  // G^T Q
  torch::Tensor colsum = want_cols ? torch::zeros({p.m}, q.options()) : torch::Tensor();
  const double uniform = params.eps / static_cast<double>(p.m);

  for (int64_t r0 = 0; r0 < p.n; r0 += params.tile) {
    const int64_t nr = std::min(params.tile, p.n - r0);
    const torch::Tensor lse = saved.lse_sink.narrow(0, r0, nr).unsqueeze(1);
    for (int64_t c0 = 0; c0 < p.m; c0 += params.tile) {
      const int64_t nc = std::min(params.tile, p.m - c0);
      const torch::Tensor s = s_tile(q, c, p, r0, nr, c0, nc);
      torch::Tensor seen = s;
      if (params.dropped.defined()) {
        seen = s.clone();
        hide_dropped_partners(seen, params, r0, c0);
      }
      torch::Tensor g = (seen - lse).exp_();  // the model's probabilities, sink included in lse
      // The targets over the columns (none for a dropped row: its target is the sink).
      torch::Tensor t;
      if (params.distill) {
        t = target_logits(s, p, r0, params, c0)
                .sub_(saved.target_lse.narrow(0, r0, nr).unsqueeze(1))
                .exp_();
      } else {
        t = torch::full_like(g, uniform);
        torch::Tensor diag = true_entries(t, params.row_offset, r0, c0);
        if (diag.defined()) diag += (1.0 - params.eps);
      }
      if (params.dropped.defined())
        t.masked_fill_(params.dropped.narrow(0, r0, nr).unsqueeze(1), 0.0);
      g -= t;
      g.mul_(scale);
      if (want_gc) gc.narrow(0, r0, nr).add_(torch::mm(g, c.narrow(0, c0, nc)));
      if (want_cols) colsum.narrow(0, c0, nc).add_(g.sum(0));
      if (need_c) gtq.narrow(0, c0, nc).add_(torch::mm(g.t(), q.narrow(0, r0, nr)));
    }
  }
  // The shifted distance backward (shifted_distance.cpp) applied to the accumulated tiles.
  const double D = static_cast<double>(p.d);
  TiledGrads out;
  if (need_q) out.q = gc * (p.g * (2.0 / D));
  if (need_c) out.c = (gtq - colsum.unsqueeze(1) * c) * (p.g * (2.0 / D));
  if (need_gamma) {
    const torch::Tensor dot_term = (q * gc).sum() * (2.0 / D);
    const torch::Tensor norm_term = (colsum * c.pow(2).sum(1)).sum() / D;
    out.gamma = (dot_term - norm_term).reshape(gamma.sizes());
  }
  return out;
}

}  // namespace halo::loss
