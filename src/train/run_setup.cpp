// Building a training run from its configuration (see run_setup.h).
#include "train/run_setup.h"

#include <filesystem>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/log.h"
#include "hooks/embedding_diagnostics.h"
#include "hooks/pair_dynamics_hook.h"
#include "hooks/validation.h"
#include "data/shard_loader.h"
#include "data/shard_pattern.h"
#include "train/components.h"
#include "train/optimizer.h"

namespace fs = std::filesystem;

namespace halo::train {

namespace {

// The training shards (data.train_manifest a .tar pattern) and what stands for their manifest.
void open_training_shards(const Config& c, Run& run) {
  HALO_CHECK(c.data.folds == 0, "data.folds (cross-scoring) needs a TSV/CSV data.train_manifest, not shards ('",
             c.data.train_manifest, "')");
  auto shards = std::make_shared<data::ShardSet>(data::open_shard_set(c.data.train_manifest));
  run.shards = shards;
  if (c.train.pair_dynamics) {
    run.manifest = std::make_shared<data::Manifest>(data::index_shard_set(*shards));
  } else {
    auto empty = std::make_shared<data::Manifest>();
    empty->path = c.data.train_manifest;
    run.manifest = empty;
  }
}

// The training manifest; with cross-scoring (data.folds), without the held-out fold.
std::shared_ptr<const data::Manifest> training_manifest(const Config& c) {
  check_input_file(c.data.train_manifest, "training manifest", "data.train_manifest");
  auto manifest = std::make_shared<data::Manifest>(data::read_manifest(c.data.train_manifest, c.data.manifest_options()));
  if (c.data.folds == 0) return manifest;
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < manifest->size(); ++i) {
    if (data::fold_of_line(manifest->lines[static_cast<size_t>(i)], c.data.folds) != c.data.holdout_fold) keep.push_back(i);
  }
  log_message("leaving out fold " + std::to_string(c.data.holdout_fold) + " of " + std::to_string(c.data.folds));
  return std::make_shared<data::Manifest>(data::subset(*manifest, keep));
}

// The run's tokenizer: the configured model, else the one this run trained before (resume),
// else a new one trained on the training captions. It is kept in the run folder.
data::Tokenizer prepare_tokenizer(const Config& c, const Run& run) {
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
    if (run.shards) corpus = data::shard_set_captions(*run.shards);
    for (const auto& caption : run.manifest->captions) corpus += caption + "\n";
    const std::string corpus_path = (fs::path(c.train.run_dir) / "tokenizer_corpus.txt").string();
    write_file_atomically(corpus_path, corpus);
    data::TokenizerTrainOptions o;
    o.input = corpus_path;
    o.model_prefix = (fs::path(c.train.run_dir) / "tokenizer").string();
    o.vocab_size = c.tokenizer.vocab_size;
    data::Tokenizer::train(o);
    log_message("trained a tokenizer on the training captions: " + run_model.string());
  }
  return data::Tokenizer::load(run_model.string());
}

// Rank 0 prepares the tokenizer (training it if needed); the others load what it wrote.
data::Tokenizer shared_tokenizer(const Config& c, const Run& run, dist::ProcessGroup& group) {
  if (group.rank() == 0) {
    data::Tokenizer tokenizer = prepare_tokenizer(c, run);
    group.barrier();
    return tokenizer;
  }
  group.barrier();
  return data::Tokenizer::load(!c.tokenizer.model.empty() ? c.tokenizer.model
                                                          : (fs::path(c.train.run_dir) / "tokenizer.model").string());
}

// The tokenizer a resumed run must use: the configured one, else the one in the run folder,
// else the one beside the checkpoint's run folder (--resume FILE into a new folder). Never a
// new one: the checkpoint's weights belong to its tokenizer.
std::string resume_tokenizer(const Config& c, const std::string& checkpoint) {
  if (!c.tokenizer.model.empty()) return c.tokenizer.model;
  const fs::path in_run = fs::path(c.train.run_dir) / "tokenizer.model";
  if (fs::is_regular_file(in_run)) return in_run.string();
  const fs::path beside = fs::path(checkpoint).parent_path().parent_path() / "tokenizer.model";
  HALO_CHECK(fs::is_regular_file(beside), "cannot resume from '", checkpoint, "': its tokenizer is not in ",
             beside.string(), " and ", in_run.string(), " does not exist; set tokenizer.model to the tokenizer it was trained with");
  return beside.string();
}

