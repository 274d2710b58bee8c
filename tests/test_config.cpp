// The typed configuration: defaults, YAML reading, unknown keys rejected with their path,
// type errors naming the key, --set overrides, each section's validation and the combinations
// across sections, options reaching the loss unchanged, a dump that reads back equal, and the
// configuration of an earlier version reading back unchanged.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/json.h"
#include "test_util.h"
#include "train/components.h"
#include "train/config.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

TEST(Config, ReadsValuesAndKeepsDefaults) {
  const auto c = train::parse_config(
      "model: {embed_dim: 32, image: {type: resnet, width: 16}}\n"
      "train: {batch_size: 8, run_dir: runs/x}\n"
      "data: {mean: [0.5, 0.5, 0.5]}\n");
  EXPECT_EQ(c.model.embed_dim, 32);
  EXPECT_EQ(c.model.image.type, "resnet");
  EXPECT_EQ(c.model.image.width, 16);
  EXPECT_EQ(c.model.image.image_size, 32);  // default kept
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_EQ(c.data.mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.loss.name, "halo");
}

TEST(Config, UnknownKeysAreRejectedWithTheirPath) {
  EXPECT_THAT(
      error_message([] { train::parse_config("model: {image: {colour: 3}}", {}, "a.yaml"); }),
      HasSubstr("a.yaml: unknown key 'model.image.colour'"));
  EXPECT_THAT(error_message([] { train::parse_config("trian: {batch_size: 3}"); }),
              HasSubstr("unknown key 'trian'"));
}

