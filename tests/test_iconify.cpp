// `prepare iconify` on a tiny IconifyJSON corpus written here (collections.json and four set
// files: an emoji set, the held-out set mdi, a monochrome and a multicolour training set):
// attribution, splits, duplicates and decontamination, captions, rendered pixels, idempotent
// reruns; and the IconifyJSON rules (aliases, flips, rotation, hidden, animated) one by one.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/iconify_set.h"
#include "data/image.h"
#include "data/prepare.h"
#include "data/svg_render.h"
#include "data/tar_reader.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace ic = data::iconify;

// Four sets. Expected, at any size: emoji 3 samples; val (mdi) 3 (one of them the hFlip alias,
// the hidden icon left out); train: access-point-network, twin-a and rainbow written, copy-of-val
// and copy-of-emoji removed (their documents are those of an evaluation icon), twin-b collapsed
// (the same document as twin-a) and twin-c collapsed (another document, the same pixels),
// spinner left out as animated, blank skipped as a flat image.
void write_corpus(const fs::path& source) {
  write_text((source / "collections.json").string(), R"({
  "testmoji": {"name": "Test Moji", "total": 3,
    "author": {"name": "Moji Artists", "url": "https://example.org/moji"},
    "license": {"title": "CC BY 4.0", "spdx": "CC-BY-4.0",
                "url": "https://creativecommons.org/licenses/by/4.0/"},
    "category": "Emoji", "palette": true},
  "trainmono": {"name": "Train Mono", "total": 7,
    "author": {"name": "Mono Maker", "url": "https://example.org/mono"},
    "license": {"title": "MIT", "spdx": "MIT", "url": "https://example.org/mono/LICENSE"},
    "category": "UI 24px", "palette": false},
  "mdi": {"name": "Material Design Icons", "total": 2,
    "author": {"name": "Pictogrammers", "url": "https://example.org/mdi"},
    "license": {"title": "Apache 2.0", "spdx": "Apache-2.0",
                "url": "https://example.org/mdi/LICENSE"},
    "category": "Material", "palette": false},
  "traincolor": {"name": "Train Colour", "total": 2, "author": {"name": "Colour Studio"},
    "license": {"title": "MIT", "spdx": "MIT"}, "category": "UI Multicolor", "palette": true}
})");
  write_text((source / "package.json").string(),
             R"({"name": "@iconify/json", "version": "0.0.1-test"})");
  write_text((source / "json" / "testmoji.json").string(),
             R"({"prefix": "testmoji", "info": {"name": "Test Moji"},
  "icons": {
    "grinning-face": {"body": "<circle cx=\"8\" cy=\"8\" r=\"8\" fill=\"#ff0000\"/>"},
    "cat-face": {"body": "<rect x=\"2\" y=\"2\" width=\"12\" height=\"12\" fill=\"#00ff00\"/>"},
    "mystery": {"body": "<rect x=\"4\" y=\"4\" width=\"8\" height=\"8\" fill=\"#0000ff\"/>"}
  },
  "categories": {"Smileys & Emotion": ["grinning-face"], "Animals Nature": ["cat-face"]},
  "width": 16, "height": 16})");
  write_text((source / "json" / "mdi.json").string(),
             R"({"prefix": "mdi", "info": {"name": "Material Design Icons"},
  "icons": {
    "account-arrow-left-outline": {"body": "<path d=\"M0 0h12v24H0z\" fill=\"currentColor\"/>"},
    "val-only": {"body": "<path d=\"M0 0h24v12H0z\" fill=\"currentColor\"/>"},
    "old-icon": {"body": "<path d=\"M0 0h6v6H0z\" fill=\"currentColor\"/>", "hidden": true}
  },
  "aliases": {
    "account-arrow-right-outline": {"parent": "account-arrow-left-outline", "hFlip": true}
  },
  "categories": {"Account / User": ["account-arrow-left-outline"]},
  "width": 24, "height": 24})");
  write_text((source / "json" / "trainmono.json").string(),
             R"({"prefix": "trainmono", "info": {"name": "Train Mono"},
  "icons": {
    "access-point-network": {"body": "<path d=\"M0 12h24v12H0z\" fill=\"currentColor\"/>"},
    "copy-of-val": {"body": "<path d=\"M0 0h24v12H0z\" fill=\"currentColor\"/>"},
    "copy-of-emoji": {"width": 16, "height": 16,
      "body": "<rect x=\"2\" y=\"2\" width=\"12\" height=\"12\" fill=\"#00ff00\"/>"},
    "twin-a": {"body": "<path d=\"M6 6h12v12H6z\" fill=\"currentColor\"/>"},
    "twin-b": {"body": "<path d=\"M6 6h12v12H6z\" fill=\"currentColor\"/>"},
    "spinner": {"body": "<circle cx=\"12\" cy=\"12\" r=\"4\"><animate dur=\"1s\"/></circle>"},
    "blank": {"body": "<g/>"}
  },
  "width": 24, "height": 24})");
  // No set-level width and height: Iconify's default, 16.
  write_text((source / "json" / "traincolor.json").string(),
             R"({"prefix": "traincolor", "info": {"name": "Train Colour"},
  "icons": {
    "twin-c": {"body": "<rect x=\"4\" y=\"4\" width=\"8\" height=\"8\" fill=\"currentColor\"/>"},
    "rainbow": {
      "body": "<path d=\"M0 0h8v16H0z\" fill=\"#f00\"/><path d=\"M8 0h8v16H8z\" fill=\"#00f\"/>"}
  }})");
}

