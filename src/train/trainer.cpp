// The training loop, top to bottom: set-up (run folder, data, tokenizer, model, loss,
// optimiser, resume), then one pass per step (load, encode, loss, backward, clip, step) with
// clearly marked "every N steps" blocks for logging and checkpoints, and a clean stop on signals.
#include "train/trainer.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <limits>
#include <cmath>
#include <filesystem>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "dist/gather_with_grad.h"
#include "dist/grad_allreduce.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "train/components.h"
#include "train/optimizer.h"
#include "train/pair_dynamics.h"
#include "train/run_log.h"
#include "train/stop_signal.h"

namespace fs = std::filesystem;

namespace halo::train {

namespace {

// The run's tokenizer: the configured model, else the one this run trained before (resume),
// else a new one trained on the training captions. It is kept in the run folder.
data::Tokenizer prepare_tokenizer(const Config& c, const data::Manifest& manifest) {
  const fs::path run_model = fs::path(c.train.run_dir) / "tokenizer.model";
  if (!c.tokenizer.model.empty()) {
    data::Tokenizer tokenizer = data::Tokenizer::load(c.tokenizer.model);
    if (fs::absolute(c.tokenizer.model) != fs::absolute(run_model)) {
      fs::copy_file(c.tokenizer.model, run_model, fs::copy_options::overwrite_existing);
    }
    return tokenizer;
  }
  if (!fs::exists(run_model)) {
    std::string corpus;
    for (const auto& caption : manifest.captions) corpus += caption + "\n";
    const std::string corpus_path = (fs::path(c.train.run_dir) / "tokenizer_corpus.txt").string();
    write_file_atomically(corpus_path, corpus);
    data::TokenizerTrainOptions o;
    o.input = corpus_path;
    o.model_prefix = (fs::path(c.train.run_dir) / "tokenizer").string();
    o.vocab_size = c.tokenizer.vocab_size;
    data::Tokenizer::train(o);
    log_message("trained a tokenizer on " + std::to_string(manifest.size()) + " captions: " + run_model.string());
  }
  return data::Tokenizer::load(run_model.string());
}

// Rank 0 prepares the tokenizer (training it if needed); the others load what it wrote.
data::Tokenizer shared_tokenizer(const Config& c, const data::Manifest& manifest, dist::ProcessGroup& group) {
  if (group.rank() == 0) {
    data::Tokenizer tokenizer = prepare_tokenizer(c, manifest);
    group.barrier();
    return tokenizer;
  }
  group.barrier();
  return data::Tokenizer::load(!c.tokenizer.model.empty() ? c.tokenizer.model
                                                          : (fs::path(c.train.run_dir) / "tokenizer.model").string());
}

// Geometry of the embeddings and the pair scores, logged every logging step (docs/loss.md on
// the common offset): the norm of each modality's mean embedding and mean ||x||^2 (both per
// dimension), the pairs' r^2, and the mean and median mismatch score, split into clean and
// mismatched pairs when the manifest records which is which.
// image and text hold the global batch; this rank's pairs (manifest rows `rows`) start at
// row_offset in it.
Metrics embedding_diagnostics(const torch::Tensor& image, const torch::Tensor& text, loss::ContrastiveLoss& loss,
                              const torch::Tensor& rows, int64_t row_offset, const data::Manifest& manifest) {
  torch::NoGradGuard no_grad;
  const double sqrt_d = std::sqrt(static_cast<double>(image.size(1)));
  auto mean_norm = [&](const torch::Tensor& e) { return e.mean(0).norm().item<double>() / sqrt_d; };
  const torch::Tensor score = loss.mismatch_score(image, text).to(torch::kCPU, torch::kFloat64);
  Metrics m{{"image_mean_norm", mean_norm(image)},
            {"text_mean_norm", mean_norm(text)},
            {"image_sq_norm", image.pow(2).mean().item<double>()},
            {"text_sq_norm", text.pow(2).mean().item<double>()},
            {"pair_r2", (image - text).pow(2).mean().item<double>()},
            {"mismatch_score_mean", score.mean().item<double>()},
            {"mismatch_score_median", score.median().item<double>()}};
  if (!manifest.mismatched.empty()) {
    std::vector<uint8_t> flags;
    for (int64_t i = 0; i < rows.numel(); ++i) flags.push_back(static_cast<uint8_t>(manifest.mismatched[static_cast<size_t>(rows[i].item<int64_t>())]));
    const torch::Tensor bad = torch::tensor(flags, torch::kBool);
    const torch::Tensor local = score.slice(0, row_offset, row_offset + rows.numel());
    if (bad.any().item<bool>()) m.emplace_back("mismatch_score_mismatched", local.index({bad}).mean().item<double>());
    if (!bad.all().item<bool>()) m.emplace_back("mismatch_score_clean", local.index({~bad}).mean().item<double>());
  }
  return m;
}

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

struct StepOutput {
  double loss, grad_norm, step_s, comm_s;
  Metrics parts;
  torch::Tensor image_embeddings, text_embeddings;  // the global batch (detached)
  int64_t row_offset, rows;  // this rank's pairs: rows [row_offset, row_offset + rows) of it
};

// One optimiser step on one batch (this rank's share of the global batch). sink_share: per
// row, the share of the pair's target taken off it (loss.sink_bootstrap_from: history), or
// undefined.
StepOutput train_step(encoders::ClipModel& model, loss::ContrastiveLoss& loss_fn, torch::optim::Optimizer& optimizer,
                      const data::Batch& batch, const torch::Tensor& sink_share, const torch::Device& device,
                      const Config& c, dist::ProcessGroup& group, dist::GradientAverager& grads) {
  const auto start = std::chrono::steady_clock::now();
  const torch::Tensor images = batch.images.to(device, /*non_blocking=*/true);
  const torch::Tensor tokens = batch.tokens.to(device, /*non_blocking=*/true);
  torch::Tensor image_emb, text_emb;
  {
    AutocastScope autocast(device.type(), c.train.precision == "bf16");
    image_emb = model->encode_image(images);
    text_emb = model->encode_text(tokens);
  }
  // The loss always runs in fp32 (it converts half-precision inputs itself). This rank's pairs
  // are the rows, every rank's pairs the columns (docs/distributed.md).
  loss::PairBatch pairs = dist::global_pair_batch(image_emb, text_emb, group);
  if (sink_share.defined()) pairs.sink_share = sink_share.to(device, torch::kFloat);
  loss::LossOutput out = loss_fn.forward(pairs);
  optimizer.zero_grad();
  out.total.backward();
  grads.average();  // the mean over ranks: the gradient of the global batch's loss
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : loss_fn.parameters()) params.push_back(p);
  const double max_norm = c.optim.grad_clip > 0 ? c.optim.grad_clip : std::numeric_limits<double>::infinity();
  const double grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
  optimizer.step();

