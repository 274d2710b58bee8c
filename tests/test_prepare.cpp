// `halo-clip prepare` on tiny fake sources (emoji.json + PNGs in two styles, Tux Paint stamps,
// MNIST IDX files raw and gzipped): manifests, captions, skipped counts and mismatch injection.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "data/manifest.h"
#include "data/prepare.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using data::ManifestRow;
using data::PrepareOptions;

void write_png(const fs::path& path, int shade) {
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(
      cv::imwrite(path.string(), cv::Mat(64, 64, CV_8UC4, cv::Scalar(shade, 40, 200, 255))));
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table read_table(const fs::path& path) {
  std::ifstream in(path);
  Table t;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) fields.push_back(field);
    if (t.header.empty()) {
      t.header = fields;
    } else {
      t.rows.push_back(fields);
    }
  }
  return t;
}

PrepareOptions options_for(const fs::path& source, const fs::path& out) {
  PrepareOptions o;
  o.source = source.string();
  o.out = out.string();
  o.verbose = false;
  return o;
}

int64_t skipped(const data::PrepareReport& report, const std::string& reason_part) {
  for (const auto& [reason, count] : report.skipped) {
    if (reason.find(reason_part) != std::string::npos) return count;
  }
  return -1;
}

// emoji.json as emoji-datasource has it (by unified code, which is not sort_order); the ghost's
// image is missing.
fs::path make_emoji_source(const fs::path& root, const std::string& style) {
  const fs::path dir = root / ("emoji-" + style);
  write_text(dir / "emoji.json", R"([
  {"name": "THUMBS UP SIGN", "unified": "1F44D", "image": "1f44d.png",
   "category": "People & Body", "subcategory": "hand-fingers-closed", "sort_order": 2,
   "skin_variations": {"1F3FB": {"unified": "1F44D-1F3FB", "image": "1f44d-1f3fb.png"}}},
  {"name": "GHOST", "unified": "1F47B", "image": "1f47b.png",
   "category": "Smileys & Emotion", "subcategory": "cat-face", "sort_order": 3},
  {"name": "GRINNING FACE WITH SMILING EYES", "unified": "1F601", "image": "1f601.png",
   "category": "Smileys & Emotion", "subcategory": "face-smiling", "sort_order": 1}
])");
  const int shade = style == "google" ? 10 : 240;
  for (const char* image : {"1f601.png", "1f44d.png", "1f44d-1f3fb.png"}) {
    write_png(dir / "img" / style / "64" / image, shade);
  }
  return dir;
}

TEST(Prepare, EmojiBothStylesGiveTheSameCaptionsInSortOrder) {
  const fs::path root = make_temp_dir("prepare_emoji");
  std::map<std::string, Table> tables;
  for (const std::string style : {"google", "twitter"}) {
    const fs::path out = root / ("out-" + style);
    const auto report =
        data::prepare_dataset("emoji-" + style, options_for(make_emoji_source(root, style), out));
    EXPECT_EQ(report.written, 2);
    EXPECT_EQ(report.mismatched, 0);
    EXPECT_EQ(skipped(report, "image missing"), 1);
    EXPECT_EQ(skipped(report, "skin-tone"), 1);
    EXPECT_EQ(report.manifest_path, (out / "manifest.tsv").string());
    const Table t = read_table(out / "manifest.tsv");
    EXPECT_EQ(t.header, (std::vector<std::string>{"image_path", "caption", "mismatched",
                                                  "original_caption", "label"}));
    ASSERT_EQ(t.rows.size(), 2u);
    // The category is the class: index into classes.txt, in order of first appearance.
    EXPECT_EQ(t.rows[0][4], "0");
    EXPECT_EQ(t.rows[1][4], "1");
    std::ifstream classes(out / "classes.txt");
    std::string first, second;
    std::getline(classes, first);
    std::getline(classes, second);
    EXPECT_EQ(first, "smileys & emotion");
    EXPECT_EQ(second, "people & body");
    for (const auto& row : t.rows) {
      ASSERT_EQ(row.size(), 5u);
      EXPECT_EQ(row[2], "0");
      EXPECT_EQ(row[1], row[3]);
      // The path is relative to the manifest's folder and the image decodes (the right style).
      EXPECT_FALSE(fs::path(row[0]).is_absolute());
      const cv::Mat image = cv::imread((out / row[0]).string(), cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(image.empty()) << row[0];
      EXPECT_EQ(image.at<cv::Vec4b>(5, 5)[0], style == "google" ? 10 : 240);
    }
    tables[style] = t;
  }
  const auto& rows = tables["google"].rows;
  EXPECT_EQ(rows[0][0], "images/1f601.png");  // sort_order 1 first
  EXPECT_EQ(rows[0][1], "grinning face with smiling eyes, smileys & emotion, face smiling");
  EXPECT_EQ(rows[1][0], "images/1f44d.png");
  EXPECT_EQ(rows[1][1], "thumbs up sign, people & body, hand fingers closed");
  EXPECT_EQ(tables["google"].rows, tables["twitter"].rows);  // same paths, captions, order

  // Skin tones on request, right after their base emoji.
  auto with_tones = options_for(root / "emoji-google", root / "tones");
  with_tones.skin_tones = true;
  EXPECT_EQ(data::prepare_dataset("emoji-google", with_tones).written, 3);
  const Table t = read_table(root / "tones" / "manifest.tsv");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[2][0], "images/1f44d-1f3fb.png");
  EXPECT_EQ(t.rows[2][1], "thumbs up sign, light skin tone, people & body, hand fingers closed");

  // The reader of the training side accepts the file.
  const auto manifest = data::read_manifest((root / "out-google" / "manifest.tsv").string(), {});
  EXPECT_EQ(manifest.size(), 2);
  EXPECT_EQ(manifest.mismatched, (std::vector<int8_t>{0, 0}));
  EXPECT_TRUE(fs::exists(manifest.images[1]));
  fs::remove_all(root);
}