struct Sample {
  std::string key, caption, shard;
  YAML::Node json;
  cv::Mat rgb;
};

// Every sample of OUT/SPLIT/*.tar by uid ("set:name"), checking sizes.json on the way.
std::map<std::string, Sample> read_split(const fs::path& out, const std::string& split) {
  std::map<std::string, Sample> samples;
  const fs::path folder = out / split;
  if (!fs::exists(folder)) return samples;
  const YAML::Node sizes = YAML::LoadFile((folder / "sizes.json").string());
  std::vector<fs::path> shards;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.path().extension() == ".tar") shards.push_back(e.path());
  }
  std::sort(shards.begin(), shards.end());
  EXPECT_EQ(sizes.size(), shards.size()) << folder;
  int64_t smallest = -1, largest = 0;  // size-balanced: counts differ by at most one
  for (const auto& kv : sizes) {
    const auto n = kv.second.as<int64_t>();
    smallest = smallest < 0 ? n : std::min(smallest, n);
    largest = std::max(largest, n);
  }
  EXPECT_LE(largest - smallest, 1) << folder;
  EXPECT_FALSE(fs::exists(folder / ".rebalance"));
  for (const auto& shard : shards) {
    data::ShardReader reader(shard.string());
    data::ShardSample s;
    int64_t count = 0;
    while (reader.next(s)) {
      EXPECT_TRUE(s.usable()) << s.where() << ": " << s.problem;
      Sample out_sample;
      out_sample.key = s.key;
      out_sample.caption = s.caption_text();
      out_sample.shard = shard.filename().string();
      out_sample.json = YAML::Load(s.members.at(static_cast<size_t>(s.json)).data);
      out_sample.rgb = data::decode_image_bytes(s.image_bytes(), s.where());
      const std::string uid = out_sample.json["uid"].as<std::string>();
      EXPECT_EQ(samples.count(uid), 0u) << uid << " twice in " << split;
      samples[uid] = out_sample;
      ++count;
    }
    EXPECT_TRUE(reader.error().empty()) << reader.error();
    EXPECT_EQ(sizes[shard.filename().string()].as<int64_t>(), count) << shard;
  }
  return samples;
}

cv::Vec3b pixel(const cv::Mat& rgb, int x, int y) {
  return rgb.at<cv::Vec3b>(y, x);
}

std::map<std::string, std::string> output_bytes(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) {
      files[fs::relative(e.path(), out).string()] = read_file(e.path().string());
    }
  }
  return files;
}

data::IconifyOptions options_for(const fs::path& source, const fs::path& out) {
  data::IconifyOptions o;
  o.source = source.string();
  o.out = out.string();
  o.size = 32;
  o.threads = 2;
  o.samples_per_shard = 2;
  o.verbose = false;
  return o;
}