  std::vector<double> values{out.total.item<double>()};  // the loss and its parts, averaged over ranks
  for (const auto& part : out.parts) values.push_back(part.second.item<double>());
  values = dist::average(group, values);
  const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  StepOutput s{values[0], grad_norm, step_s, group.take_comm_seconds(), {}, pairs.image_cols.detach(),
               pairs.text_cols.detach(), pairs.row_offset, pairs.rows()};
  for (size_t i = 0; i < out.parts.size(); ++i) s.parts.emplace_back(out.parts[i].first, values[i + 1]);
  return s;
}

// Rank 0 writes RUN_DIR/pair_dynamics.tsv and, when the manifest records which pairs were
// swapped, pair_dynamics.txt with each score's AUROC and FPR at 95% TPR (also printed).
void write_dynamics(const std::string& run_dir, const PairDynamics& totals, const data::Manifest& manifest,
                    bool main_rank) {
  if (!main_rank) return;
  const std::string path = (fs::path(run_dir) / "pair_dynamics.tsv").string();
  const std::vector<DynamicsDetection> detection = write_pair_dynamics(path, totals, manifest);
  log_message("pair dynamics of " + std::to_string(totals.pairs()) + " pairs: " + path);
  if (detection.empty()) return;
  std::string table = "score            AUROC  FPR@95\n";
  for (const auto& d : detection) {
    char line[128];
    std::snprintf(line, sizeof line, "%-16s %6.3f %7.3f\n", d.column.c_str(), d.auroc, d.fpr95);
    table += line;
  }
  write_file_atomically((fs::path(run_dir) / "pair_dynamics.txt").string(), table);
  log_message("mismatch detection by the mean score over training:\n" + table);
}

}  // namespace

