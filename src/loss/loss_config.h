// The loss section of the configuration (YAML `loss:`), declared once: its fields with their
// defaults, the visit() that reads and writes them, and validate(), the one place where their
// ranges and combinations are checked. The loss modules read these options directly.
#pragma once
#include <cstdint>
#include <string>

namespace halo::loss {

struct LossConfig {
  std::string name = "halo";     // halo | infonce | siglip
  double label_smoothing = 0.1;  // halo: target mass off the true column (distill: its scale)
  bool distill = true;           // halo: self-distillation targets (else label smoothing)
  bool learn_temperature = true;
  std::string implementation =
      "dense";  // halo: dense | tiled | kernel | auto (tiled, kernel: no n x M matrix)
  // HALO options of docs/loss.md "Options against memorisation"; the defaults are the reference.
  std::string temperature = "softplus";  // halo: gamma = softplus(raw) | log: gamma = exp(raw)
  double radial_weight = 1.0;            // halo: weight of the radial term
  // Share of a rejected pair's target put on the sink (halo, dense loss); with
  // sink_bootstrap_from: history also infonce (a weight 1 - share).
  double sink_bootstrap = 0.0;
  // What decides a pair's share: model (beta * its current abstention, computed by the loss) |
  // history (beta for the hardest sink_history_fraction of the batch by their mean margin over
  // the earlier steps that trained on them, 0 for the others and in a pair's first epoch; the
  // trainer passes the shares with the batch; needs the pair dynamics; halo or infonce, which
  // weights those rows' cross-entropy by 1 - beta)
  std::string sink_bootstrap_from = "model";
  double sink_history_fraction = 0.25;
  // Partner dropout (halo; dense or tiled): in each step this share of the global batch's pairs
  // lose their partner from the candidates and take the sink as target (loss/partner_drop.h).
  double sink_partner_drop = 0.0;

  template <class V>
  void visit(V& v) {
    v("name", name), v("label_smoothing", label_smoothing), v("distill", distill);
    v("learn_temperature", learn_temperature), v("implementation", implementation);
    v("temperature", temperature), v("radial_weight", radial_weight);
    v("sink_bootstrap", sink_bootstrap), v("sink_bootstrap_from", sink_bootstrap_from);
    v("sink_history_fraction", sink_history_fraction), v("sink_partner_drop", sink_partner_drop);
  }
  // Throws halo::Error naming the key (loss.*) of the first invalid value or combination.
  void validate() const;
  // The loss computes its own shares from the model's abstention (sink_bootstrap_from: model).
  double model_bootstrap() const { return sink_bootstrap_from == "model" ? sink_bootstrap : 0.0; }
  bool bootstrap_from_history() const { return sink_bootstrap_from == "history"; }
};

// What a loss module needs beyond the user's section: the shapes the model and the batch give,
// and how the HALO loss computes (tile size, the per-call finite check of its inputs).
struct ContrastiveLossOptions : LossConfig {
  int64_t embed_dim = 512;
  int64_t num_candidates = 256;  // HALO's K in the abstain bias: the global batch size
  int64_t tile_size = 1024;      // HALO tiled on CPU: rows and columns per tile
  // Reject NaN or infinite embeddings with an error before computing (one host sync per call).
  // The trainer turns it off and checks the loss on the device instead (docs/training.md).
  bool check_finite = true;
  void validate() const;  // LossConfig::validate() and the shapes
};

// The HALO functions (halo_clip_loss.h) take the same options.
using HaloClipOptions = ContrastiveLossOptions;

}  // namespace halo::loss