TEST(IconifyCorpus, SplitsAttributionCaptionsPixelsAndDuplicates) {
  const fs::path dir = make_temp_dir("iconify_corpus");
  write_corpus(dir / "source");
  const fs::path out = dir / "out";
  const data::IconifyReport report = data::prepare_iconify(options_for(dir / "source", out));
  EXPECT_FALSE(report.already_complete);

  const auto emoji = read_split(out, "emoji");
  const auto val = read_split(out, "val");
  const auto train = read_split(out, "train");

  // Splits: by set, disjoint, every visible icon of the evaluation sets where it belongs.
  std::set<std::string> emoji_uids, val_uids, train_uids;
  for (const auto& [uid, s] : emoji) emoji_uids.insert(uid);
  for (const auto& [uid, s] : val) val_uids.insert(uid);
  for (const auto& [uid, s] : train) train_uids.insert(uid);
  EXPECT_EQ(emoji_uids, (std::set<std::string>{"testmoji:cat-face", "testmoji:grinning-face",
                                               "testmoji:mystery"}));
  EXPECT_EQ(val_uids, (std::set<std::string>{"mdi:account-arrow-left-outline",
                                             "mdi:account-arrow-right-outline", "mdi:val-only"}));
  EXPECT_EQ(train_uids, (std::set<std::string>{"trainmono:access-point-network", "trainmono:twin-a",
                                               "traincolor:rainbow"}));
  for (const auto& uid : train_uids) {
    EXPECT_EQ(emoji_uids.count(uid) + val_uids.count(uid), 0u) << uid;
  }

  // Every sample names its set, icon, licence and author.
  const std::map<std::string, std::pair<std::string, std::string>> licence{
      {"testmoji", {"CC-BY-4.0", "Moji Artists"}},
      {"mdi", {"Apache-2.0", "Pictogrammers"}},
      {"trainmono", {"MIT", "Mono Maker"}},
      {"traincolor", {"MIT", "Colour Studio"}}};
  for (const auto* split : {&emoji, &val, &train}) {
    for (const auto& [uid, s] : *split) {
      const std::string set = s.json["set"].as<std::string>();
      EXPECT_EQ(uid, set + ":" + s.json["name"].as<std::string>());
      EXPECT_EQ(s.json["license"].as<std::string>(), licence.at(set).first) << uid;
      EXPECT_EQ(s.json["author"].as<std::string>(), licence.at(set).second) << uid;
      EXPECT_EQ(s.json["key"].as<std::string>(), s.key);
      EXPECT_EQ(s.key.size(), 9u);
      EXPECT_EQ(s.rgb.rows, 32);
      EXPECT_EQ(s.rgb.cols, 32);
    }
  }
  EXPECT_EQ(val.at("mdi:account-arrow-right-outline").json["parent"].as<std::string>(),
            "account-arrow-left-outline");

  // Attribution: every set with its licence and author, in ATTRIBUTION.md and sets.tsv.
  const std::string attribution = read_file((out / "ATTRIBUTION.md").string());
  std::map<std::string, std::vector<std::string>> tsv;
  std::istringstream lines(read_file((out / "sets.tsv").string()));
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line.rfind("prefix\tname\tauthor\tauthor_url\tlicense\t", 0), 0u) << line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::stringstream fs_line(line);
    std::string field;
    while (std::getline(fs_line, field, '\t')) fields.push_back(field);
    ASSERT_EQ(fields.size(), 12u) << line;
    tsv[fields[0]] = fields;
  }
  ASSERT_EQ(tsv.size(), 4u);
  const std::map<std::string, std::string> split_of{
      {"testmoji", "emoji"}, {"mdi", "val"}, {"trainmono", "train"}, {"traincolor", "train"}};
  for (const auto& [set, who] : licence) {
    EXPECT_THAT(attribution, HasSubstr("| " + set + " |"));
    EXPECT_THAT(attribution, HasSubstr(who.first));
    EXPECT_THAT(attribution, HasSubstr(who.second));
    EXPECT_EQ(tsv[set][2], who.second);
    EXPECT_EQ(tsv[set][4], who.first);
    EXPECT_EQ(tsv[set][9], split_of.at(set));
  }
  EXPECT_THAT(attribution, HasSubstr("[Moji Artists](https://example.org/moji)"));
  EXPECT_THAT(attribution, HasSubstr("0.0.1-test"));
  EXPECT_EQ(tsv["trainmono"][10], "6");  // drawn (the animated one is left out)
  EXPECT_EQ(tsv["trainmono"][11], "2");  // written

  // Duplicates and evaluation images: the counts.
  EXPECT_EQ(report.train.rendered, 8);
  EXPECT_EQ(report.train.animated, 1);
  EXPECT_EQ(report.train.blank, 1);
  EXPECT_EQ(report.train.before, 7);
  EXPECT_EQ(report.train.removed, 2);
  ASSERT_EQ(report.train.removed_by.size(), 2u);
  EXPECT_EQ(report.train.removed_by[0], (std::pair<std::string, int64_t>{"emoji", 1}));
  EXPECT_EQ(report.train.removed_by[1], (std::pair<std::string, int64_t>{"val", 1}));
  EXPECT_EQ(report.train.collapsed, 2);
  EXPECT_EQ(report.train.written, 3);
  EXPECT_EQ(report.train.shards, 2);
  EXPECT_EQ(report.val.hidden, 1);
  EXPECT_EQ(report.val.written, 3);
  EXPECT_EQ(report.emoji.written, 3);
  const YAML::Node prepared = YAML::LoadFile((out / "prepared.json").string());
  EXPECT_EQ(prepared["splits"]["train"]["removed_by"]["val"].as<int>(), 1);
  EXPECT_EQ(prepared["splits"]["train"]["removed_by"]["emoji"].as<int>(), 1);
  EXPECT_EQ(prepared["splits"]["train"]["collapsed"].as<int>(), 2);
  EXPECT_EQ(prepared["splits"]["train"]["before"].as<int>(), 7);
  EXPECT_EQ(prepared["splits"]["train"]["written"].as<int>(), 3);
  EXPECT_EQ(prepared["splits"]["val"]["pattern"].as<std::string>(), "val/{00000..00001}.tar");
  const std::string skipped = read_file((out / "skipped.tsv").string());
  EXPECT_THAT(skipped, HasSubstr("train\ttrainmono\tspinner\tanimated"));
  EXPECT_THAT(skipped, HasSubstr("train\ttrainmono\tblank\tdrawn as one flat colour"));
  EXPECT_THAT(skipped, HasSubstr("train\ttrainmono\tcopy-of-val\talso in val (mdi:val-only)"));
  EXPECT_THAT(skipped,
              HasSubstr("train\ttrainmono\tcopy-of-emoji\talso in emoji (testmoji:cat-face)"));
  EXPECT_THAT(skipped, HasSubstr("train\ttrainmono\ttwin-b\tduplicate of trainmono:twin-a"));
  EXPECT_THAT(skipped, HasSubstr("train\ttraincolor\ttwin-c\tduplicate of trainmono:twin-a"));

  // Captions: the name's words, then the category (an alias takes its parent's).
  EXPECT_EQ(val.at("mdi:account-arrow-left-outline").caption,
            "account arrow left outline, account / user");
  EXPECT_EQ(val.at("mdi:account-arrow-right-outline").caption,
            "account arrow right outline, account / user");
  EXPECT_EQ(val.at("mdi:val-only").caption, "val only");
  EXPECT_EQ(train.at("trainmono:access-point-network").caption, "access point network");
  EXPECT_EQ(emoji.at("testmoji:grinning-face").caption, "grinning face, smileys & emotion");

  // Emoji classes: the merged, sorted categories; icons without one have no label.
  EXPECT_EQ(read_file((out / "emoji" / "classes.txt").string()),
            "animals nature\nsmileys & emotion\n");
  EXPECT_EQ(emoji.at("testmoji:cat-face").json["label"].as<int>(), 0);
  EXPECT_EQ(emoji.at("testmoji:grinning-face").json["label"].as<int>(), 1);
  EXPECT_FALSE(emoji.at("testmoji:mystery").json["label"]);
  EXPECT_FALSE(val.at("mdi:account-arrow-left-outline").json["label"]);

  // Pixels: monochrome icons black on white, the hFlip alias mirrored, colours as drawn.
  const cv::Mat& bottom = train.at("trainmono:access-point-network").rgb;
  EXPECT_EQ(pixel(bottom, 16, 24), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(pixel(bottom, 16, 8), cv::Vec3b(255, 255, 255));
  const cv::Mat& left = val.at("mdi:account-arrow-left-outline").rgb;
  const cv::Mat& right = val.at("mdi:account-arrow-right-outline").rgb;
  EXPECT_EQ(pixel(left, 8, 16), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(pixel(left, 24, 16), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixel(right, 8, 16), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(pixel(right, 24, 16), cv::Vec3b(0, 0, 0));
  cv::Mat flipped;
  cv::flip(left, flipped, 1);
  EXPECT_EQ(cv::norm(flipped, right, cv::NORM_INF), 0.0);
  const cv::Mat& rainbow = train.at("traincolor:rainbow").rgb;
  EXPECT_EQ(pixel(rainbow, 8, 16), cv::Vec3b(255, 0, 0));  // R, G, B
  EXPECT_EQ(pixel(rainbow, 24, 16), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(pixel(emoji.at("testmoji:grinning-face").rgb, 16, 16), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(pixel(emoji.at("testmoji:grinning-face").rgb, 0, 0), cv::Vec3b(255, 255, 255));
}

// Two training sets of 20 icons each (bars of distinct widths), drawn in set order: the shards
// must mix them, each shard holding both sets in an order that is not the drawing order.
TEST(IconifyCorpus, ShardsMixTheSetsOfASplit) {
  const fs::path dir = make_temp_dir("iconify_mix");
  const fs::path source = dir / "source";
  std::string collections = "{";
  for (const std::string set : {"bars-a", "bars-b"}) {
    collections += std::string(collections.size() > 1 ? "," : "") + "\"" + set +
                   "\": {\"name\": \"" + set +
                   "\", \"total\": 20, \"author\": {\"name\": \"A\"}, " +
                   "\"license\": {\"title\": \"MIT\", \"spdx\": \"MIT\"}, " +
                   "\"category\": \"UI 24px\", \"palette\": false}";
    std::string icons;
    for (int i = 0; i < 20; ++i) {
      // Set a: bars from the left; set b: bars from the top. Every icon's pixels differ.
      const std::string bar = set == "bars-a" ? "M0 0h" + std::to_string(i + 2) + "v24H0z"
                                              : "M0 0h24v" + std::to_string(i + 2) + "H0z";
      icons += std::string(icons.empty() ? "" : ",") + "\"icon-" + std::to_string(i) +
               "\": {\"body\": \"<path d=\\\"" + bar + "\\\" fill=\\\"currentColor\\\"/>\"}";
    }
    write_text(
        (source / "json" / (set + ".json")).string(),
        "{\"prefix\": \"" + set + "\", \"icons\": {" + icons + "}, \"width\": 24, \"height\": 24}");
  }
  write_text((source / "collections.json").string(), collections + "}");
  write_text((source / "package.json").string(),
             R"({"name": "@iconify/json", "version": "0.0.1-test"})");
  data::IconifyOptions o = options_for(source, dir / "out");
  o.samples_per_shard = 10;
  const data::IconifyReport report = data::prepare_iconify(o);
  ASSERT_EQ(report.train.written, 40);
  ASSERT_EQ(report.train.shards, 4);

  std::map<std::string, std::set<std::string>> sets_of_shard;
  std::vector<std::string> keys;  // in shard order; keys number the samples in drawing order
  for (int k = 0; k < 4; ++k) {
    data::ShardReader reader(
        (dir / "out" / "train" / ("0000" + std::to_string(k) + ".tar")).string());
    for (data::ShardSample s; reader.next(s);) {
      const YAML::Node json = YAML::Load(s.members.at(static_cast<size_t>(s.json)).data);
      sets_of_shard[std::to_string(k)].insert(json["set"].as<std::string>());
      keys.push_back(s.key);
    }
  }
  ASSERT_EQ(keys.size(), 40u);
  for (const auto& [shard, sets] : sets_of_shard) EXPECT_EQ(sets.size(), 2u) << "shard " << shard;
  EXPECT_FALSE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 40u);
}

TEST(IconifyCorpus, RerunIsIdempotentAndAnExistingOutputIsReported) {
  const fs::path dir = make_temp_dir("iconify_rerun");
  write_corpus(dir / "source");
  const fs::path out = dir / "out";
  data::IconifyOptions o = options_for(dir / "source", out);
  data::prepare_iconify(o);
  const auto first = output_bytes(out);
  ASSERT_GT(first.count("train/00000.tar"), 0u);

  // Complete and made the same way: reported, nothing rewritten.
  const auto again = data::prepare_iconify(o);
  EXPECT_TRUE(again.already_complete);
  EXPECT_EQ(output_bytes(out), first);

  // Prepared again with another thread count: the same bytes.
  o.overwrite = true;
  o.threads = 1;
  const auto redone = data::prepare_iconify(o);
  EXPECT_FALSE(redone.already_complete);
  EXPECT_EQ(output_bytes(out), first);

  // Other settings over it: refused, naming what differs, unless --overwrite.
  o.overwrite = false;
  o.size = 24;
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }), HasSubstr("--size"));
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }), HasSubstr("--overwrite"));
  EXPECT_EQ(output_bytes(out), first);

  // A shard missing: not complete any more.
  fs::remove(out / "val" / "00001.tar");
  o.size = 32;
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }), HasSubstr("00001.tar"));
  o.overwrite = true;
  data::prepare_iconify(o);
  EXPECT_EQ(output_bytes(out), first);
}

