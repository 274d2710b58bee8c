// halo-clip train: loads the configuration (with --set overrides), optionally prints it, and
// runs training (see src/train/trainer.cpp).
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "dist/env.h"
#include "train/components.h"
#include "train/trainer.h"

namespace halo::cli {

int run_train(const std::vector<std::string>& argv) {
  ArgParser args("train",
                 "Train an image encoder and a text encoder on an image-caption manifest with the\n"
                 "HALO batch loss (or InfoNCE / SigLIP: --set loss.name=infonce). Writes the\n"
                 "resolved config, metrics.jsonl and checkpoints into train.run_dir. SIGINT or\n"
                 "SIGTERM writes a checkpoint and exits; --resume latest continues exactly.");
  args.required("config", "FILE", "YAML configuration (see configs/)")
      .repeated("set", "KEY=VALUE",
                "override a configuration value, e.g. --set train.batch_size=64")
      .option("resume", "latest|auto|FILE",
              "continue from the newest checkpoint of train.run_dir (auto: if there is one), "
              "or from a file")
      .toggle("restart-epoch",
              "with --resume: if the data layout differs from the checkpoint's (data.workers, "
              "processes, "
              "batch, data.shuffle_buffer, the shards), start its epoch over instead of refusing")
      .toggle("dump-config",
              "print the resolved configuration as YAML and what one step costs (global batch, "
              "micro-batches, loss memory) and exit")
      .option("world-size", "N",
              "processes to assume for --dump-config (default: WORLD_SIZE, else 1)", "");
  if (!args.parse(argv)) return 0;
  HALO_CHECK(args.str("world-size").empty() || args.on("dump-config"),
             "--world-size is read only with --dump-config; a run's processes come from WORLD_SIZE "
             "(set by halo-clip launch or torchrun)");
  const train::Config config = train::load_config(args.str("config"), args.all("set"));
  if (args.on("dump-config")) {
    const int64_t world =
        args.str("world-size").empty() ? dist::read_env().world_size : args.integer("world-size");
    HALO_CHECK(world >= 1, "--world-size must be >= 1, got ", world);
    train::loader_options(config, 0,
                          world);  // the batch must split over the processes and micro-batches
    std::cout << train::to_yaml(config) << train::step_cost_summary(config, world);
    return 0;
  }
  train::TrainOptions options;
  if (args.has("resume")) options.resume = args.str("resume");
  options.restart_epoch = args.on("restart-epoch");
  HALO_CHECK(!options.restart_epoch || args.has("resume"), "--restart-epoch needs --resume");
  if (options.resume == "auto") {  // what `halo-clip launch` passes when it restarts workers
    const auto latest = std::filesystem::path(config.train.run_dir) / "checkpoints" / "latest";
    options.resume = std::filesystem::exists(latest) ? "latest" : "";
  }
  return train::run_training(config, options).exit_code;
}

}  // namespace halo::cli
