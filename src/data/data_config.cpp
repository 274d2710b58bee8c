// Validation of the data and tokenizer sections (see data_config.h).
#include "data/data_config.h"

#include <cmath>

#include "common/error.h"

namespace halo::data {

void DataConfig::validate() const {
  HALO_CHECK(separator.size() == 1, "data.separator must be one character, got '", separator, "'");
  HALO_CHECK(!image_key.empty() && !caption_key.empty(),
             "data.image_key and data.caption_key must be set");
  HALO_CHECK(workers >= 1 && prefetch_batches >= 1,
             "data.workers and data.prefetch_batches must be >= 1");
  HALO_CHECK(shuffle_buffer >= 1, "data.shuffle_buffer must be >= 1, got ", shuffle_buffer);
  HALO_CHECK(mean.size() == 3 && std.size() == 3, "data.mean and data.std need 3 values (R, G, B)");
  for (double m : mean) HALO_CHECK(std::isfinite(m), "data.mean values must be finite, got ", m);
  for (double s : std)
    HALO_CHECK(s > 0 && std::isfinite(s), "data.std values must be > 0, got ", s);
  HALO_CHECK(
      folds == 0 || (folds >= 2 && holdout_fold >= 0 && holdout_fold < folds),
      "data.folds must be 0 (off) or >= 2 with 0 <= data.holdout_fold < data.folds, got folds ",
      folds, " and holdout_fold ", holdout_fold);
  HALO_CHECK(augment.crop_scale_min > 0 && augment.crop_scale_min <= augment.crop_scale_max &&
                 augment.crop_scale_max <= 1,
             "data.augment.crop_scale_min and data.augment.crop_scale_max need 0 < crop_scale_min "
             "<= crop_scale_max <= 1, got ",
             augment.crop_scale_min, " and ", augment.crop_scale_max);
}

ManifestOptions DataConfig::manifest_options() const {
  return ManifestOptions{separator[0], image_key, caption_key, skip_bad};
}

void TokenizerConfig::validate() const {
  HALO_CHECK(vocab_size >= 8, "tokenizer.vocab_size must be >= 8, got ", vocab_size);
}

}  // namespace halo::data