TEST(IconifyCorpus, DecontaminateRemovesTheImagesOfAnotherManifest) {
  const fs::path dir = make_temp_dir("iconify_decontaminate");
  write_corpus(dir / "source");
  data::IconifyOptions o = options_for(dir / "source", dir / "out");
  o.sets = {"trainmono"};
  o.samples_per_shard = 3;  // 4 samples: written 3 + 1, then balanced to 2 + 2
  data::prepare_iconify(o);
  const YAML::Node sizes = YAML::LoadFile((dir / "out" / "train" / "sizes.json").string());
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes["00000.tar"].as<int>(), 2);
  EXPECT_EQ(sizes["00001.tar"].as<int>(), 2);
  const auto train = read_split(dir / "out", "train");
  ASSERT_EQ(train.count("trainmono:access-point-network"), 1u);
  ASSERT_EQ(train.count("trainmono:copy-of-val"), 1u);  // no val set in this run

  // Another set's image, at twice the size: resized to --size before it is hashed.
  const cv::Mat rgb = train.at("trainmono:access-point-network").rgb;
  cv::Mat big, bgr;
  cv::resize(rgb, big, cv::Size(64, 64), 0, 0, cv::INTER_NEAREST);
  cv::cvtColor(big, bgr, cv::COLOR_RGB2BGR);
  fs::create_directories(dir / "other" / "img");
  ASSERT_TRUE(cv::imwrite((dir / "other" / "img" / "a.png").string(), bgr));
  const std::string manifest = (dir / "other" / "manifest.tsv").string();
  write_text(manifest, "image_path\tcaption\nimg/a.png\ta wide bar\n");

  o.out = (dir / "out2").string();
  o.decontaminate = {manifest};
  const auto report = data::prepare_iconify(o);
  const auto cleaned = read_split(dir / "out2", "train");
  EXPECT_EQ(cleaned.count("trainmono:access-point-network"), 0u);
  EXPECT_EQ(cleaned.size(), train.size() - 1);
  ASSERT_EQ(report.train.removed_by.size(), 3u);
  EXPECT_EQ(report.train.removed_by[2], (std::pair<std::string, int64_t>{manifest, 1}));
  EXPECT_EQ(report.train.removed, 1);
  EXPECT_THAT(read_file((dir / "out2" / "skipped.tsv").string()),
              HasSubstr("access-point-network\talso in " + manifest + " (" +
                        (dir / "other" / "img" / "a.png").string() + ")"));
}