TrainResult run_training(const Config& c, const TrainOptions& options) {
  // ---- set-up ---------------------------------------------------------------------------------
  fs::create_directories(c.train.run_dir);
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  const dist::DistEnv env = dist::read_env();  // world size 1 unless started by a launcher
  const torch::Device device = dist::rank_device(c.train.device, env);
  HALO_CHECK(!device.is_cuda() || torch::cuda::is_available(), "train.device is '", c.train.device,
             "' but no CUDA device is available");
  const auto group = dist::make_process_group(
      env, {c.dist.backend, c.dist.rendezvous_timeout_s, c.dist.collective_timeout_s}, device);
  const bool main_rank = group->rank() == 0;  // only rank 0 logs and writes files
  set_log_quiet(!main_rank);
  const std::string config_yaml = to_yaml(c);
  if (main_rank) write_file_atomically((fs::path(c.train.run_dir) / "config.yaml").string(), config_yaml);

  auto manifest = std::make_shared<data::Manifest>(data::read_manifest(c.data.train_manifest, manifest_options(c.data)));
  if (c.data.folds > 0) {  // cross-scoring: leave one fold out
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < manifest->size(); ++i) {
      if (data::fold_of_line(manifest->lines[static_cast<size_t>(i)], c.data.folds) != c.data.holdout_fold) keep.push_back(i);
    }
    manifest = std::make_shared<data::Manifest>(data::subset(*manifest, keep));
    log_message("leaving out fold " + std::to_string(c.data.holdout_fold) + " of " + std::to_string(c.data.folds));
  }
  const data::Tokenizer tokenizer = shared_tokenizer(c, *manifest, *group);
  const int64_t context_length = c.model.text.context_length;
  data::BatchLoader loader(
      manifest, [tokenizer, context_length](const std::vector<std::string>& captions) {
        return tokenizer.encode(captions, context_length);
      },
      loader_options(c, group->rank(), group->size()));

  encoders::ClipModel model(c.model, tokenizer.vocab_size(), tokenizer.eos_id());
  auto loss_fn = loss::make_contrastive_loss(loss_options(c));
  model->to(device);
  loss_fn->to(device);
  auto optimizer = make_optimizer(*model, *loss_fn, c.optim);
  std::vector<torch::Tensor> parameters = model->parameters();
  for (const auto& p : loss_fn->parameters()) parameters.push_back(p);
  dist::broadcast_parameters(parameters, *group);  // every rank starts from rank 0's weights
  dist::GradientAverager grads(parameters, *group, c.dist.bucket_mb);

  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const int64_t total_steps = c.train.max_steps > 0 ? c.train.max_steps : c.train.epochs * steps_per_epoch;
  TrainingState state;
  if (!options.resume.empty()) {
    const std::string path = resolve_checkpoint(c.train.run_dir, options.resume);
    state = load_checkpoint(path, *model, *loss_fn, optimizer.get());
    log_message("resumed from " + path + " at step " + std::to_string(state.step));
  }
  // Each rank records the pairs it trains on; checkpoints hold the sums over all ranks
  // (RunPairDynamics says how). Every rank loads them, so that a checkpoint for another
  // manifest fails on all ranks alike (no rank is left waiting in a collective).
  const bool share_from_history = c.loss.sink_bootstrap_from == "history";
  RunPairDynamics dynamics =
      c.train.pair_dynamics ? RunPairDynamics(manifest->size(), share_from_history, main_rank) : RunPairDynamics();
  if (dynamics.on() && state.step > 0) {
    if (state.tensors.empty()) {
      log_message("the checkpoint holds no pair dynamics: pair_dynamics.tsv will count from step " +
                  std::to_string(state.step) +
                  (share_from_history ? ", and the history that picks the sink shares starts there too" : ""));
    } else {
      dynamics.load_state(state.tensors);
    }
  }
  RunLog log(c.train.run_dir, state.step, total_steps, main_rank);
  log_message(std::to_string(manifest->size()) + " pairs (" + std::to_string(manifest->skipped_rows) +
              " bad rows skipped), " + std::to_string(steps_per_epoch) + " steps per epoch, " +
              std::to_string(total_steps) + " steps, loss " + c.loss.name + ", device " + device.str());
  if (env.distributed()) log_message(env.describe() + ", backend " + group->backend());
  StopSignal stop;
  TrainResult result;
  // Returns the pair dynamics summed over the ranks, as saved (empty when they are off).
  auto checkpoint = [&](const std::string& name) {
    // Every rank takes part in the sum; with the dynamics off, none from an earlier run is kept.
    const PairDynamics totals = dynamics.on() ? dynamics.fold(*group) : PairDynamics();
    state.tensors = totals.state();
    if (main_rank) {
      result.checkpoint = save_checkpoint(c.train.run_dir, name, *model, *loss_fn, *optimizer, state,
                                          config_yaml, c.train.keep_checkpoints);
    }
    group->barrier();  // the other ranks wait for rank 0's checkpoint
    return totals;
  };

  // ---- the step loop --------------------------------------------------------------------------
  // Every rank stops after the same step: a stop (signal or stop_after_steps) is agreed on once
  // per step.
  auto stop_wanted = [&] {
    return stop.received() != 0 || (options.stop_after_steps > 0 && state.step >= options.stop_after_steps);
  };
  bool stop_agreed = dist::any(*group, stop_wanted());
  auto stop_requested = [&] { return stop_agreed; };
  while (state.step < total_steps && !stop_requested()) {
    loader.start_epoch(state.epoch, state.batch_in_epoch);
    while (state.step < total_steps && !stop_requested()) {
      const auto wait_start = std::chrono::steady_clock::now();
      std::optional<data::Batch> batch = loader.next();
      const double data_wait = std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
      if (!batch) break;  // end of the epoch

      const double lr = learning_rate(state.step, total_steps, c.optim);
      set_learning_rate(*optimizer, lr, c.optim);
      // Bootstrapping from the history: the share beta for the global batch's hardest pairs by
      // their mean margin so far, on HALO's sink or, for InfoNCE, a weight 1 - beta (docs/loss.md).
      const torch::Tensor sink_share =
          share_from_history
              ? dynamics.sink_shares(batch->rows, c.loss.sink_bootstrap, c.loss.sink_history_fraction, *group)
              : torch::Tensor();
      const StepOutput out = train_step(model, *loss_fn, *optimizer, *batch, sink_share, device, c, *group, grads);
      HALO_CHECK(std::isfinite(out.loss), "the loss became ", out.loss, " at step ", state.step + 1,
                 "; the last checkpoint is in ", c.train.run_dir, "/checkpoints");
      ++state.step;
      state.batch_in_epoch = batch->index + 1;
      result.last_loss = out.loss;
      double dynamics_s = 0;
      if (dynamics.on()) {  // this rank's pairs against the global batch, no gradient
        const auto dynamics_start = std::chrono::steady_clock::now();
        const int64_t end = out.row_offset + out.rows;
        const loss::PairBatch seen{out.image_embeddings.slice(0, out.row_offset, end),
                                   out.text_embeddings.slice(0, out.row_offset, end), out.image_embeddings,
                                   out.text_embeddings, out.row_offset, {}};
        dynamics.add(batch->rows, step_pair_scores(*loss_fn, seen));
        dynamics_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - dynamics_start).count();
      }

      // -- every log_every steps: progress line and metrics
      if (state.step % c.train.log_every == 0 || state.step == total_steps) {
        Metrics m{{"loss", out.loss}, {"lr", lr}, {"grad_norm", out.grad_norm},
                  {"skipped_images", static_cast<double>(loader.skipped_images())},
                  {"step_ms", 1000 * out.step_s}, {"comm_ms", 1000 * out.comm_s}};
        if (dynamics.on()) m.emplace_back("dynamics_ms", 1000 * dynamics_s);
        m.insert(m.end(), out.parts.begin(), out.parts.end());
        const Metrics geometry = embedding_diagnostics(out.image_embeddings, out.text_embeddings, *loss_fn, batch->rows,
                                                       out.row_offset, *manifest);
        m.insert(m.end(), geometry.begin(), geometry.end());
        // With centring the embeddings above have mean ~0 by construction; the offset that
        // centring removes is the running mean.
        const auto [image_offset, text_offset] = model->embedding_offsets();
        if (image_offset.defined()) {
          const double sqrt_d = std::sqrt(static_cast<double>(image_offset.numel()));
          m.emplace_back("image_offset_norm", image_offset.norm().item<double>() / sqrt_d);
          m.emplace_back("text_offset_norm", text_offset.norm().item<double>() / sqrt_d);
        }
        log.step(state.step, state.epoch, batch->images.size(0) * group->size(), data_wait, m, c.train.log_every);
      } else {
        log.step(state.step, state.epoch, batch->images.size(0) * group->size(), data_wait, {}, c.train.log_every);
      }
      // -- every checkpoint_every steps: checkpoint
      if (state.step % c.train.checkpoint_every == 0 && state.step < total_steps) {
        checkpoint(step_name(state.step));
      }
      stop_agreed = dist::any(*group, stop_wanted());
    }
    if (state.batch_in_epoch >= steps_per_epoch) {
      ++state.epoch;
      state.batch_in_epoch = 0;
      if (share_from_history) dynamics.fold(*group);  // the next epoch sees every rank's scores
    }
  }

  // ---- the end: a final checkpoint, or a checkpoint at the stop -------------------------------
  if (stop_requested() && state.step < total_steps) {
    const int sig = stop.received() ? stop.received() : SIGTERM;
    checkpoint(step_name(state.step));
    log_message(std::string("stopped by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + " at step " +
                std::to_string(state.step) + "; checkpoint " + result.checkpoint +
                " (continue with --resume latest)");
    result.exit_code = 128 + sig;
  } else {
    const PairDynamics totals = checkpoint("final");
    log_message("finished " + std::to_string(state.step) + " steps; checkpoint " + result.checkpoint);
    if (dynamics.on()) write_dynamics(c.train.run_dir, totals, *manifest, main_rank);
  }
  result.state = state;
  for (const auto& p : model->named_parameters()) result.parameters[p.key()] = p.value().detach().cpu().clone();
  for (const auto& b : model->named_buffers()) result.parameters[b.key()] = b.value().detach().cpu().clone();
  return result;
}

}  // namespace halo::train
