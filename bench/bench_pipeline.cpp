// bench_pipeline: throughput of the data pipeline alone (decode + augment + tokenize, by worker
// count) and of the training step alone (forward, loss, backward, AdamW on a fixed batch), for a
// configuration (e.g. configs/tiny.yaml). Prints images per second with the shapes used.
#include <chrono>
#include <cstdio>
#include <iostream>

#include <torch/torch.h>

#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  halo::ArgParser args("bench_pipeline",
                       "Images per second of the data pipeline alone and of the training step alone.");
  args.required("config", "FILE", "training configuration (model, data and batch size)")
      .repeated("set", "KEY=VALUE", "configuration override")
      .required("tokenizer", "FILE", "a tokenizer .model (halo-clip tokenizer train)")
      .option("batches", "N", "batches to time per measurement", "10")
      .option("steps", "N", "training steps to time", "10");
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    const int threads = halo::configure_cpu_threads();
    const auto c = halo::train::load_config(args.str("config"), args.all("set"));
    const auto tokenizer = halo::data::Tokenizer::load(args.str("tokenizer"));
    const int64_t batches = args.integer("batches"), steps = args.integer("steps");
    const int64_t B = c.train.batch_size, L = c.model.text.context_length;
    std::printf("bench_pipeline: %s, batch %lld, image %lld px, %d torch threads\n", args.str("config").c_str(),
                static_cast<long long>(B), static_cast<long long>(c.model.image.image_size), threads);

    // ---- the data pipeline alone -----------------------------------------------------------
    auto manifest = std::make_shared<halo::data::Manifest>(halo::data::read_manifest(
        c.data.train_manifest, {c.data.separator[0], c.data.image_key, c.data.caption_key, c.data.skip_bad}));
    for (int64_t workers = 1; workers <= c.data.workers; ++workers) {
      halo::data::LoaderOptions o;
      o.batch_size = B;
      o.workers = workers;
      o.prefetch_batches = c.data.prefetch_batches;
      o.transform.size = c.model.image.image_size;
      o.transform.random_resized_crop = c.data.augment.random_resized_crop;
      o.transform.scale_min = c.data.augment.crop_scale_min;
      halo::data::BatchLoader loader(manifest, [&](const std::vector<std::string>& t) { return tokenizer.encode(t, L); }, o);
      int64_t images = 0, epoch = 0;
      const auto start = Clock::now();
      loader.start_epoch(epoch);
      for (int64_t b = 0; b < batches; ++b) {
        auto batch = loader.next();
        if (!batch) {
          loader.start_epoch(++epoch);
          batch = loader.next();
        }
        images += batch->images.size(0);
      }
      std::printf("data pipeline, %lld worker(s): %8.0f images/s  (%lld batches of %lld, %lld-image manifest)\n",
                  static_cast<long long>(workers), images / seconds_since(start), static_cast<long long>(batches),
                  static_cast<long long>(B), static_cast<long long>(manifest->size()));
    }

    // ---- the training step alone (fixed random batch) ------------------------------------------
    torch::manual_seed(0);
    halo::encoders::ClipModel model(c.model, tokenizer.vocab_size(), tokenizer.eos_id());
    halo::loss::ContrastiveLossOptions lo;
    lo.name = c.loss.name, lo.embed_dim = c.model.embed_dim, lo.num_candidates = B;
    auto loss = halo::loss::make_contrastive_loss(lo);
    auto optimizer = halo::train::make_optimizer(*model, *loss, c.optim);
    const int64_t S = c.model.image.image_size;
    const torch::Tensor images = torch::randn({B, 3, S, S});
    const torch::Tensor tokens = tokenizer.encode(manifest->captions, L).narrow(0, 0, std::min<int64_t>(B, manifest->size()));
    HALO_CHECK(tokens.size(0) == B, "the manifest has fewer captions than one batch");
    auto step = [&] {
      auto out = loss->forward(halo::loss::PairBatch::local(model->encode_image(images), model->encode_text(tokens)));
      optimizer->zero_grad();
      out.total.backward();
      optimizer->step();
    };
    step();  // warm-up
    const auto start = Clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    const double per_step = seconds_since(start) / static_cast<double>(steps);
    std::printf("training step (%s loss): %8.0f images/s  (%.1f ms per step of %lld pairs)\n", c.loss.name.c_str(),
                B / per_step, per_step * 1e3, static_cast<long long>(B));
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_pipeline: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_pipeline: error: " << e.what() << "\n";
  }
  return 1;
}
