// The data path: manifest parsing and its errors, image decoding (alpha on white, grey to RGB,
// corrupt and missing files named), transforms, and the loader's order, sharding, determinism
// and bad-image handling.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "data/image.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// A folder with n small PNGs (distinct colours) and a manifest naming them.
std::string make_image_set(const std::string& name, int n) {
  const std::string dir = make_temp_dir(name);
  fs::create_directories(dir + "/img");
  std::string manifest = "image_path\tcaption\tmismatched\n";
  for (int i = 0; i < n; ++i) {
    cv::Mat img(12, 16, CV_8UC3, cv::Scalar(i * 10 % 255, 100, 255 - i * 10 % 255));
    cv::imwrite(dir + "/img/" + std::to_string(i) + ".png", img);
    manifest += "img/" + std::to_string(i) + ".png\tcaption number " + std::to_string(i) + "\t" +
                std::to_string(i % 3 == 0) + "\n";
  }
  write_text(dir + "/manifest.tsv", manifest);
  return dir;
}

TEST(Manifest, ParsesTsvWithRelativePathsAndFlags) {
  const std::string dir = make_image_set("manifest_ok", 5);
  const auto m = data::read_manifest(dir + "/manifest.tsv", {});
  ASSERT_EQ(m.size(), 5);
  EXPECT_EQ(m.images[2], dir + "/img/2.png");
  EXPECT_EQ(m.captions[4], "caption number 4");
  EXPECT_EQ(m.mismatched, (std::vector<int8_t>{1, 0, 0, 1, 0}));
}

TEST(Manifest, OpenClipCsvWithQuotesAndOtherColumnNames) {
  const std::string dir = make_temp_dir("manifest_csv");
  write_text(dir + "/m.csv",
             "title,filepath\n\"a cat, sitting\",a.png\n\"say \"\"hi\"\"\",b.png\n");
  data::ManifestOptions o;
  o.separator = ',';
  o.image_key = "filepath";
  o.caption_key = "title";
  const auto m = data::read_manifest(dir + "/m.csv", o);
  ASSERT_EQ(m.size(), 2);
  EXPECT_EQ(m.captions[0], "a cat, sitting");
  EXPECT_EQ(m.captions[1], "say \"hi\"");
  EXPECT_EQ(m.images[1], dir + "/b.png");
  EXPECT_TRUE(m.mismatched.empty());
}

TEST(Manifest, ErrorsNameFileLineAndColumn) {
  const std::string dir = make_temp_dir("manifest_bad");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir + "/none.tsv", {}); }),
              HasSubstr("manifest '" + dir + "/none.tsv' does not exist"));
  write_text(dir + "/cols.tsv", "path\ttext\nx.png\thello\n");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir + "/cols.tsv", {}); }),
              HasSubstr("no column named 'image_path'"));
  write_text(dir + "/short.tsv", "image_path\tcaption\na.png\thi\nb.png\n");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir + "/short.tsv", {}); }),
              HasSubstr(dir + "/short.tsv:3: expected at least 2 fields, found 1"));
  write_text(dir + "/empty_caption.tsv", "image_path\tcaption\na.png\t  \nb.png\tok\n");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir + "/empty_caption.tsv", {}); }),
              HasSubstr("empty_caption.tsv:2: empty caption"));
  write_text(dir + "/utf8.tsv", "image_path\tcaption\na.png\tbad \xff\xfe bytes\n");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir + "/utf8.tsv", {}); }),
              HasSubstr("not valid UTF-8"));
  data::ManifestOptions skip;
  skip.skip_bad = true;
  const auto m = data::read_manifest(dir + "/empty_caption.tsv", skip);
  EXPECT_EQ(m.size(), 1);
  EXPECT_EQ(m.skipped_rows, 1);
}

