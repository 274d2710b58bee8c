// The training loop, top to bottom: set-up (run_setup.h), then one pass per step (load, then
// step.h: encode, gather, loss, backward, all-reduce, clip, optimiser step), the step hooks, and
// the marked "every N steps" blocks for logging and checkpoints, with a clean stop on signals. The
// loop waits for the device only at logging steps and checkpoints.
#include "train/trainer.h"

#include <chrono>
#include <csignal>
#include <cstdio>

#include <torch/torch.h>

#include "common/error.h"
#include "common/log.h"
#include "common/torch_compat.h"
#include "train/optimizer.h"
#include "train/run_log.h"
#include "train/run_setup.h"
#include "train/step.h"
#include "train/stop_signal.h"

namespace halo::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string step_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return name;
}

// The first step whose loss was NaN or infinite, kept on the device (0: none so far), so that
// the loop need not wait for the loss every step; read at logging steps and checkpoints.
class FiniteWatch {
 public:
  explicit FiniteWatch(const torch::Device& device)
      : first_bad_(torch::zeros({}, torch::dtype(torch::kLong).device(device))) {}
  void watch(const torch::Tensor& loss, int64_t step) {
    first_bad_.masked_fill_(first_bad_.eq(0).logical_and(loss.isfinite().logical_not()), step);
  }
  // Throws on every rank when the loss went bad on any rank (a collective).
  void check(dist::ProcessGroup& group, const std::string& run_dir) const {
    const int64_t bad = first_bad_.item<int64_t>();
    if (dist::any(group, bad != 0)) fail(bad, run_dir);
  }
  // Throws when the loss went bad on this rank (no collective: for errors that already stop it).
  void check_local(const std::string& run_dir) const {
    if (const int64_t bad = first_bad_.item<int64_t>()) fail(bad, run_dir);
  }

 private:
  [[noreturn]] static void fail(int64_t bad, const std::string& run_dir) {
    HALO_FAIL("the loss became NaN or infinite",
              bad != 0 ? " at step " + std::to_string(bad) : " on another rank",
              "; the last checkpoint is in ", run_dir, "/checkpoints");
  }
  torch::Tensor first_bad_;
};

// What a logging step records: the loss and its parts averaged over ranks (the one place the
// loop reads them), and the step's figures.
Metrics step_metrics(const loss::LossOutput& out, const torch::Tensor& grad_norm, double lr,
                     int64_t skipped_images, double step_s, double comm_s,
                     dist::ProcessGroup& group) {
  std::vector<double> values{out.total.item<double>()};
  for (const auto& part : out.parts) values.push_back(part.second.item<double>());
  values = dist::average(group, values);
  Metrics m{{"loss", values[0]},
            {"lr", lr},
            {"grad_norm", grad_norm.item<double>()},
            {"skipped_images", static_cast<double>(skipped_images)},
            {"step_ms", 1000 * step_s},
            {"comm_ms", 1000 * comm_s}};
  for (size_t i = 0; i < out.parts.size(); ++i) m.emplace_back(out.parts[i].first, values[i + 1]);
  return m;
}

// The per-row sink shares a hook gives this batch (bootstrapping from the history), if any.
// Every rank calls it (it may be a collective).
torch::Tensor sink_shares(Run& run, const data::Batch& batch) {
  for (const auto& hook : run.hooks) {
    if (torch::Tensor share = hook->sink_share(batch, *run.group); share.defined()) return share;
  }
  return {};
}

// Every hook's after_step, in order; at logging steps each hook's time is logged as NAME_ms. A
// hook's error after the loss went bad (NaN embeddings) is reported as the bad loss.
void run_hooks(Run& run, const hooks::StepContext& context, Metrics& metrics,
               const FiniteWatch& finite, const std::string& run_dir) {
  Metrics timings;
  for (const auto& hook : run.hooks) {
    const auto start = Clock::now();
    try {
      hook->after_step(context, metrics);
    } catch (const Error&) {
      finite.check_local(run_dir);
      throw;
    }
    timings.emplace_back(hook->name() + "_ms", 1000 * seconds_since(start));
  }
  if (context.logging) metrics.insert(metrics.end(), timings.begin(), timings.end());
}

// Every rank: the loss checked, the hooks' state (may be a collective); rank 0 writes the
// checkpoint while the others wait. Returns its path on rank 0.
std::string checkpoint(Run& run, const Config& c, const FiniteWatch& finite,
                       const std::string& name) {
  finite.check(*run.group, c.train.run_dir);
  run.state.tensors.clear();
  for (const auto& hook : run.hooks) hook->save_state(*run.group, run.state.tensors);
  std::string path;
  if (run.main_rank) {
    path = save_checkpoint(c.train.run_dir, name, *run.model, *run.loss, *run.optimizer, run.state,
                           run.config_yaml, c.train.keep_checkpoints);
  }
  run.group->barrier();
  return path;
}

// Why this rank wants to stop after this step ("" to go on): a signal, or a hook's reason.
std::string stop_reason(const Run& run, const StopSignal& signals) {
  if (const int sig = signals.received()) return sig == SIGINT ? "SIGINT" : "SIGTERM";
  for (const auto& hook : run.hooks) {
    if (std::string reason = hook->stop_reason(); !reason.empty()) return reason;
  }
  return "";
}

}  // namespace

