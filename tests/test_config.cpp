// The typed configuration: defaults, YAML reading, unknown keys rejected with their path,
// type errors naming the key, --set overrides, validation, and a dump that reads back equal.
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "train/config.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

TEST(Config, ReadsValuesAndKeepsDefaults) {
  const auto c = train::parse_config("model: {embed_dim: 32, image: {type: resnet, width: 16}}\n"
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
  EXPECT_THAT(error_message([] { train::parse_config("model: {image: {colour: 3}}", {}, "a.yaml"); }),
              HasSubstr("a.yaml: unknown key 'model.image.colour'"));
  EXPECT_THAT(error_message([] { train::parse_config("trian: {batch_size: 3}"); }),
              HasSubstr("unknown key 'trian'"));
}

TEST(Config, TypeErrorsNameTheKey) {
  EXPECT_THAT(error_message([] { train::parse_config("train: {batch_size: many}"); }),
              HasSubstr("key 'train.batch_size' must be an integer, got 'many'"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {distill: maybe}"); }),
              HasSubstr("key 'loss.distill' must be true or false"));
  EXPECT_THAT(error_message([] { train::parse_config("model: 3"); }), HasSubstr("key 'model' must be a mapping"));
  EXPECT_THAT(error_message([] { train::parse_config("data: {mean: 0.5}"); }),
              HasSubstr("key 'data.mean' must be a list of numbers"));
  EXPECT_THAT(error_message([] { train::parse_config("model: [1, 2"); }), HasSubstr("not valid YAML"));
}

TEST(Config, OverridesApplyInOrderAndAreChecked) {
  const auto c = train::parse_config("train: {batch_size: 8}", {"train.batch_size=16", "loss.name=infonce",
                                                                  "model.image.pool=mean", "train.batch_size=32"});
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_EQ(c.loss.name, "infonce");
  EXPECT_EQ(c.model.image.pool, "mean");
  EXPECT_THAT(error_message([] { train::parse_config("", {"train.batch_sise=3"}); }),
              HasSubstr("unknown key 'train.batch_sise'"));
  EXPECT_THAT(error_message([] { train::parse_config("", {"train.batch_size"}); }), HasSubstr("--set expects KEY=VALUE"));
}

TEST(Config, ValidationNamesTheKey) {
  EXPECT_THAT(error_message([] { train::parse_config("model: {image: {image_size: 30, patch_size: 8}}"); }),
              HasSubstr("model.image.patch_size (8) must divide model.image.image_size (30)"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {name: softmax}"); }), HasSubstr("loss.name must be"));
  EXPECT_THAT(error_message([] { train::parse_config("train: {precision: fp8}"); }), HasSubstr("train.precision"));
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
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap: 0.5, implementation: tiled}"); }),
              HasSubstr("loss.sink_bootstrap needs loss.implementation: dense"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap: 0.5, sink_bootstrap_from: past}"); }),
              HasSubstr("loss.sink_bootstrap_from must be model or history"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_bootstrap_from: history}"); }),
              HasSubstr("history needs loss.name: halo or infonce and loss.sink_bootstrap > 0"));
  EXPECT_THAT(error_message([] {
                train::parse_config("loss: {name: siglip, sink_bootstrap: 0.5, sink_bootstrap_from: history}");
              }),
              HasSubstr("history needs loss.name: halo or infonce"));
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_history_fraction: 0}"); }),
              HasSubstr("loss.sink_history_fraction must be in (0, 1)"));
  EXPECT_EQ(train::parse_config("loss: {name: infonce, sink_bootstrap: 0.5, sink_bootstrap_from: history}")
                .loss.sink_bootstrap_from,
            "history");
  EXPECT_THAT(error_message([] {
                train::parse_config("loss: {sink_bootstrap: 0.5, sink_bootstrap_from: history}\n"
                                    "train: {pair_dynamics: false}");
              }),
              HasSubstr("it needs train.pair_dynamics: true"));
  EXPECT_EQ(train::parse_config("loss: {sink_bootstrap: 0.5, sink_bootstrap_from: history}").loss.sink_bootstrap_from,
            "history");
  EXPECT_THAT(error_message([] { train::parse_config("loss: {sink_history_fraction: 1.0}"); }),
              HasSubstr("loss.sink_history_fraction must be in (0, 1)"));
  EXPECT_THAT(error_message([] { train::parse_config("model: {text: {width: 10, heads: 4}}"); }),
              HasSubstr("model.text.heads (4) must divide model.text.width (10)"));
}

TEST(Config, DumpReadsBackEqual) {
  const auto c = train::parse_config("model: {embed_dim: 48}\ndata: {separator: ','}", {"optim.lr=0.02"});
  const std::string yaml = train::to_yaml(c);
  const auto again = train::parse_config(yaml);
  EXPECT_EQ(train::to_yaml(again), yaml);
  EXPECT_EQ(again.model.embed_dim, 48);
  EXPECT_EQ(again.data.separator, ",");
  EXPECT_DOUBLE_EQ(again.optim.lr, 0.02);
}

TEST(Config, ShippedPresetsAreValid) {
  for (const char* preset : {"tiny.yaml", "vit-b16.yaml"}) {
    EXPECT_NO_THROW(train::load_config(std::string(HALO_SOURCE_DIR) + "/configs/" + preset)) << preset;
  }
  EXPECT_THAT(error_message([] { train::load_config("/no/such/config.yaml"); }),
              HasSubstr("cannot read config file '/no/such/config.yaml'"));
}

}  // namespace
}  // namespace halo::test