TEST(IconifyCorpus, BadOptionsNameTheFlagOrSet) {
  const fs::path dir = make_temp_dir("iconify_options");
  write_corpus(dir / "source");
  data::IconifyOptions o = options_for(dir / "source", dir / "out");
  o.sets = {"mdi", "no-such-set"};
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }),
              HasSubstr("--sets: no set 'no-such-set'"));
  o.sets = {"mdi"};
  o.limit_sets = 1;
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }),
              HasSubstr("--limit-sets and --sets"));
  o.sets.clear();
  o.source = (dir / "nowhere").string();
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }), HasSubstr("--source folder"));
  fs::remove(dir / "source" / "json" / "mdi.json");
  o.source = (dir / "source").string();
  EXPECT_THAT(error_message([&] { data::prepare_iconify(o); }), HasSubstr("mdi.json"));
  EXPECT_FALSE(fs::exists(dir / "out" / "prepared.json"));
}

TEST(IconifySet, AliasesMergeAsIconifyDoes) {
  const fs::path dir = make_temp_dir("iconify_aliases");
  write_text((dir / "s.json").string(), R"({"prefix": "s", "left": 2, "top": 1,
  "icons": {
    "arrow": {"body": "<path d=\"M0 0h4v4H0z\"/>", "width": 20, "height": 10},
    "gone": {"body": "<g/>", "hidden": true},
    "moving": {"body": "<set attributeName=\"x\" to=\"1\"/>"}
  },
  "aliases": {
    "arrow-flipped": {"parent": "arrow", "hFlip": true},
    "arrow-back": {"parent": "arrow-flipped", "hFlip": true, "rotate": 1},
    "arrow-turned": {"parent": "arrow-back", "rotate": 1, "width": 30},
    "gone-alias": {"parent": "gone"},
    "moving-alias": {"parent": "moving"},
    "orphan": {"parent": "nothing"},
    "loop-a": {"parent": "loop-b"},
    "loop-b": {"parent": "loop-a"}
  },
  "categories": {"Zeta": ["arrow"], "Alpha": ["arrow", "arrow-back"]}})");
  const ic::SetContent content = ic::read_icon_set((dir / "s.json").string(), "s", 32);
  std::map<std::string, ic::Icon> by_name;
  std::vector<std::string> order;
  for (const auto& icon : content.icons) {
    by_name[icon.name] = icon;
    order.push_back(icon.name);
  }
  // Icons by name, then aliases by name; hidden (also through an alias), animated and broken
  // ones left out.
  EXPECT_EQ(order,
            (std::vector<std::string>{"arrow", "arrow-back", "arrow-flipped", "arrow-turned"}));
  EXPECT_EQ(content.hidden, 2);
  EXPECT_EQ(content.animated, (std::vector<std::string>{"moving", "moving-alias"}));
  EXPECT_EQ(content.broken, (std::vector<std::string>{"loop-a", "loop-b", "orphan"}));
  // The first category in byte order; an alias without one takes its chain's.
  EXPECT_EQ(by_name["arrow"].category, "Alpha");
  EXPECT_EQ(by_name["arrow-flipped"].category, "Alpha");
  EXPECT_EQ(by_name["arrow-back"].parent, "arrow");

  const std::string head =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
      "viewBox=\"";
  const std::string tail = "\" width=\"32\" height=\"32\" color=\"#000000\">";
  EXPECT_EQ(by_name["arrow"].document,
            head + "2 1 20 10" + tail + "<path d=\"M0 0h4v4H0z\"/></svg>");
  EXPECT_EQ(
      by_name["arrow-flipped"].document,
      head + "0 0 20 10" + tail +
          "<g transform=\"translate(22 -1) scale(-1 1)\"><path d=\"M0 0h4v4H0z\"/></g></svg>");
  // Two flips cancel; a quarter turn about the box's centre swaps width and height.
  EXPECT_EQ(by_name["arrow-back"].document,
            head + "1 2 10 20" + tail +
                "<g transform=\"rotate(90 6 6)\"><path d=\"M0 0h4v4H0z\"/></g></svg>");
  // The nearest width wins; rotations add up (a half turn).
  EXPECT_EQ(by_name["arrow-turned"].document,
            head + "2 1 30 10" + tail +
                "<g transform=\"rotate(180 17 6)\"><path d=\"M0 0h4v4H0z\"/></g></svg>");
}

