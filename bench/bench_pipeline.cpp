// bench_pipeline: throughput of the data pipeline alone (decode + augment + tokenize, by worker
// count) and of the training step alone (forward, loss, backward, gradient clipping at
// optim.grad_clip, AdamW on a fixed batch), for a configuration (e.g. configs/tiny.yaml). Prints
// images per second with the shapes used, and the number of trainable parameters.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <random>

#include <torch/torch.h>

#include "common/allocator.h"
#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/torch_compat.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "dist/grad_allreduce.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "encoders/transformer.h"
#include "loss/contrastive_loss.h"
#include "train/components.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  halo::keep_freed_memory();  // as halo-clip does (src/common/allocator.h)
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  halo::ArgParser args(
      "bench_pipeline",
      "Images per second of the data pipeline alone and of the training step alone.");
  args.required("config", "FILE", "training configuration (model, data and batch size)")
      .repeated("set", "KEY=VALUE", "configuration override")
      .required("tokenizer", "FILE", "a tokenizer .model (halo-clip tokenizer train)")
      .option("batches", "N", "batches to time per measurement", "10")
      .option("steps", "N", "training steps to time", "10")
      .option("warmup", "N", "untimed batches (per worker count) and steps before timing", "1")
      .toggle("count-params", "print the number of trainable parameters (model and loss) and exit")
      .toggle("breakdown", "also time each stage of the pipeline (one thread) and of the step")
      .toggle("step-only", "time the training step alone, not the data pipeline")
      .toggle("explicit-attention",
              "attention as explicit matrix products instead of the fused kernel (LibTorch 2.x)");
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    const int threads = halo::configure_cpu_threads();
    const auto c = halo::train::load_config(args.str("config"), args.all("set"));
    const auto tokenizer = halo::data::Tokenizer::load(args.str("tokenizer"));
    const int64_t batches = args.integer("batches"), steps = args.integer("steps");
    const int64_t warmup = args.integer("warmup");
    HALO_CHECK(batches >= 1 && steps >= 1 && warmup >= 0,
               "--batches and --steps must be >= 1, --warmup >= 0");
    const int64_t B = c.train.batch_size, L = c.model.text.context_length;

    // The model and loss of the training step, built first so that --count-params needs no data.
    torch::manual_seed(0);
    halo::encoders::ClipModel model(c.model, tokenizer.vocab_size(), tokenizer.eos_id());
    halo::loss::ContrastiveLossOptions loss_options = halo::train::loss_options(c);
    loss_options.check_finite = false;  // as halo-clip train, which watches the loss on the device
    auto loss = halo::loss::make_contrastive_loss(loss_options);
    auto count = [](const std::vector<torch::Tensor>& params) {
      int64_t n = 0;
      for (const auto& p : params) n += p.requires_grad() ? p.numel() : 0;
      return n;
    };
    const int64_t model_params = count(model->parameters()),
                  loss_params = count(loss->parameters());
    if (args.on("count-params")) {
      std::printf("%lld\n", static_cast<long long>(model_params + loss_params));
      return 0;
    }
    std::printf(
        "bench_pipeline: %s, batch %lld, image %lld px, %d torch threads, %lld warm-up "
        "batches/steps\n",
        args.str("config").c_str(), static_cast<long long>(B),
        static_cast<long long>(c.model.image.image_size), threads, static_cast<long long>(warmup));
    std::printf("parameters: %lld (model %lld, loss %lld)\n",
                static_cast<long long>(model_params + loss_params),
                static_cast<long long>(model_params), static_cast<long long>(loss_params));

    // ---- the data pipeline alone -----------------------------------------------------------
    auto manifest = std::make_shared<halo::data::Manifest>(halo::data::read_manifest(
        c.data.train_manifest,
        {c.data.separator[0], c.data.image_key, c.data.caption_key, c.data.skip_bad}));
    const bool breakdown = args.on("breakdown"), step_only = args.on("step-only");
    for (int64_t workers = 1; workers <= (step_only ? 0 : c.data.workers); ++workers) {
      halo::data::LoaderOptions o = halo::train::loader_options(c);  // as halo-clip train
      o.workers = workers;
      halo::data::BatchLoader loader(
          manifest, [&](const std::vector<std::string>& t) { return tokenizer.encode(t, L); }, o);
      int64_t images = 0, epoch = 0;
      loader.start_epoch(epoch);
      auto next_batch = [&] {
        auto batch = loader.next();
        if (!batch) {
          loader.start_epoch(++epoch);
          batch = loader.next();
        }
        return std::move(*batch);
      };
      for (int64_t b = 0; b < warmup; ++b) next_batch();
      const auto start = Clock::now();
      for (int64_t b = 0; b < batches; ++b) images += next_batch().images.size(0);
      std::printf(
          "data pipeline, %lld worker(s): %8.0f images/s  (%lld batches of %lld, %lld-image "
          "manifest)\n",
          static_cast<long long>(workers), images / seconds_since(start),
          static_cast<long long>(batches), static_cast<long long>(B),
          static_cast<long long>(manifest->size()));
    }

    if (breakdown && !step_only) {  // the pipeline's stages, one after the other on
                                    // this thread, as one worker runs them
      at::set_num_threads(1);
      const halo::data::LoaderOptions o = halo::train::loader_options(c);
      const int64_t n = std::min<int64_t>(manifest->size() / B, batches) * B;
      std::mt19937_64 rng(0);
      double decode_s = 0, transform_s = 0, tokenize_s = 0, stack_s = 0;
      for (int64_t first = 0; first < n; first += B) {
        std::vector<torch::Tensor> images;
        for (int64_t i = first; i < first + B; ++i) {
          auto t0 = Clock::now();
          const cv::Mat rgb = halo::data::decode_image(manifest->images[static_cast<size_t>(i)]);
          decode_s += seconds_since(t0);
          t0 = Clock::now();
          images.push_back(halo::data::transform_image(rgb, o.transform, rng));
          transform_s += seconds_since(t0);
        }
        auto t0 = Clock::now();
        const std::vector<std::string> captions(manifest->captions.begin() + first,
                                                manifest->captions.begin() + first + B);
        const torch::Tensor tokens = tokenizer.encode(captions, L);
        tokenize_s += seconds_since(t0);
        t0 = Clock::now();
        const torch::Tensor stacked = torch::stack(images);
        stack_s += seconds_since(t0);
      }
      const double us = 1e6 / static_cast<double>(n);
      std::printf(
          "pipeline stages, one thread, us per image: decode %.1f (read, PNG, alpha over white), "
          "transform %.1f "
          "(crop, resize, normalise), tokenize %.1f, stack %.1f\n",
          decode_s * us, transform_s * us, tokenize_s * us, stack_s * us);
      at::set_num_threads(threads);
    }

    // ---- the training step alone (fixed random batch) ------------------------------------------
    const torch::Device device(c.train.device);  // the step runs where halo-clip train would
    HALO_CHECK(!device.is_cuda() || torch::cuda::is_available(), "train.device is '",
               c.train.device, "' but no CUDA device is available");
    model->to(device);
    loss->to(device);
    auto optimizer = halo::train::make_optimizer(*model, *loss, c.optim);
    const int64_t S = c.model.image.image_size;
    const torch::Tensor images = torch::randn({B, 3, S, S}).to(device);
    const torch::Tensor tokens = tokenizer.encode(manifest->captions, L)
                                     .narrow(0, 0, std::min<int64_t>(B, manifest->size()))
                                     .to(device);
    HALO_CHECK(tokens.size(0) == B, "the manifest has fewer captions than one batch");
    const bool bf16 = c.train.precision == "bf16";  // autocast on the device, CPU included
    std::vector<torch::Tensor> params = model->parameters();
    for (const auto& p : loss->parameters()) params.push_back(p);
    const auto group =
        halo::dist::make_process_group(halo::dist::DistEnv{}, {}, device);  // one process
    halo::dist::GradientAverager grads(params, *group, c.dist.bucket_mb);
    const halo::train::StepModules modules{*model, *loss, *optimizer, params, grads, *group};
    const halo::train::StepOptions step_options{c.train.accum_steps, bf16, c.optim.grad_clip};
    std::optional<halo::encoders::ExplicitAttentionGuard> explicit_attention;
    if (args.on("explicit-attention")) explicit_attention.emplace();
    {
      const halo::AutocastScope autocast(device.type(), bf16);  // as in the step
      std::printf("attention: %s\n",
                  halo::encoders::attention_is_fused(device.type()) ? "fused" : "explicit");
    }
    auto step = [&] {
      halo::train::train_step(modules, step_options, images, tokens, {}, 0);
    };  // halo-clip train's step
    for (int64_t i = 0; i < warmup; ++i) step();
    if (breakdown) {  // the step's phases, each timed on its own (waits for the device between
                      // phases)
      double encode_s = 0, loss_s = 0, backward_s = 0, clip_s = 0, adamw_s = 0;
      auto wait = [&](const torch::Tensor& t) { t.sum().item<double>(); };
      for (int64_t i = 0; i < steps; ++i) {
        auto t0 = Clock::now();
        torch::Tensor image_emb, text_emb;
        {
          halo::AutocastScope autocast(device.type(), bf16);
          image_emb = model->encode_image(images);
          text_emb = model->encode_text(tokens);
        }
        wait(image_emb);
        encode_s += seconds_since(t0);
        t0 = Clock::now();
        auto out = loss->forward(halo::loss::PairBatch::local(image_emb, text_emb));
        wait(out.total);
        loss_s += seconds_since(t0);
        t0 = Clock::now();
        optimizer->zero_grad();
        out.total.backward();
        wait(params.front().grad());
        backward_s += seconds_since(t0);
        t0 = Clock::now();
        halo::train::clip_gradients(params, c.optim.grad_clip);
        clip_s += seconds_since(t0);
        t0 = Clock::now();
        optimizer->step();
        wait(params.front());
        adamw_s += seconds_since(t0);
      }
      const double ms = 1e3 / static_cast<double>(steps);
      std::printf(
          "step phases, ms per step: encode %.2f (image and text towers), loss %.2f, backward "
          "%.2f, clip %.2f, "
          "AdamW %.2f\n",
          encode_s * ms, loss_s * ms, backward_s * ms, clip_s * ms, adamw_s * ms);
    }
    const auto start = Clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    params.front().sum().item<double>();  // waits for the last step on a GPU
    const double per_step = seconds_since(start) / static_cast<double>(steps);
    std::printf("training step (%s loss): %8.0f images/s  (%.1f ms per step of %lld pairs)\n",
                c.loss.name.c_str(), B / per_step, per_step * 1e3, static_cast<long long>(B));
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_pipeline: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_pipeline: error: " << e.what() << "\n";
  }
  return 1;
}