// Everything about a resume that can be checked before anything is written: the checkpoint's
// configuration against this one (the keys that give tensors their shapes) and its tokenizer.
// Returns the tokenizer to use.
std::string check_resume(const Config& c, const std::string& checkpoint) {
  const std::vector<std::string> differences = shape_key_differences(parse_config(checkpoint_config(checkpoint)), c);
  if (!differences.empty()) {
    std::string list;
    for (const auto& d : differences) list += "\n  " + d;
    HALO_FAIL("cannot resume from '", checkpoint, "': the configuration changes the shape of the model or loss (",
              differences.size(), " key(s) differ); nothing was written:", list);
  }
  const std::string tokenizer = resume_tokenizer(c, checkpoint);
  check_checkpoint_tokenizer(checkpoint, tokenizer);
  return tokenizer;
}

// The run folder's own files, written once the run is accepted: stale temporaries of an
// interrupted run cleared, config.yaml, and (resume) the tokenizer copied in.
void write_run_folder(const Config& c, const Run& run, const std::string& tokenizer) {
  fs::create_directories(c.train.run_dir);
  const int stale = remove_stale_temporaries(c.train.run_dir) +
                    remove_stale_temporaries((fs::path(c.train.run_dir) / "checkpoints").string());
  if (stale > 0) log_message("removed " + std::to_string(stale) + " temporary file(s) of an interrupted run");
  write_file_atomically((fs::path(c.train.run_dir) / "config.yaml").string(), run.config_yaml);
  const fs::path run_model = fs::path(c.train.run_dir) / "tokenizer.model";
  if (!tokenizer.empty() && !(fs::exists(run_model) && fs::equivalent(tokenizer, run_model))) {
    write_file_atomically(run_model.string(), [&](const std::string& temporary) {
      fs::copy_file(tokenizer, temporary, fs::copy_options::overwrite_existing);
    });
  }
}

// The hooks the configuration asks for, in the order they run after each step: pair dynamics
// (train.pair_dynamics) with bootstrapping from their history (loss.sink_bootstrap_from:
// history), the embedding diagnostics, and validation (train.eval_manifest).
std::vector<std::shared_ptr<hooks::StepHook>> configured_hooks(const Config& c, const Run& run) {
  std::vector<std::shared_ptr<hooks::StepHook>> out;
  if (c.train.pair_dynamics) {
    const bool history = c.loss.bootstrap_from_history();
    auto dynamics = std::make_shared<hooks::RunPairDynamics>(run.manifest->size(), history, run.main_rank);
    if (history) {
      out.push_back(std::make_shared<hooks::HistoryBootstrapHook>(dynamics, c.loss.sink_bootstrap,
                                                                  c.loss.sink_history_fraction));
    }
    out.push_back(std::make_shared<hooks::PairDynamicsHook>(dynamics, run.manifest, c.train.run_dir, run.main_rank));
  }
  out.push_back(std::make_shared<hooks::EmbeddingDiagnosticsHook>(run.manifest));
  if (!c.train.eval_manifest.empty()) {
    hooks::ValidationOptions v;
    if (run.main_rank && data::is_shard_source(c.train.eval_manifest)) {
      auto shards = std::make_shared<data::ShardSet>(data::open_shard_set(c.train.eval_manifest));
      v.manifest = std::make_shared<data::Manifest>(data::index_shard_set(*shards));
      v.shards = shards;
    } else if (run.main_rank) {
      v.manifest = std::make_shared<data::Manifest>(data::read_manifest(c.train.eval_manifest, c.data.manifest_options()));
    }
    v.loader = eval_loader_options(c, c.train.batch_size);
    v.tokenizer = run.tokenizer;
    v.context_length = c.model.text.context_length;
    v.every = c.train.eval_every;
    v.device = run.device;
    out.push_back(std::make_shared<hooks::ValidationHook>(std::move(v), run.main_rank));
  }
  return out;
}

}  // namespace

