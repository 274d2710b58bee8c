// Building a training run from its configuration (see run_setup.h).
#include "train/run_setup.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/cpu_convolutions.h"
#include "common/error.h"
#include "common/log.h"
#include "data/shard_pattern.h"
#include "hooks/embedding_diagnostics.h"
#include "hooks/pair_dynamics_hook.h"
#include "hooks/validation.h"
#include "train/components.h"
#include "train/optimizer.h"

namespace fs = std::filesystem;

namespace halo::train {

namespace {

// The training pairs (data.train_manifest); with cross-scoring (data.folds), without the
// held-out fold (a manifest's rows i mod k, a shard set's whole shards i mod k). A shard set is
// indexed (keys, json fields: a pass over every shard's headers) only where it is read: on rank 0,
// when pair dynamics name rows; the other ranks need only the sizes.
std::shared_ptr<const data::PairSet> training_pairs(const Config& c, bool main_rank) {
  data::check_pair_source(c.data.train_manifest, "training manifest", "data.train_manifest");
  const auto index = c.train.pair_dynamics && main_rank ? data::PairSet::ShardIndex::keys
                                                        : data::PairSet::ShardIndex::none;
  auto pairs = data::PairSet::open(c.data.train_manifest, c.data.manifest_options(),
                                   c.data.folds == 0 ? index : data::PairSet::ShardIndex::none);
  if (c.data.folds == 0) return pairs;
  if (pairs->sharded()) {  // whole shards make the folds: shard i is in fold i mod folds
    auto kept = pairs->shard_fold(c.data.folds, c.data.holdout_fold, /*complement=*/true, index);
    log_message("leaving out fold " + std::to_string(c.data.holdout_fold) + " of " +
                std::to_string(c.data.folds) + " (the shards whose index mod " +
                std::to_string(c.data.folds) + " is " + std::to_string(c.data.holdout_fold) +
                "): " + std::to_string(kept->size()) + " of " + std::to_string(pairs->size()) +
                " pairs");
    return kept;
  }
  const data::Manifest& all = pairs->rows();
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < all.size(); ++i) {
    if (data::fold_of_line(all.lines[static_cast<size_t>(i)], c.data.folds) != c.data.holdout_fold)
      keep.push_back(i);
  }
  log_message("leaving out fold " + std::to_string(c.data.holdout_fold) + " of " +
              std::to_string(c.data.folds));
  return data::PairSet::of_manifest(std::make_shared<data::Manifest>(data::subset(all, keep)));
}

std::string layout_text(const data::DataLayout& layout) {
  std::string text;
  for (const auto& [name, value] : layout) text += name + ": " + value + "\n";
  return text;
}

// A resume mid-epoch needs the data layout the checkpoint was written with (else samples are
// repeated or skipped). Checked before anything is written: a difference is an error naming
// every key that changed, or, with restart_epoch, a warning. Returns true when the epoch must
// start over.
bool check_data_layout(const std::string& checkpoint, const data::DataLayout& now,
                       bool restart_epoch) {
  const std::string saved = checkpoint_data_layout(checkpoint);
  if (saved.empty()) {
    log_message("warning: checkpoint '" + checkpoint +
                "' predates stored data layouts; cannot check that the data "
                "are read in the same order");
    return false;
  }
  std::map<std::string, std::string> before;
  std::istringstream lines(saved);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(": ");
    if (colon != std::string::npos) before[line.substr(0, colon)] = line.substr(colon + 2);
  }
  std::string list;
  int differences = 0;
  for (const auto& [name, value] : now) {
    const auto it = before.find(name);
    const std::string old = it == before.end() ? "(not recorded)" : it->second;
    if (old == value) continue;
    list += "\n  " + name + ": checkpoint " + old + ", now " + value;
    ++differences;
  }
  for (const auto& [name, value] : before) {
    if (std::none_of(now.begin(), now.end(), [&](const auto& kv) { return kv.first == name; })) {
      list += "\n  " + name + ": checkpoint " + value + ", not in this data source";
      ++differences;
    }
  }
  if (differences == 0) return false;
  HALO_CHECK(
      restart_epoch, "cannot resume from '", checkpoint,
      "': the data would be read in another order (", differences,
      " difference(s)), repeating and skipping samples; nothing was written. Restore them, or "
      "give --restart-epoch to start the checkpoint's epoch over with this layout:",
      list);
  log_message("warning: the data layout differs from checkpoint '" + checkpoint + "' (" +
              std::to_string(differences) +
              " difference(s)); --restart-epoch: its epoch starts over:" + list);
  return true;
}