TEST(IconifySet, CollectionsGiveSplitsAndLicences) {
  const fs::path dir = make_temp_dir("iconify_collections");
  write_text((dir / "collections.json").string(), R"({
  "a": {"name": "A", "license": {"spdx": "MIT"}, "category": "Emoji"},
  "tabler": {"name": "Tabler", "license": {"title": "MIT License"}},
  "b": {"name": "B", "author": {"name": "Bee"}, "license": {"spdx": "CC0-1.0"}, "palette": true}
})");
  const auto sets = ic::read_collections((dir / "collections.json").string());
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_EQ(sets[0].split, ic::Split::kEmoji);
  EXPECT_EQ(sets[0].author, "unknown");
  EXPECT_EQ(sets[1].split, ic::Split::kVal);
  EXPECT_EQ(sets[1].license_spdx, "MIT License");  // no SPDX id: the title
  EXPECT_EQ(sets[2].split, ic::Split::kTrain);
  EXPECT_TRUE(sets[2].palette);
  write_text((dir / "bad.json").string(), R"({"c": {"name": "C", "author": {"name": "Sea"}}})");
  EXPECT_THAT(error_message([&] { ic::read_collections((dir / "bad.json").string()); }),
              HasSubstr("set 'c' has no licence"));
}

TEST(IconifySet, CaptionsClassesAndAnimation) {
  EXPECT_EQ(ic::caption_for("access-point-network", ""), "access point network");
  EXPECT_EQ(ic::caption_for("account-arrow-left-outline", "Account / User"),
            "account arrow left outline, account / user");
  EXPECT_EQ(ic::caption_for("1st_place--medal", "Activities"), "1st place medal, activities");
  EXPECT_EQ(ic::caption_for("add-1", "InterfaceEssential"), "add 1, interface essential");
  EXPECT_EQ(ic::category_text("eCommerce  Tools"), "e commerce tools");
  EXPECT_EQ(ic::class_key("Animals & Nature"), ic::class_key("Animals Nature"));
  EXPECT_EQ(ic::class_key("Smileys  &  Emotion"), "smileys emotion");
  EXPECT_TRUE(ic::is_animated("<path/><animateTransform type=\"rotate\"/>"));
  EXPECT_TRUE(ic::is_animated("<set attributeName=\"x\" to=\"1\"/>"));
  EXPECT_FALSE(ic::is_animated("<settings/><path d=\"M0 0\"/>"));
}

