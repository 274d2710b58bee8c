// Validation of the model section (see model_config.h).
#include "encoders/model_config.h"

#include <cmath>

#include "common/error.h"

namespace halo::encoders {

void ModelConfig::validate() const {
  const auto& im = image;
  const auto& tx = text;
  HALO_CHECK(embed_dim >= 2, "model.embed_dim must be >= 2, got ", embed_dim);
  HALO_CHECK(im.type == "vit" || im.type == "resnet",
             "model.image.type must be vit or resnet, got '", im.type, "'");
  HALO_CHECK(im.image_size >= 8, "model.image.image_size must be >= 8, got ", im.image_size);
  HALO_CHECK(im.width >= 4 && im.layers >= 1, "model.image.width must be >= 4 and layers >= 1");
  if (im.type == "vit") {
    HALO_CHECK(im.patch_size >= 1 && im.image_size % im.patch_size == 0, "model.image.patch_size (",
               im.patch_size, ") must divide model.image.image_size (", im.image_size, ")");
    HALO_CHECK(im.heads >= 1 && im.width % im.heads == 0, "model.image.heads (", im.heads,
               ") must divide model.image.width (", im.width, ")");
    HALO_CHECK(im.pool == "cls" || im.pool == "mean", "model.image.pool must be cls or mean, got '",
               im.pool, "'");
  }
  HALO_CHECK(im.mlp_ratio > 0 && std::isfinite(im.mlp_ratio),
             "model.image.mlp_ratio must be > 0 and finite, got ", im.mlp_ratio);
  HALO_CHECK(tx.context_length >= 2, "model.text.context_length must be >= 2, got ",
             tx.context_length);
  HALO_CHECK(tx.heads >= 1 && tx.width % tx.heads == 0, "model.text.heads (", tx.heads,
             ") must divide model.text.width (", tx.width, ")");
  HALO_CHECK(tx.layers >= 1, "model.text.layers must be >= 1, got ", tx.layers);
  HALO_CHECK(tx.mlp_ratio > 0 && std::isfinite(tx.mlp_ratio),
             "model.text.mlp_ratio must be > 0 and finite, got ", tx.mlp_ratio);
  HALO_CHECK(center_momentum > 0 && center_momentum <= 1,
             "model.center_momentum must be in (0, 1], got ", center_momentum);
}

}  // namespace halo::encoders