// Copies a tokenizer model into the run folder as the atomic writer does: a crash never leaves
// a half-copied tokenizer.model that a resume would then refuse or, worse, accept.
void copy_tokenizer(const std::string& from, const fs::path& to) {
  write_file_atomically(to.string(), [&](const std::string& temporary) {
    fs::copy_file(from, temporary, fs::copy_options::overwrite_existing);
  });
}

// The run's tokenizer: the configured model, else the one this run trained before (resume),
// else a new one trained on the training captions. It is kept in the run folder.
data::Tokenizer prepare_tokenizer(const Config& c, const Run& run) {
  const fs::path run_model = fs::path(c.train.run_dir) / "tokenizer.model";
  if (!c.tokenizer.model.empty()) {
    data::Tokenizer tokenizer = data::Tokenizer::load(c.tokenizer.model);
    if (fs::absolute(c.tokenizer.model) != fs::absolute(run_model))
      copy_tokenizer(c.tokenizer.model, run_model);
    return tokenizer;
  }
  if (!fs::exists(run_model)) {
    // The captions stream to the corpus file (never one string in memory); SentencePiece samples
    // at most TokenizerTrainOptions::max_sentences (1,000,000) of them.
    const std::string corpus_path = (fs::path(c.train.run_dir) / "tokenizer_corpus.txt").string();
    write_file_atomically(corpus_path, [&](const std::string& temporary) {
      std::ofstream out(temporary, std::ios::binary);
      if (run.pairs->sharded()) {
        data::for_each_shard_caption(*run.pairs->shards(),
                                     [&](const std::string& caption) { out << caption << '\n'; });
      }
      for (const auto& caption : run.pairs->rows().captions) out << caption << '\n';
      HALO_CHECK(out.good(), "cannot write the tokenizer corpus '", temporary, "'");
    });
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
  return data::Tokenizer::load(!c.tokenizer.model.empty()
                                   ? c.tokenizer.model
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
  HALO_CHECK(fs::is_regular_file(beside), "cannot resume from '", checkpoint,
             "': its tokenizer is not in ", beside.string(), " and ", in_run.string(),
             " does not exist; set tokenizer.model to the tokenizer it was trained with");
  return beside.string();
}

// Everything about a resume that can be checked before anything is written: the checkpoint's
// configuration against this one (the keys that give tensors their shapes) and its tokenizer.
// Returns the tokenizer to use.
std::string check_resume(const Config& c, const std::string& checkpoint) {
  const std::vector<std::string> differences =
      shape_key_differences(parse_config(checkpoint_config(checkpoint)), c);
  if (!differences.empty()) {
    std::string list;
    for (const auto& d : differences) list += "\n  " + d;
    HALO_FAIL("cannot resume from '", checkpoint,
              "': the configuration changes the shape of the model or loss (", differences.size(),
              " key(s) differ); nothing was written:", list);
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
  if (stale > 0)
    log_message("removed " + std::to_string(stale) + " temporary file(s) of an interrupted run");
  write_file_atomically((fs::path(c.train.run_dir) / "config.yaml").string(), run.config_yaml);
  const fs::path run_model = fs::path(c.train.run_dir) / "tokenizer.model";
  if (!tokenizer.empty() && !(fs::exists(run_model) && fs::equivalent(tokenizer, run_model))) {
    copy_tokenizer(tokenizer, run_model);
  }
}

// The hooks the configuration asks for, in the order they run after each step: pair dynamics
// (train.pair_dynamics) with bootstrapping from their history (loss.sink_bootstrap_from:
// history), the embedding diagnostics, and validation (train.eval_manifest).
std::vector<std::shared_ptr<hooks::StepHook>> configured_hooks(const Config& c, const Run& run) {
  std::vector<std::shared_ptr<hooks::StepHook>> out;
  if (c.train.pair_dynamics) {
    const bool history = c.loss.bootstrap_from_history();
    auto dynamics =
        std::make_shared<hooks::RunPairDynamics>(run.pairs->size(), history, run.main_rank);
    if (history) {
      out.push_back(std::make_shared<hooks::HistoryBootstrapHook>(dynamics, c.loss.sink_bootstrap,
                                                                  c.loss.sink_history_fraction));
    }
    out.push_back(std::make_shared<hooks::PairDynamicsHook>(dynamics, run.pairs->rows_shared(),
                                                            c.train.run_dir, run.main_rank));
  }
  out.push_back(std::make_shared<hooks::EmbeddingDiagnosticsHook>(run.pairs->rows_shared()));
  if (!c.train.eval_manifest.empty()) {
    hooks::ValidationOptions v;
    if (run.main_rank) {
      v.pairs = data::PairSet::open(c.train.eval_manifest, c.data.manifest_options(),
                                    data::PairSet::ShardIndex::keys);
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
  HALO_CHECK(!run.device.is_cuda() || torch::cuda::is_available(), "train.device is '",
             c.train.device, "' but no CUDA device is available");
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
  run.pairs = training_pairs(c, run.main_rank);
  if (resume_path.empty()) {
    if (run.main_rank) write_run_folder(c, run, "");
    run.tokenizer = shared_tokenizer(c, run, *run.group);
  } else {
    run.tokenizer = data::Tokenizer::load(tokenizer_path);
  }
  run.loader = run.pairs->loader(data::caption_encoder(run.tokenizer, c.model.text.context_length),
                                 loader_options(c, run.group->rank(), run.group->size()),
                                 c.data.shuffle_buffer);
  if (options.wrap_loader) run.loader = options.wrap_loader(std::move(run.loader));
  // On a resume nothing has been written yet: a layout that differs is refused here.
  const bool restart_epoch =
      !resume_path.empty() &&
      check_data_layout(resume_path, run.loader->layout(), options.restart_epoch);

  run.model = encoders::ClipModel(c.model, run.tokenizer.vocab_size(), run.tokenizer.eos_id());
  loss::ContrastiveLossOptions loss_opts = loss_options(c);
  loss_opts.check_finite = false;  // the trainer watches the loss on the device instead
  run.loss = loss::make_contrastive_loss(loss_opts);
  if (run.device.is_cpu()) check_cpu_convolutions();  // before the first CPU convolution
  run.model->to(run.device);
  run.loss->to(run.device);
  run.optimizer = make_optimizer(*run.model, *run.loss, c.optim);
  run.parameters = run.model->parameters();
  for (const auto& p : run.loss->parameters()) run.parameters.push_back(p);
  dist::broadcast_parameters(run.parameters,
                             *run.group);  // every rank starts from rank 0's weights
  run.grads =
      std::make_unique<dist::GradientAverager>(run.parameters, *run.group, c.dist.bucket_mb);

  run.steps_per_epoch = run.loader->batches_per_epoch();
  run.total_steps =
      c.train.max_steps > 0 ? c.train.max_steps : c.train.epochs * run.steps_per_epoch;
  run.hooks = configured_hooks(c, run);
  run.hooks.insert(run.hooks.end(), options.hooks.begin(), options.hooks.end());
  if (!resume_path.empty()) {
    check_checkpoint_shapes(resume_path, *run.model, *run.loss);
    run.state = load_checkpoint(resume_path, *run.model, *run.loss, run.optimizer.get());
    if (restart_epoch) run.state.batch_in_epoch = 0;
  }
  run.state.data_layout = layout_text(run.loader->layout());
  for (const auto& hook : run.hooks) hook->load_state(run.state.tensors, run.state.step);
  if (!resume_path.empty()) {
    if (run.main_rank) write_run_folder(c, run, tokenizer_path);  // accepted: now the run folder
    run.group->barrier();
    log_message("resumed from " + resume_path + " at step " + std::to_string(run.state.step));
  }

  log_message(std::to_string(run.pairs->size()) + " pairs (" +
              (run.pairs->sharded()
                   ? std::to_string(run.pairs->shards()->shards.size()) + " shards"
                   : std::to_string(run.pairs->rows().skipped_rows) + " bad rows skipped") +
              "), " + std::to_string(run.steps_per_epoch) + " steps per epoch, " +
              std::to_string(run.total_steps) + " steps, loss " + c.loss.name + ", device " +
              run.device.str());
  if (env.distributed()) log_message(env.describe() + ", backend " + run.group->backend());
  return run;
}

}  // namespace halo::train
