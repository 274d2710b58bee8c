// Option builders shared by training and evaluation.
#include "train/components.h"

#include "common/error.h"

namespace halo::train {

data::LoaderOptions loader_options(const Config& c, int64_t rank, int64_t world_size) {
  data::LoaderOptions o;
  // train.batch_size is the global batch; each rank loads its disjoint share of it.
  HALO_CHECK(c.train.batch_size % world_size == 0, "train.batch_size (", c.train.batch_size,
             ") must be a multiple of the number of processes (WORLD_SIZE = ", world_size, ")");
  HALO_CHECK((c.train.batch_size / world_size) % c.train.accum_steps == 0, "train.accum_steps (", c.train.accum_steps,
             ") must divide each process's share of train.batch_size (", c.train.batch_size, " / WORLD_SIZE ",
             world_size, " = ", c.train.batch_size / world_size, ")");
  HALO_CHECK(!c.data.skip_bad || world_size == 1,
             "data.skip_bad is not supported with several processes (every rank needs full batches)");
  o.batch_size = c.train.batch_size / world_size;
  o.rank = rank;
  o.world_size = world_size;
  o.workers = c.data.workers;
  o.prefetch_batches = c.data.prefetch_batches;
  o.seed = static_cast<uint64_t>(c.train.seed);
  o.skip_bad = c.data.skip_bad;
  o.transform.size = c.model.image.image_size;
  o.transform.random_resized_crop = c.data.augment.random_resized_crop;
  o.transform.scale_min = c.data.augment.crop_scale_min;
  o.transform.scale_max = c.data.augment.crop_scale_max;
  o.transform.horizontal_flip = c.data.augment.horizontal_flip;
  for (int i = 0; i < 3; ++i) {
    o.transform.mean[static_cast<size_t>(i)] = static_cast<float>(c.data.mean[static_cast<size_t>(i)]);
    o.transform.std[static_cast<size_t>(i)] = static_cast<float>(c.data.std[static_cast<size_t>(i)]);
  }
  return o;
}

loss::ContrastiveLossOptions loss_options(const Config& c) {
  loss::ContrastiveLossOptions o;
  static_cast<loss::LossConfig&>(o) = c.loss;
  o.embed_dim = c.model.embed_dim;
  o.num_candidates = c.train.batch_size;
  return o;
}

data::LoaderOptions eval_loader_options(const Config& c, int64_t batch_size) {
  data::LoaderOptions o = loader_options(c);
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.transform.random_resized_crop = false;
  o.transform.horizontal_flip = false;
  return o;
}

}  // namespace halo::train