TEST(Prepare, TuxpaintSanitisesCaptionsAndCountsStampsWithoutText) {
  const fs::path root = make_temp_dir("prepare_tuxpaint");
  const fs::path source = root / "stamps";
  write_png(source / "toys" / "ball.png", 50);
  write_text(source / "toys" / "ball.txt",
             "\xEF\xBB\xBF  A red\tball,\r\n  bouncing. \r\nde.utf8=Ein Ball.\n");
  write_png(source / "animals" / "cat_mirror.png", 60);  // no .txt
  const auto report = data::prepare_dataset("tuxpaint", options_for(source, root / "out"));
  EXPECT_EQ(report.written, 1);
  EXPECT_EQ(skipped(report, "no .txt"), 1);
  const Table t = read_table(root / "out" / "manifest.tsv");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0],
            (std::vector<std::string>{"images/toys/ball.png", "A red ball,", "0", "A red ball,"}));
  EXPECT_FALSE(cv::imread((root / "out" / t.rows[0][0]).string()).empty());

  EXPECT_EQ(data::sanitize_caption(" a\tb\n\nc \r d  "), "a b c d");
  fs::remove_all(root);
}

void write_idx(const fs::path& path, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& data) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(d >> shift));
  }
  bytes.append(data.begin(), data.end());
  write_text(path, bytes);
}

// Five 6x4 images (image i has every pixel = 40 * i) labelled 7, 0, 1, 7, 3; the test split
// gzipped, as Fashion-MNIST ships it.
fs::path make_mnist_source(const fs::path& root) {
  const fs::path dir = root / "mnist";
  std::vector<uint8_t> pixels;
  for (int i = 0; i < 5; ++i) pixels.insert(pixels.end(), 24, static_cast<uint8_t>(40 * i));
  const std::vector<uint8_t> labels{7, 0, 1, 7, 3};
  write_idx(dir / "train-images-idx3-ubyte", {5, 6, 4}, pixels);
  write_idx(dir / "train-labels-idx1-ubyte", {5}, labels);
  write_idx(dir / "t10k-images-idx3-ubyte", {5, 6, 4}, pixels);
  write_idx(dir / "t10k-labels-idx1-ubyte", {5}, labels);
  const std::string gzip = "gzip -f '" + (dir / "t10k-images-idx3-ubyte").string() + "' '" +
                           (dir / "t10k-labels-idx1-ubyte").string() + "'";
  EXPECT_EQ(std::system(gzip.c_str()), 0);
  return dir;
}

TEST(Prepare, MnistWritesPngsTemplatedCaptionsLabelsAndClasses) {
  const fs::path root = make_temp_dir("prepare_mnist");
  const fs::path source = make_mnist_source(root);
  for (const std::string split : {"train", "test"}) {
    auto options = options_for(source, root / split);
    options.split = split;
    const auto report = data::prepare_dataset("mnist", options);
    EXPECT_EQ(report.written, 5);
    const Table t = read_table(root / split / "manifest.tsv");
    EXPECT_EQ(t.header.back(), "label");
    ASSERT_EQ(t.rows.size(), 5u);
    const char* words[] = {"seven", "zero", "one", "seven", "three"};
    const char* digits[] = {"7", "0", "1", "7", "3"};
    for (size_t i = 0; i < 5; ++i) {
      const auto& row = t.rows[i];
      EXPECT_EQ(row[0], "images/" + split + "_0000" + std::to_string(i) + ".png");
      EXPECT_EQ(row[4], digits[i]);
      const bool names_class =
          row[1].find(std::string(" ") + words[i]) != std::string::npos ||
          row[1].find(std::string(" ") + digits[i] + " ") != std::string::npos ||
          row[1].substr(row[1].size() - 2) == std::string(" ") + digits[i];
      EXPECT_TRUE(names_class) << row[1];
      const cv::Mat image = cv::imread((root / split / row[0]).string(), cv::IMREAD_UNCHANGED);
      ASSERT_EQ(image.rows, 6);
      ASSERT_EQ(image.cols, 4);
      EXPECT_EQ(static_cast<int>(image.at<uint8_t>(2, 3)), static_cast<int>(40 * i));
    }
    std::ifstream classes(root / split / "classes.txt");
    std::vector<std::string> names;
    for (std::string line; std::getline(classes, line);) names.push_back(line);
    ASSERT_EQ(names.size(), 10u);
    EXPECT_EQ(names[7], "seven");
  }
  // --limit keeps the first N with the same captions; another seed picks other templates.
  auto limited = options_for(source, root / "limited");
  limited.limit = 3;
  EXPECT_EQ(data::prepare_dataset("mnist", limited).written, 3);
  const Table full = read_table(root / "train" / "manifest.tsv");
  const Table part = read_table(root / "limited" / "manifest.tsv");
  ASSERT_EQ(part.rows.size(), 3u);
  EXPECT_EQ(part.rows[2], full.rows[2]);

  auto fashion = options_for(source, root / "fashion");
  EXPECT_EQ(data::prepare_dataset("fashion-mnist", fashion).written, 5);
  const Table f = read_table(root / "fashion" / "manifest.tsv");
  EXPECT_THAT(f.rows[0][1], HasSubstr("sneaker"));
  EXPECT_THAT(f.rows[1][1], HasSubstr("a t-shirt"));
  fs::remove_all(root);
}