// A byte-order mark (Excel's "UTF-8 CSV") is not part of the first column's name; a folder given
// as the manifest is named as one, not as an empty file.
TEST(Manifest, ByteOrderMarkAndDirectory) {
  const std::string dir = make_temp_dir("manifest_bom");
  write_text(dir + "/bom.tsv", "\xEF\xBB\xBFimage_path\tcaption\na.png\thello\n");
  const data::Manifest m = data::read_manifest(dir + "/bom.tsv", {});
  ASSERT_EQ(m.size(), 1);
  EXPECT_EQ(m.images[0], dir + "/a.png");
  EXPECT_THAT(error_message([&] { data::read_manifest(dir, {}); }),
              HasSubstr("manifest '" + dir + "' is a directory"));
  EXPECT_THAT(
      error_message([&] { data::read_manifest("no/such.tsv", {}); }),
      HasSubstr("manifest 'no/such.tsv' does not exist (relative to the current directory "));
}

TEST(Image, DecodesAlphaOnWhiteAndGreyToRgb) {
  const std::string dir = make_temp_dir("image_decode");
  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // fully transparent red
  bgra.at<cv::Vec4b>(0, 0) = cv::Vec4b(255, 0, 0, 255);   // one opaque blue pixel
  cv::imwrite(dir + "/a.png", bgra);
  const cv::Mat rgb = data::decode_image(dir + "/a.png");
  ASSERT_EQ(rgb.channels(), 3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 255, 255));  // transparent -> white
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));      // blue, in RGB order
  cv::imwrite(dir + "/g.png", cv::Mat(5, 7, CV_8UC1, cv::Scalar(77)));
  const cv::Mat grey = data::decode_image(dir + "/g.png");
  EXPECT_EQ(grey.channels(), 3);
  EXPECT_EQ(grey.at<cv::Vec3b>(2, 3), cv::Vec3b(77, 77, 77));
}

TEST(Image, CorruptAndMissingFilesAreNamed) {
  const std::string dir = make_temp_dir("image_bad");
  write_text(dir + "/broken.png", "this is not a png");
  EXPECT_THAT(error_message([&] { data::decode_image(dir + "/broken.png"); }),
              HasSubstr("cannot decode image '" + dir + "/broken.png'"));
  EXPECT_THAT(error_message([&] { data::decode_image(dir + "/missing.png"); }),
              HasSubstr("image not found: '" + dir + "/missing.png'"));
}