TEST(IconifyRender, DrawsOnWhiteAndReportsBrokenDocuments) {
  data::SvgRenderer renderer(16);
  cv::Mat rgb;
  std::string error;
  ic::IconBox box;
  ASSERT_TRUE(renderer.render(
      ic::svg_document("<path d=\"M0 0h8v16H0z\" fill=\"currentColor\"/>", box, 16), rgb, error))
      << error;
  EXPECT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(pixel(rgb, 2, 8), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(pixel(rgb, 12, 8), cv::Vec3b(255, 255, 255));
  // Half-transparent red over white.
  ASSERT_TRUE(renderer.render(ic::svg_document("<rect width=\"16\" height=\"16\" fill=\"#ff0000\" "
                                               "fill-opacity=\"0.5\"/>",
                                               box, 16),
                              rgb, error));
  const cv::Vec3b pink = pixel(rgb, 8, 8);
  EXPECT_EQ(pink[0], 255);
  EXPECT_NEAR(pink[1], 128, 1);
  EXPECT_NEAR(pink[2], 128, 1);
  EXPECT_FALSE(renderer.render("<svg xmlns=\"http://www.w3.org/2000/svg\"><path", rgb, error));
  EXPECT_FALSE(error.empty());
  // The same pixels give the same hash, other pixels another.
  ASSERT_TRUE(renderer.render(ic::svg_document("<g/>", box, 16), rgb, error));
  cv::Mat white(16, 16, CV_8UC3, cv::Scalar(255, 255, 255));
  EXPECT_EQ(data::hash_image(rgb), data::hash_image(white));
  white.at<cv::Vec3b>(3, 3) = cv::Vec3b(254, 255, 255);
  EXPECT_NE(data::hash_image(rgb), data::hash_image(white));
  const cv::Mat decoded = data::decode_image_bytes(data::encode_png(white), "png");
  EXPECT_EQ(cv::norm(decoded, white, cv::NORM_INF), 0.0);
}

// A degenerate gradient transform (skewY(90), as in thesvg-color's "million") makes the render
// fail with NoMemory and leaves Cairo's surface in its sticky error state; the next document on
// the same renderer must still draw (in the full corpus, 70,900 later icons failed otherwise).
// Newer librsvg draws the document; there the test has nothing to check and skips.
TEST(IconifyRender, AFailedRenderDoesNotFailTheNextOnes) {
  data::SvgRenderer renderer(16);
  cv::Mat rgb;
  std::string error;
  ic::IconBox box;
  const std::string broken =
      "<defs><radialGradient id=\"g\" gradientTransform=\"translate(0 -380193.475)skewY(90)\">"
      "<stop offset=\"0%\" stop-color=\"#845ce7\"/><stop offset=\"100%\" stop-color=\"#af73d8\"/>"
      "</radialGradient></defs><path fill=\"url(#g)\" d=\"M0 0h16v16H0z\"/>";
  if (renderer.render(ic::svg_document(broken, box, 16), rgb, error)) {
    // librsvg 2.60 (Debian 13) draws it; 2.54 (Debian 12) fails as the corpus did.
    GTEST_SKIP() << "this librsvg draws the degenerate gradient: nothing fails to recover from";
  }
  EXPECT_THAT(error, ::testing::HasSubstr("NoMemory"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(renderer.render(
        ic::svg_document("<path d=\"M0 0h8v16H0z\" fill=\"currentColor\"/>", box, 16), rgb, error))
        << error;
    EXPECT_EQ(pixel(rgb, 2, 8), cv::Vec3b(0, 0, 0));
  }
}

}  // namespace
}  // namespace halo::test
