#!/usr/bin/python3
"""Executable oracle for the batch-level HALO loss with partner dropout
(loss.sink_partner_drop), and the writer of its golden cases
(tests/fixtures/halo_partner_drop.json). Debian's python3-torch is enough.

The batch loss (docs/loss.md): for N aligned pairs, image i's candidates are the
M texts (true column row_offset + i) plus the origin sink with the fixed logit b,
S[i, j] = gamma * (2 q_i . c_j - ||c_j||^2) / D, targets from self-distillation
(or label smoothing) with no mass on the sink; the same with the roles swapped;
and the radial term on r^2 = ||x_i - t_i||^2 / D.

Partner dropout: a row i marked `dropped` loses its true candidate (the column
is removed from its softmax, in both directions) and its target is the sink
alone: CE_i = log(sum_{j != true} exp S_ij + exp b) - b. Other rows and the
radial term are unchanged.

usage: halo_sink_oracle.py --out FILE.json [--seed S] [--cases N]

Format: {"halo_clip_partner_drop": [ {"name", "embed_dim", "label_smoothing",
  "distill", "gamma_raw", "abstain_bias", "row_offset", "image_rows": n x D,
  "text_rows": n x D, "image_cols": M x D, "text_cols": M x D (rows included at
  row_offset), "dropped": [n 0/1], "expected": {"loss", "ce_image_to_text",
  "ce_text_to_image", "radial", "grad_image_rows", "grad_text_rows",
  "grad_image_cols", "grad_text_cols", "grad_gamma_raw"} } ]}
Losses are means over the rows; compare with a relative tolerance of about 1e-4.
"""
import argparse
import json
import math
import random

import torch
import torch.nn.functional as F


def shifted(q, c, gamma):
    """S[i, j] = gamma * (2 q_i . c_j / D - mean(c_j^2))."""
    return gamma * (2.0 * (q @ c.T) / q.size(1) - c.pow(2).mean(1)[None, :])


def targets(S, gamma, q, true_col, eps, distill):
    """Soft targets over the M columns (rows sum to 1, nothing on the sink)."""
    n, m = S.shape
    rows = torch.arange(n)
    with torch.no_grad():
        if distill:
            z = torch.clamp(S - gamma * q.pow(2).mean(1, keepdim=True), max=0.0) / eps
            z[rows, true_col] = 0.0
            return F.softmax(z, dim=1)
        t = torch.full((n, m), eps / m, dtype=S.dtype)
        t[rows, true_col] += 1.0 - eps
        return t


def direction(q, c, gamma, b, true_col, eps, distill, dropped):
    """Mean over rows of the cross-entropy against [S_i, b], partner dropout applied."""
    S = shifted(q, c, gamma)
    n = q.size(0)
    t = targets(S, gamma, q, true_col, eps, distill)
    hide = torch.zeros_like(S, dtype=torch.bool)
    hide[torch.arange(n), true_col] = dropped
    S_seen = S.masked_fill(hide, float("-inf"))
    lse = torch.logaddexp(torch.logsumexp(S_seen, 1), torch.full((n,), b, dtype=S.dtype))
    kept_rows = lse - (t * S).sum(1)
    dropped_rows = lse - b
    return torch.where(dropped, dropped_rows, kept_rows).mean()


def loss(image_rows, text_rows, image_cols, text_cols, row_offset, gamma_raw, b, eps, distill,
         dropped):
    """Returns (total, ce_image_to_text, ce_text_to_image, radial)."""
    gamma = F.softplus(gamma_raw)
    n, D = image_rows.shape
    true_col = torch.arange(row_offset, row_offset + n)
    ce_i2t = direction(image_rows, text_cols, gamma, b, true_col, eps, distill, dropped)
    ce_t2i = direction(text_rows, image_cols, gamma, b, true_col, eps, distill, dropped)
    r_sq = (image_rows - text_rows).pow(2).mean(1).clamp_min(1e-6)
    radial = (-((0.5 - 1.0 / D) * torch.log(r_sq) - 0.5 * r_sq)).mean()
    return 0.5 * (ce_i2t + ce_t2i) + radial, ce_i2t, ce_t2i, radial


def abstain_bias(D, K, eps):
    """The fixed sink logit b of docs/loss.md."""
    r_sq = 1.0 - 2.0 / D
    gamma0 = 20.0 / (2.0 - r_sq)
    return gamma0 * (1.0 - r_sq) - math.log((1.0 - eps + eps / K) / (eps / K))


def t2l(t):
    return t.detach().to(torch.float32).tolist()


def case(rng, name):
    n, D = rng.choice([1, 5, 16, 33]), rng.choice([4, 16, 64])
    offset = rng.choice([0, 0, 3, 2 * n])
    M = offset + n + rng.choice([0, 7, n])
    eps, distill = rng.choice([0.05, 0.1, 0.2]), rng.choice([True, False])
    b = abstain_bias(D, M, eps)
    gamma0 = 20.0 / (1.0 + 2.0 / D)
    gamma_raw = torch.tensor([math.log(math.expm1(gamma0)) + rng.uniform(-2.0, 2.0)],
                             dtype=torch.float64, requires_grad=True)
    image_cols = torch.randn(M, D, dtype=torch.float64)
    text_cols = image_cols * rng.uniform(0.0, 1.0) + torch.randn(M, D, dtype=torch.float64)
    image_rows = image_cols[offset:offset + n].clone().requires_grad_(True)
    text_rows = text_cols[offset:offset + n].clone().requires_grad_(True)
    image_cols = image_cols.clone().requires_grad_(True)
    text_cols = text_cols.clone().requires_grad_(True)
    p = rng.choice([0.0, 0.3, 0.5, 1.0])
    dropped = torch.tensor([rng.random() < p for _ in range(n)], dtype=torch.bool)
    # The rows inside the columns are the same pairs: use the row tensors there (as the C++
    # loss does in one process) so that each gradient is counted once.
    cols_i = torch.cat([image_cols[:offset], image_rows, image_cols[offset + n:]])
    cols_t = torch.cat([text_cols[:offset], text_rows, text_cols[offset + n:]])
    total, a, c, r = loss(image_rows, text_rows, cols_i, cols_t, offset, gamma_raw, b, eps,
                          distill, dropped)
    total.backward()
    return {"name": name, "embed_dim": D, "label_smoothing": eps, "distill": distill,
            "gamma_raw": gamma_raw.item(), "abstain_bias": b, "row_offset": offset,
            "image_rows": t2l(image_rows), "text_rows": t2l(text_rows),
            "image_cols": t2l(cols_i), "text_cols": t2l(cols_t),
            "dropped": [int(x) for x in dropped.tolist()],
            "expected": {"loss": total.item(), "ce_image_to_text": a.item(),
                         "ce_text_to_image": c.item(), "radial": r.item(),
                         "grad_image_rows": t2l(image_rows.grad), "grad_text_rows": t2l(text_rows.grad),
                         "grad_image_cols": t2l(image_cols.grad), "grad_text_cols": t2l(text_cols.grad),
                         "grad_gamma_raw": gamma_raw.grad.item()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=12)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    torch.manual_seed(a.seed)
    cases = [case(rng, "partner_drop_%d" % i) for i in range(a.cases)]
    with open(a.out, "w") as f:
        json.dump({"halo_clip_partner_drop": cases}, f)


if __name__ == "__main__":
    main()