TEST(Image, TransformShapeNormalisationAndDeterminism) {
  cv::Mat rgb(20, 30, CV_8UC3, cv::Scalar(255, 255, 255));
  data::ImageTransform t;
  t.size = 8;
  std::mt19937_64 rng(1);
  const torch::Tensor x = data::transform_image(rgb, t, rng);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 8, 8}));
  EXPECT_NEAR(x[0][0][0].item<float>(), (1.0f - t.mean[0]) / t.std[0], 1e-5);
  cv::Mat noise(20, 30, CV_8UC3);
  cv::randu(noise, 0, 255);
  t.random_resized_crop = true;
  std::mt19937_64 r1(7), r2(7), r3(8);
  const auto a = data::transform_image(noise, t, r1), b = data::transform_image(noise, t, r2);
  const auto c = data::transform_image(noise, t, r3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

data::TextEncoder fake_tokens() {
  return [](const std::vector<std::string>& captions) {
    return torch::full({static_cast<int64_t>(captions.size()), 4}, 2, torch::kLong);
  };
}

std::vector<int64_t> rows_of(const data::Batch& b) {
  return std::vector<int64_t>(b.rows.data_ptr<int64_t>(),
                              b.rows.data_ptr<int64_t>() + b.rows.numel());
}

TEST(Loader, OrderDependsOnSeedAndEpochOnlyAndShardsAreDisjoint) {
  const std::string dir = make_image_set("loader_order", 24);
  auto m = std::make_shared<data::Manifest>(data::read_manifest(dir + "/manifest.tsv", {}));
  data::LoaderOptions o;
  o.batch_size = 4;
  o.transform.size = 8;
  o.seed = 3;
  // Single process with batch 8 against two ranks with batch 4 each: the same global batches.
  data::LoaderOptions single = o;
  single.batch_size = 8;
  data::BatchLoader one(m, fake_tokens(), single);
  o.world_size = 2;
  o.rank = 0;
  data::BatchLoader r0(m, fake_tokens(), o);
  o.rank = 1;
  data::BatchLoader r1(m, fake_tokens(), o);
  EXPECT_EQ(one.batches_per_epoch(), 3);
  EXPECT_EQ(r0.batches_per_epoch(), 3);
  for (int64_t b = 0; b < 3; ++b) {
    auto joined = r0.batch_rows(1, b);
    const auto second = r1.batch_rows(1, b);
    joined.insert(joined.end(), second.begin(), second.end());
    EXPECT_EQ(joined, one.batch_rows(1, b));
  }
  EXPECT_NE(one.batch_rows(0, 0), one.batch_rows(1, 0)) << "epochs must reshuffle";
  EXPECT_EQ(data::epoch_order(24, 3, 1, true), data::epoch_order(24, 3, 1, true));
}

TEST(Loader, DeliversInOrderIdenticallyForAnyWorkerCountAndResumes) {
  const std::string dir = make_image_set("loader_workers", 20);
  auto m = std::make_shared<data::Manifest>(data::read_manifest(dir + "/manifest.tsv", {}));
  data::LoaderOptions o;
  o.batch_size = 3;
  o.transform.size = 8;
  o.transform.random_resized_crop = true;
  auto run = [&](int64_t workers, int64_t first_batch) {
    o.workers = workers;
    data::BatchLoader loader(m, fake_tokens(), o);
    loader.start_epoch(2, first_batch);
    std::vector<data::Batch> out;
    while (auto b = loader.next()) out.push_back(*b);
    return out;
  };
  const auto a = run(1, 0), b = run(3, 0), resumed = run(2, 4);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  ASSERT_EQ(resumed.size(), 2u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(rows_of(a[i]), rows_of(b[i]));
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images))
        << "augmentation must not depend on threads";
  }
  EXPECT_EQ(rows_of(resumed[0]), rows_of(a[4]));
  EXPECT_TRUE(torch::equal(resumed[1].images, a[5].images));
}

TEST(Loader, BadImagesStopOrAreSkippedAndCounted) {
  const std::string dir = make_image_set("loader_bad", 8);
  write_text(dir + "/img/3.png", "corrupt");
  auto m = std::make_shared<data::Manifest>(data::read_manifest(dir + "/manifest.tsv", {}));
  data::LoaderOptions o;
  o.batch_size = 8;
  o.shuffle = false;
  o.transform.size = 8;
  {
    data::BatchLoader loader(m, fake_tokens(), o);
    loader.start_epoch(0);
    const std::string message = error_message([&] { loader.next(); });
    EXPECT_THAT(message, HasSubstr("img/3.png"));
    EXPECT_THAT(
        message,
        HasSubstr(dir + "/manifest.tsv:5: "));  // row 3 is line 5: the line, as the README says
    EXPECT_THAT(message, HasSubstr("data.skip_bad"));
  }
  o.skip_bad = true;
  data::BatchLoader loader(m, fake_tokens(), o);
  loader.start_epoch(0);
  const auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->images.size(0), 7);
  EXPECT_EQ(b->skipped, 1);
  EXPECT_EQ(loader.skipped_images(), 1);
  EXPECT_THAT(rows_of(*b), ::testing::Not(::testing::Contains(3)));
}

TEST(Loader, TooSmallManifestIsAnError) {
  const std::string dir = make_image_set("loader_small", 3);
  auto m = std::make_shared<data::Manifest>(data::read_manifest(dir + "/manifest.tsv", {}));
  data::LoaderOptions o;
  o.batch_size = 4;
  EXPECT_THAT(error_message([&] { data::BatchLoader(m, fake_tokens(), o); }),
              HasSubstr("fewer than one global batch of 4"));
}

}  // namespace
}  // namespace halo::test