Run set_up_run(const Config& c, const TrainOptions& options) {
  Run run;
  torch::manual_seed(static_cast<uint64_t>(c.train.seed));
  const dist::DistEnv env = dist::read_env();  // world size 1 unless started by a launcher
  run.device = dist::rank_device(c.train.device, env);
  HALO_CHECK(!run.device.is_cuda() || torch::cuda::is_available(), "train.device is '", c.train.device,
             "' but no CUDA device is available");
  run.group = dist::make_process_group(
      env, {c.dist.backend, c.dist.rendezvous_timeout_s, c.dist.collective_timeout_s}, run.device);
  run.main_rank = run.group->rank() == 0;
  set_log_quiet(!run.main_rank);
  run.config_yaml = to_yaml(c);

  // A resume is checked before anything is written (config.yaml, the tokenizer, metrics).
  std::string resume_path, tokenizer_path;
  if (!options.resume.empty()) {
    resume_path = resolve_checkpoint(c.train.run_dir, options.resume);
    tokenizer_path = check_resume(c, resume_path);
  }
  if (data::is_shard_source(c.data.train_manifest)) {
    open_training_shards(c, run);
  } else {
    run.manifest = training_manifest(c);
  }
  if (resume_path.empty()) {
    if (run.main_rank) write_run_folder(c, run, "");
    run.tokenizer = shared_tokenizer(c, run, *run.group);
  } else {
    run.tokenizer = data::Tokenizer::load(tokenizer_path);
  }
  const int64_t context_length = c.model.text.context_length;
  data::TextEncoder encode = [tokenizer = run.tokenizer, context_length](const std::vector<std::string>& captions) {
    return tokenizer.encode(captions, context_length);
  };
  const data::LoaderOptions loader = loader_options(c, run.group->rank(), run.group->size());
  if (run.shards) {
    run.loader = std::make_unique<data::ShardLoader>(run.shards, encode, loader, c.data.shuffle_buffer);
  } else {
    run.loader = std::make_unique<data::BatchLoader>(run.manifest, encode, loader);
  }

  run.model = encoders::ClipModel(c.model, run.tokenizer.vocab_size(), run.tokenizer.eos_id());
  loss::ContrastiveLossOptions loss_opts = loss_options(c);
  loss_opts.check_finite = false;  // the trainer watches the loss on the device instead
  run.loss = loss::make_contrastive_loss(loss_opts);
  run.model->to(run.device);
  run.loss->to(run.device);
  run.optimizer = make_optimizer(*run.model, *run.loss, c.optim);
  run.parameters = run.model->parameters();
  for (const auto& p : run.loss->parameters()) run.parameters.push_back(p);
  dist::broadcast_parameters(run.parameters, *run.group);  // every rank starts from rank 0's weights
  run.grads = std::make_unique<dist::GradientAverager>(run.parameters, *run.group, c.dist.bucket_mb);

  run.steps_per_epoch = run.loader->batches_per_epoch();
  run.total_steps = c.train.max_steps > 0 ? c.train.max_steps : c.train.epochs * run.steps_per_epoch;
  run.hooks = configured_hooks(c, run);
  run.hooks.insert(run.hooks.end(), options.hooks.begin(), options.hooks.end());
  if (!resume_path.empty()) {
    check_checkpoint_shapes(resume_path, *run.model, *run.loss);
    run.state = load_checkpoint(resume_path, *run.model, *run.loss, run.optimizer.get());
  }
  for (const auto& hook : run.hooks) hook->load_state(run.state.tensors, run.state.step);
  if (!resume_path.empty()) {
    if (run.main_rank) write_run_folder(c, run, tokenizer_path);  // accepted: now the run folder
    run.group->barrier();
    log_message("resumed from " + resume_path + " at step " + std::to_string(run.state.step));
  }

  const int64_t pairs = run.shards ? run.shards->total : run.manifest->size();
  log_message(std::to_string(pairs) + " pairs (" +
              (run.shards ? std::to_string(run.shards->shards.size()) + " shards"
                          : std::to_string(run.manifest->skipped_rows) + " bad rows skipped") + "), " + std::to_string(run.steps_per_epoch) + " steps per epoch, " +
              std::to_string(run.total_steps) + " steps, loss " + c.loss.name + ", device " + run.device.str());
  if (env.distributed()) log_message(env.describe() + ", backend " + run.group->backend());
  return run;
}

}  // namespace halo::train
