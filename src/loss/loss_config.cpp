// Validation of the loss options (see loss_config.h): every range and combination of the loss
// section is checked here and nowhere else.
#include "loss/loss_config.h"

#include <cmath>

#include "common/error.h"
#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"

namespace halo::loss {

void LossConfig::validate() const {
  const auto& names = contrastive_loss_names();
  HALO_CHECK(std::find(names.begin(), names.end(), name) != names.end(), "unknown loss '", name,
             "': loss.name must be halo, infonce or siglip");
  check_label_smoothing(label_smoothing, distill && name == "halo", "loss.");
  parse_loss_implementation(implementation, "loss.implementation");
  HALO_CHECK(temperature == "softplus" || temperature == "log",
             "loss.temperature must be softplus or log, got '", temperature, "'");
  HALO_CHECK(radial_weight >= 0 && std::isfinite(radial_weight),
             "loss.radial_weight must be >= 0, got ", radial_weight);
  HALO_CHECK(sink_bootstrap >= 0 && sink_bootstrap < 1,
             "loss.sink_bootstrap must be in [0, 1), got ", sink_bootstrap);
  HALO_CHECK(sink_bootstrap == 0 || implementation == "dense" || name != "halo",
             "loss.sink_bootstrap needs loss.implementation: dense (the tiled loss does not "
             "implement it)");
  HALO_CHECK(sink_bootstrap_from == "model" || sink_bootstrap_from == "history",
             "loss.sink_bootstrap_from must be model or history, got '", sink_bootstrap_from, "'");
  HALO_CHECK(sink_bootstrap_from == "model" || (name != "siglip" && sink_bootstrap > 0),
             "loss.sink_bootstrap_from: history needs loss.name: halo or infonce and "
             "loss.sink_bootstrap > 0");
  HALO_CHECK(sink_history_fraction > 0 && sink_history_fraction < 1,
             "loss.sink_history_fraction must be in (0, 1), got ", sink_history_fraction);
  HALO_CHECK(sink_partner_drop >= 0 && sink_partner_drop < 1,
             "loss.sink_partner_drop must be in [0, 1), got ", sink_partner_drop);
  HALO_CHECK(sink_partner_drop == 0 || name == "halo",
             "loss.sink_partner_drop needs loss.name: halo (the sink is its target), got '", name,
             "'");
  HALO_CHECK(sink_partner_drop == 0 || implementation != "kernel",
             "loss.sink_partner_drop is implemented by the dense and the tiled loss, not by "
             "loss.implementation: kernel");
}

void ContrastiveLossOptions::validate() const {
  LossConfig::validate();
  HALO_CHECK(tile_size >= 1, "the loss tile size must be >= 1, got ", tile_size);
}

}  // namespace halo::loss
