// Option builders shared by training and evaluation.
#include "train/components.h"

#include <cstdio>

#include "common/error.h"
#include "loss/halo_clip_loss.h"

namespace halo::train {

data::LoaderOptions loader_options(const Config& c, int64_t rank, int64_t world_size) {
  data::LoaderOptions o;
  // train.batch_size is the global batch; each rank loads its disjoint share of it.
  HALO_CHECK(c.train.batch_size % world_size == 0, "train.batch_size (", c.train.batch_size,
             ") must be a multiple of the number of processes (WORLD_SIZE = ", world_size, ")");
  HALO_CHECK((c.train.batch_size / world_size) % c.train.accum_steps == 0, "train.accum_steps (",
             c.train.accum_steps, ") must divide each process's share of train.batch_size (",
             c.train.batch_size, " / WORLD_SIZE ", world_size, " = ",
             c.train.batch_size / world_size, ")");
  HALO_CHECK(
      !c.data.skip_bad || world_size == 1,
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
    o.transform.mean[static_cast<size_t>(i)] =
        static_cast<float>(c.data.mean[static_cast<size_t>(i)]);
    o.transform.std[static_cast<size_t>(i)] =
        static_cast<float>(c.data.std[static_cast<size_t>(i)]);
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

std::string step_cost_summary(const Config& c, int64_t world_size) {
  auto size = [](int64_t bytes) {
    char text[32];
    const double mib = static_cast<double>(bytes) / (1 << 20);
    if (mib >= 1024)
      std::snprintf(text, sizeof text, "%.1f GiB", mib / 1024);
    else
      std::snprintf(text, sizeof text, "%.1f MiB", mib);
    return std::string(text);
  };
  const int64_t global = c.train.batch_size, share = global / world_size,
                micro = share / c.train.accum_steps;
  const int64_t d = c.model.embed_dim;
  const loss::ContrastiveLossOptions o = loss_options(c);
  std::string out = "# One step with " + std::to_string(world_size) + " process(es):\n";
  out += "#   global batch " + std::to_string(global) + " pairs = " + std::to_string(world_size) +
         " x " + std::to_string(share) + "; each process encodes its share in " +
         std::to_string(c.train.accum_steps) + " micro-batch(es) of " + std::to_string(micro) +
         " (train.accum_steps)\n";
  out += "#   loss of " + std::to_string(share) + " rows x " + std::to_string(global) +
         " columns, D = " + std::to_string(d) + ": dense about " +
         size(loss::dense_loss_bytes(share, global));
  if (c.loss.name == "halo") {
    const auto runs = loss::resolve_loss_implementation(c.loss.implementation, share, global);
    out += ", tiled about " + size(loss::tiled_loss_bytes(share, global, d, o.tile_size)) +
           "; loss.implementation " + c.loss.implementation + " runs " +
           loss::loss_implementation_name(runs);
    if (c.loss.implementation == "auto")
      out += " (tiled above " + size(loss::kAutoDenseBudgetBytes) + " dense)";
    out += "\n";
  } else {
    out += " (" + c.loss.name + " has only the dense implementation)\n";
  }
  return out;
}

}  // namespace halo::train