TrainResult run_training(const Config& c, const TrainOptions& options) {
  // ---- set-up: run folder, process group, data, tokenizer, model, loss, optimiser, hooks, resume
  Run run = set_up_run(c, options);
  dist::ProcessGroup& group = *run.group;
  TrainingState& state = run.state;
  RunLog log(c.train.run_dir, state.step, run.total_steps, run.main_rank);
  FiniteWatch finite(run.device);
  StopSignal signals;
  TrainResult result;
  torch::Tensor last_loss;
  const StepModules step_modules{*run.model,     *run.loss,  *run.optimizer,
                                 run.parameters, *run.grads, group};
  const StepOptions step_options{c.train.accum_steps, c.train.precision == "bf16",
                                 c.optim.grad_clip, c.loss.sink_partner_drop,
                                 static_cast<uint64_t>(c.train.seed)};
  // Every rank stops after the same step: a stop (signal or hook) is agreed on once per step.
  bool stop = dist::any(group, !stop_reason(run, signals).empty());

  // ---- the step loop -----------------------------------------------------------------------
  while (state.step < run.total_steps && !stop) {
    run.loader->start_epoch(state.epoch, state.batch_in_epoch);
    bool source_ended = false;
    while (state.step < run.total_steps && !stop) {
      const auto wait_start = Clock::now();
      std::optional<data::Batch> batch = run.loader->next();
      const double data_wait = seconds_since(wait_start);
      if (!batch) {  // end of the epoch
        source_ended = true;
        break;
      }

      const double lr = learning_rate(state.step, run.total_steps, c.optim);
      set_learning_rate(*run.optimizer, lr, c.optim);
      const auto step_start = Clock::now();
      const StepResult out = train_step(step_modules, step_options,
                                        batch->images.to(run.device, /*non_blocking=*/true),
                                        batch->tokens.to(run.device, /*non_blocking=*/true),
                                        sink_shares(run, *batch), state.step);
      const double step_s = seconds_since(step_start), comm_s = group.take_comm_seconds();
      ++state.step;
      state.batch_in_epoch = batch->index + 1;
      finite.watch(out.loss.total, state.step);
      last_loss = out.loss.total.detach();

      // -- every log_every steps: the loss read back, checked, and logged with the hooks' values
      const bool logging = state.step % c.train.log_every == 0 || state.step == run.total_steps;
      Metrics metrics;
      if (logging) {
        finite.check(group, c.train.run_dir);
        metrics = step_metrics(out.loss, out.grad_norm, lr, run.loader->skipped_images(), step_s,
                               comm_s, group);
      }
      // -- after every step: the hooks (pair dynamics, embedding diagnostics, validation, ...)
      run_hooks(run,
                {state.step, run.total_steps, state.epoch, logging, *batch, out.pairs, *run.loss,
                 run.model, group},
                metrics, finite, c.train.run_dir);
      log.step(state.step, state.epoch, batch->images.size(0) * group.size(), data_wait,
               logging ? metrics : Metrics{}, c.train.log_every);
      if (!logging) log.record(state.step, metrics);  // a hook's values between logging steps
      // -- every checkpoint_every steps: checkpoint
      if (state.step % c.train.checkpoint_every == 0 && state.step < run.total_steps) {
        result.checkpoint = checkpoint(run, c, finite, step_name(state.step));
      }
      stop = dist::any(group, !stop_reason(run, signals).empty());
    }
    // A source that ends before the batches it promised would restart the same epoch forever.
    HALO_CHECK(!source_ended || state.batch_in_epoch >= run.steps_per_epoch,
               "the training data ended epoch ", state.epoch, " after ", state.batch_in_epoch,
               " of the ", run.steps_per_epoch, " batches it promised (data.train_manifest '",
               c.data.train_manifest, "'); did the data change while the run was reading it?");
    if (state.batch_in_epoch >= run.steps_per_epoch) {  // -- every epoch: the hooks' epoch end
      ++state.epoch;
      state.batch_in_epoch = 0;
      for (const auto& hook : run.hooks) hook->end_epoch(group);
    }
  }

  // ---- the end: a final checkpoint, or a checkpoint at the stop ------------------------------
  if (run.loader->skipped_images() > 0)
    log_message("skipped " + std::to_string(run.loader->skipped_images()) +
                " unreadable image(s) (data.skip_bad)");
  result.finished = state.step >= run.total_steps;
  result.checkpoint = checkpoint(run, c, finite, result.finished ? "final" : step_name(state.step));
  if (result.finished) {
    log_message("finished " + std::to_string(state.step) + " steps; checkpoint " +
                result.checkpoint);
    for (const auto& hook : run.hooks) hook->finish(group);
  } else {
    const std::string reason = stop_reason(run, signals);
    log_message("stopped by " + (reason.empty() ? "another rank" : reason) + " at step " +
                std::to_string(state.step) + "; checkpoint " + result.checkpoint +
                " (continue with --resume latest)");
    // A hook's stop ends cleanly; a signal here or on another rank as that signal would.
    result.exit_code = signals.received() ? 128 + signals.received()
                       : reason.empty()   ? 128 + SIGTERM
                                          : 0;
  }
  if (last_loss.defined()) result.last_loss = dist::average(group, {last_loss.item<double>()})[0];
  result.state = state;
  return result;
}

}  // namespace halo::train