std::vector<ManifestRow> numbered_rows(int n, int distinct) {
  std::vector<ManifestRow> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    rows[static_cast<size_t>(i)].image_path = "images/" + std::to_string(i) + ".png";
    rows[static_cast<size_t>(i)].original_caption = "caption " + std::to_string(i % distinct);
    rows[static_cast<size_t>(i)].caption = rows[static_cast<size_t>(i)].original_caption;
  }
  return rows;
}

TEST(Prepare, MismatchInjectionIsExactSeededAndFlagsChangedText) {
  auto rows = numbered_rows(101, 101);
  EXPECT_EQ(data::inject_mismatches(rows, 0.3, 5), 30);  // round(30.3)
  std::multiset<std::string> before, after;
  int64_t flagged = 0;
  for (const auto& row : rows) {
    EXPECT_EQ(row.mismatched, row.caption != row.original_caption);
    flagged += row.mismatched;
    before.insert(row.original_caption);
    after.insert(row.caption);
  }
  EXPECT_EQ(flagged, 30);
  EXPECT_EQ(before, after);  // captions are permuted, not invented

  auto again = numbered_rows(101, 101), other = numbered_rows(101, 101);
  data::inject_mismatches(again, 0.3, 5);
  data::inject_mismatches(other, 0.3, 6);
  auto captions = [](const std::vector<ManifestRow>& r) {
    std::vector<std::string> c;
    for (const auto& row : r) c.push_back(row.caption);
    return c;
  };
  EXPECT_EQ(captions(again), captions(rows));
  EXPECT_NE(captions(other), captions(rows));

  // With repeated captions (MNIST templates) a swap can leave the text unchanged: flag stays 0.
  auto repeated = numbered_rows(60, 2);
  const int64_t count = data::inject_mismatches(repeated, 0.5, 1);
  int64_t changed = 0;
  for (const auto& row : repeated) {
    EXPECT_EQ(row.mismatched, row.caption != row.original_caption);
    changed += row.caption != row.original_caption;
  }
  EXPECT_EQ(count, changed);
  EXPECT_LT(count, 30);
  EXPECT_EQ(data::inject_mismatches(repeated, 0.0, 1), 0);

  for (double bad : {-0.1, 1.0, 2.5, std::nan("")}) {
    EXPECT_THAT(error_message([&] { data::inject_mismatches(rows, bad, 0); }),
                HasSubstr("--mismatch-fraction"))
        << bad;
  }
}

TEST(Prepare, ManifestWithMismatchesAndBadOptionsAreNamed) {
  const fs::path root = make_temp_dir("prepare_flags");
  const fs::path source = make_mnist_source(root);
  auto options = options_for(source, root / "mm");
  options.mismatch_fraction = 0.4;
  options.seed = 3;
  const auto report = data::prepare_dataset("mnist", options);
  const Table t = read_table(root / "mm" / "manifest.tsv");
  int64_t flagged = 0;
  for (const auto& row : t.rows) {
    EXPECT_EQ(row[2] == "1", row[1] != row[3]) << row[1];
    flagged += row[2] == "1";
  }
  EXPECT_EQ(flagged, report.mismatched);
  EXPECT_EQ(report.mismatched, 2);  // round(0.4 * 5) chosen, with different captions (seed 3)

  options.mismatch_fraction = 1.5;
  EXPECT_THAT(error_message([&] { data::prepare_dataset("mnist", options); }),
              HasSubstr("--mismatch-fraction"));
  auto missing = options_for(root / "no-such-folder", root / "x");
  EXPECT_THAT(error_message([&] { data::prepare_dataset("tuxpaint", missing); }),
              HasSubstr((root / "no-such-folder").string()));
  auto no_idx = options_for(root / "mm", root / "y");  // a folder without IDX files
  EXPECT_THAT(error_message([&] { data::prepare_dataset("mnist", no_idx); }),
              HasSubstr("train-images-idx3-ubyte"));
  auto no_json = options_for(source, root / "z");
  EXPECT_THAT(error_message([&] { data::prepare_dataset("emoji-google", no_json); }),
              HasSubstr("emoji.json"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace halo::test