TEST(Config, TypeErrorsNameTheKey) {
  EXPECT_THAT(error_message([] { train::parse_config("train: {batch_size: many}"); }),
              HasSubstr("key 'train.batch_size' must be an integer, got 'many'"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {distill: maybe}"); }),
              HasSubstr("key 'loss.distill' must be true or false"));
  EXPECT_THAT(error_message([] { train::parse_config("model: 3"); }),
              HasSubstr("key 'model' must be a mapping"));
  EXPECT_THAT(error_message([] { train::parse_config("data: {mean: 0.5}"); }),
              HasSubstr("key 'data.mean' must be a list of numbers"));
  EXPECT_THAT(error_message([] { train::parse_config("model: [1, 2"); }),
              HasSubstr("not valid YAML"));
}

TEST(Config, OverridesApplyInOrderAndAreChecked) {
  const auto c = train::parse_config(
      "train: {batch_size: 8}",
      {"train.batch_size=16", "loss.name=infonce", "model.image.pool=mean", "train.batch_size=32"});
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_EQ(c.loss.name, "infonce");
  EXPECT_EQ(c.model.image.pool, "mean");
  EXPECT_THAT(error_message([] { train::parse_config("", {"train.batch_sise=3"}); }),
              HasSubstr("unknown key 'train.batch_sise'"));
  EXPECT_THAT(error_message([] { train::parse_config("", {"train.batch_size"}); }),
              HasSubstr("--set expects KEY=VALUE"));
}

TEST(Config, ValidationNamesTheKey) {
  EXPECT_THAT(
      error_message([] { train::parse_config("model: {image: {image_size: 30, patch_size: 8}}"); }),
      HasSubstr("model.image.patch_size (8) must divide model.image.image_size (30)"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {name: softmax}"); }),
              HasSubstr("loss.name must be"));
  EXPECT_THAT(error_message([] { train::parse_config("train: {precision: fp8}"); }),
              HasSubstr("train.precision"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {implementation: fused}"); }),
              HasSubstr("loss.implementation must be dense, tiled, kernel or auto"));
  EXPECT_EQ(train::parse_config("", {"loss.implementation=tiled"}).loss.implementation, "tiled");
  EXPECT_EQ(train::parse_config("", {"loss.implementation=kernel"}).loss.implementation, "kernel");
  EXPECT_THAT(error_message([] { train::parse_config("loss: {temperature: linear}"); }),
              HasSubstr("loss.temperature must be softplus or log"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {radial_weight: -1}"); }),
              HasSubstr("loss.radial_weight must be >= 0"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap: 1.0}"); }),
              HasSubstr("loss.sink_bootstrap must be in [0, 1)"));
  EXPECT_THAT(error_message([] {
                train::parse_config("loss: {sink_bootstrap: 0.5, implementation: tiled}");
              }),
              HasSubstr("loss.sink_bootstrap needs loss.implementation: dense"));
  EXPECT_THAT(error_message([] {
                train::parse_config("loss: {sink_bootstrap: 0.5, sink_bootstrap_from: past}");
              }),
              HasSubstr("loss.sink_bootstrap_from must be model or history"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap_from: history}"); }),
              HasSubstr("history needs loss.name: halo or infonce and loss.sink_bootstrap > 0"));
  EXPECT_THAT(error_message([] {
                train::parse_config(
                    "loss: {name: siglip, sink_bootstrap: 0.5, sink_bootstrap_from: history}");
              }),
              HasSubstr("history needs loss.name: halo or infonce"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_history_fraction: 0}"); }),
              HasSubstr("loss.sink_history_fraction must be in (0, 1)"));
  EXPECT_EQ(train::parse_config(
                "loss: {name: infonce, sink_bootstrap: 0.5, sink_bootstrap_from: history}")
                .loss.sink_bootstrap_from,
            "history");
  EXPECT_THAT(error_message([] {
                train::parse_config(
                    "loss: {sink_bootstrap: 0.5, sink_bootstrap_from: history}\n"
                    "train: {pair_dynamics: false}");
              }),
              HasSubstr("it needs train.pair_dynamics: true"));
  EXPECT_EQ(train::parse_config("loss: {sink_bootstrap: 0.5, sink_bootstrap_from: history}")
                .loss.sink_bootstrap_from,
            "history");
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_history_fraction: 1.0}"); }),
              HasSubstr("loss.sink_history_fraction must be in (0, 1)"));
  EXPECT_THAT(error_message([] { train::parse_config("model: {text: {width: 10, heads: 4}}"); }),
              HasSubstr("model.text.heads (4) must divide model.text.width (10)"));
}

TEST(Config, EachSectionValidatesItsOwnKeys) {
  encoders::ModelConfig model;
  model.text.heads = 3;
  EXPECT_THAT(error_message([&] { model.validate(); }),
              HasSubstr("model.text.heads (3) must divide"));
  loss::LossConfig loss;
  loss.radial_weight = std::nan("");
  EXPECT_THAT(error_message([&] { loss.validate(); }),
              HasSubstr("loss.radial_weight must be >= 0"));
  data::DataConfig data;
  data.std = {0.2, 0.0, 0.2};
  EXPECT_THAT(error_message([&] { data.validate(); }), HasSubstr("data.std values must be > 0"));
  dist::DistConfig dist;
  dist.backend = "mpi";
  EXPECT_THAT(error_message([&] { dist.validate(); }),
              HasSubstr("dist.backend must be auto, gloo or nccl"));
  // The loss module checks the same options, in the same words, when built directly.
  loss::ContrastiveLossOptions direct;
  direct.sink_history_fraction = 0;
  EXPECT_THAT(error_message([&] { loss::make_contrastive_loss(direct); }),
              HasSubstr("loss.sink_history_fraction must be in (0, 1)"));
}

TEST(Config, CombinationsAcrossSectionsNameBothKeys) {
  const std::string message = error_message([] {
    train::parse_config(
        "loss: {sink_bootstrap: 0.5, sink_bootstrap_from: history}\ntrain: {pair_dynamics: false}");
  });
  EXPECT_THAT(message, HasSubstr("loss.sink_bootstrap_from"));
  EXPECT_THAT(message, HasSubstr("train.pair_dynamics"));
}

TEST(Config, NoOptionIsRewrittenOnTheWayToTheLoss) {
  const auto c = train::parse_config("loss: {sink_bootstrap: 0.7, sink_bootstrap_from: history}");
  const loss::ContrastiveLossOptions o = train::loss_options(c);
  EXPECT_DOUBLE_EQ(o.sink_bootstrap, 0.7);
  EXPECT_EQ(o.sink_bootstrap_from, "history");
  EXPECT_DOUBLE_EQ(o.model_bootstrap(), 0.0);  // the loss itself takes no share from the model
  EXPECT_EQ(o.embed_dim, c.model.embed_dim);
  EXPECT_EQ(o.num_candidates, c.train.batch_size);
  const auto from_model = train::loss_options(train::parse_config("loss: {sink_bootstrap: 0.3}"));
  EXPECT_DOUBLE_EQ(from_model.model_bootstrap(), 0.3);
}

TEST(Config, InfiniteAndNanValuesAreRejected) {
  EXPECT_THAT(error_message([] { train::parse_config("optim: {lr: .inf}"); }),
              HasSubstr("optim.lr"));
  EXPECT_THAT(error_message([] { train::parse_config("optim: {lr: .nan}"); }),
              HasSubstr("optim.lr"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap: .nan}"); }),
              HasSubstr("loss.sink_bootstrap must be in [0, 1)"));
  EXPECT_THAT(error_message([] { train::parse_config("dist: {bucket_mb: .inf}"); }),
              HasSubstr("dist.bucket_mb"));
}

// Every number of every section: NaN and both infinities are refused, naming the key (a NaN
// compares false, so a missing check would let it through silently).
TEST(Config, EveryNumberRejectsNanAndInfinityNamingTheKey) {
  const std::vector<std::string> keys = {"model.image.mlp_ratio",
                                         "model.text.mlp_ratio",
                                         "model.center_momentum",
                                         "data.augment.crop_scale_min",
                                         "data.augment.crop_scale_max",
                                         "loss.label_smoothing",
                                         "loss.radial_weight",
                                         "loss.sink_bootstrap",
                                         "loss.sink_history_fraction",
                                         "optim.lr",
                                         "optim.weight_decay",
                                         "optim.beta1",
                                         "optim.beta2",
                                         "optim.eps",
                                         "optim.grad_clip",
                                         "optim.temperature_lr_scale",
                                         "dist.rendezvous_timeout_s",
                                         "dist.collective_timeout_s",
                                         "dist.bucket_mb"};
  for (const auto& key : keys) {
    for (const std::string value : {".nan", ".inf", "-.inf"}) {
      SCOPED_TRACE(key + "=" + value);
      EXPECT_THAT(error_message([&] { train::parse_config("", {key + "=" + value}); }),
                  HasSubstr(key));
    }
  }
  for (const std::string key : {"data.mean", "data.std"}) {
    EXPECT_THAT(error_message([&] { train::parse_config("", {key + "=[0.5, .nan, 0.5]"}); }),
                HasSubstr(key));
    EXPECT_THAT(error_message([&] { train::parse_config("", {key + "=[0.5, .inf, 0.5]"}); }),
                HasSubstr(key));
  }
}

// A run folder written before the options moved into their modules (tests/fixtures/legacy_run):
// its config reads back with every key and value it had, and its checkpoint loads and scores
// pairs exactly as the build that wrote it did.
TEST(Config, ConfigOfAnEarlierVersionReadsBackUnchanged) {
  const std::string dir = std::string(HALO_SOURCE_DIR) + "/tests/fixtures/legacy_run";
  const std::string old_yaml = read_file(dir + "/config.yaml");
  ASSERT_FALSE(old_yaml.empty());
  const std::string now = train::to_yaml(train::parse_config(old_yaml, {}, dir + "/config.yaml"));
  // Numbers were written with 17 digits then (0.80000000000000004); they are now the shortest
  // text of the same double (0.8). Every other line is unchanged. Keys added since sit between
  // the old ones, so each old line is looked for from where the last one was found.
  std::vector<std::string> new_lines;
  std::istringstream now_text(now);
  for (std::string line; std::getline(now_text, line);) new_lines.push_back(line);
  std::istringstream old_lines(old_yaml);
  size_t at = 0;
  int64_t lines = 0, rewritten = 0;
  for (std::string old_line; std::getline(old_lines, old_line); ++lines) {
    const std::string key = old_line.substr(0, old_line.find(':') + 1);  // indentation and key
    size_t k = at;
    while (k < new_lines.size() && new_lines[k].compare(0, key.size(), key) != 0) ++k;
    ASSERT_LT(k, new_lines.size()) << "missing: " << old_line;
    at = k + 1;
    const std::string& new_line = new_lines[k];
    if (old_line == new_line) continue;
    // Only numbers may differ, and only in how they are written: the same doubles, shorter.
    const YAML::Node o = YAML::Load(old_line.substr(key.size())),
                     n = YAML::Load(new_line.substr(key.size()));
    ASSERT_TRUE(o.IsScalar() || o.IsSequence()) << old_line;
    ASSERT_EQ(o.size(), n.size()) << old_line << " -> " << new_line;
    if (o.IsSequence()) {
      for (size_t i = 0; i < o.size(); ++i)
        EXPECT_EQ(o[i].as<double>(), n[i].as<double>()) << old_line;
    } else {
      EXPECT_EQ(o.as<double>(), n.as<double>()) << old_line << " -> " << new_line;
    }
    EXPECT_LT(new_line.size(), old_line.size()) << new_line;
    ++rewritten;
  }
  EXPECT_GT(lines, 50);
  EXPECT_GT(rewritten, 0);  // the fixture has 17-digit numbers
}

// Numbers are written as the shortest text that reads back as the same double, not with 17
// digits (crop_scale_min: 0.8, not 0.80000000000000004).
TEST(Config, NumbersAreWrittenInTheirShortestExactForm) {
  const auto c = train::parse_config(
      "optim: {beta2: 0.98, lr: 0.0003}\ndata: {mean: [0.1, 0.2, 0.30000000000000004]}");
  const std::string yaml = train::to_yaml(c);
  EXPECT_THAT(yaml, HasSubstr("beta2: 0.98\n"));
  EXPECT_THAT(yaml, HasSubstr("lr: 0.0003\n"));
  EXPECT_THAT(yaml, HasSubstr("mean: [0.1, 0.2, 0.30000000000000004]\n"));
  EXPECT_EQ(yaml.find("0000000000"), yaml.find("0.30000000000000004") + 3);  // only where needed
  const auto again = train::parse_config(yaml);
  EXPECT_EQ(again.optim.beta2, 0.98);
  EXPECT_EQ(again.data.mean[2], 0.1 + 0.2);
  // metrics.jsonl and every results file write numbers through json_number: the same rule.
  EXPECT_EQ(json_number(0.8), "0.8");
  EXPECT_EQ(json_number(0.1 + 0.2), "0.30000000000000004");
  for (const double v :
       {1.0 / 3, 4.1588831, static_cast<double>(4.1588831f), 1e-300, -2.5e17, 123456.789012345}) {
    EXPECT_EQ(std::strtod(json_number(v).c_str(), nullptr), v) << json_number(v);
  }
}

TEST(Config, DumpReadsBackEqual) {
  const auto c =
      train::parse_config("model: {embed_dim: 48}\ndata: {separator: ','}", {"optim.lr=0.02"});
  const std::string yaml = train::to_yaml(c);
  const auto again = train::parse_config(yaml);
  EXPECT_EQ(train::to_yaml(again), yaml);
  EXPECT_EQ(again.model.embed_dim, 48);
  EXPECT_EQ(again.data.separator, ",");
  EXPECT_DOUBLE_EQ(again.optim.lr, 0.02);
}

TEST(Config, ShippedPresetsAreValid) {
  for (const char* preset : {"tiny.yaml", "vit-b16.yaml"}) {
    EXPECT_NO_THROW(train::load_config(std::string(HALO_SOURCE_DIR) + "/configs/" + preset))
        << preset;
  }
  EXPECT_THAT(error_message([] { train::load_config("/no/such/config.yaml"); }),
              HasSubstr("config file '/no/such/config.yaml' does not exist"));
}

}  // namespace
}  // namespace halo::test
