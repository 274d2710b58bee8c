// WebDataset shards: brace patterns and their errors, sizes.json, reading tar members grouped
// by key (folders with dots, upper-case extensions), samples with problems, truncated shards,
// and the writer's byte-for-byte round trip.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/image.h"
#include "data/shard_pattern.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::vector<data::ShardSample> read_all_samples(const std::string& shard,
                                                std::string* error = nullptr) {
  data::ShardReader reader(shard);
  std::vector<data::ShardSample> out;
  data::ShardSample s;
  while (reader.next(s)) out.push_back(s);
  if (error) *error = reader.error();
  return out;
}

TEST(ShardPattern, ExpandsRangesAlternativesAndJoinedPatterns) {
  EXPECT_THAT(data::expand_shard_pattern("d/train-{00000..00002}.tar"),
              ElementsAre("d/train-00000.tar", "d/train-00001.tar", "d/train-00002.tar"));
  EXPECT_THAT(data::expand_shard_pattern("{a,b}-{8..10}.tar"),
              ElementsAre("a-8.tar", "a-9.tar", "a-10.tar", "b-8.tar", "b-9.tar", "b-10.tar"));
  EXPECT_THAT(data::expand_shard_pattern("x.tar::y/{09..10}.tar"),
              ElementsAre("x.tar", "y/09.tar", "y/10.tar"));
  EXPECT_THAT(data::expand_shard_pattern("plain.tar"), ElementsAre("plain.tar"));
  EXPECT_TRUE(data::is_shard_source("d/train-{0..3}.tar"));
  EXPECT_TRUE(data::is_shard_source("a.tar"));
  EXPECT_TRUE(data::is_shard_source("a.tar::b.tar"));
  EXPECT_FALSE(data::is_shard_source("train.tsv"));
}

TEST(ShardPattern, MalformedPatternsAreNamedWithTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"t-{1..}.tar", "needs two non-negative integers"},
      {"t-{a..3}.tar", "needs two non-negative integers"},
      {"t-{3..1}.tar", "runs backwards"},
      {"t-{1..2.tar", "'{' without '}'"},
      {"t-1}.tar", "'}' without '{'"},
      {"t-{}.tar", "empty braces"},
      {"a.tar::::b.tar", "empty part between '::'"},
      {"", "shard pattern is empty"},
  };
  for (const auto& [pattern, expected] : cases) {
    const std::string message = error_message([&] { data::expand_shard_pattern(pattern); });
    EXPECT_THAT(message, HasSubstr(expected)) << pattern;
    if (!pattern.empty()) {
      EXPECT_THAT(message, HasSubstr("'" + pattern + "'")) << pattern;
    }
  }
}

TEST(ShardPattern, MissingShardsAreNamedAndCounted) {
  const std::string dir = make_temp_dir("shard_missing");
  write_tar(dir + "/s-1.tar", {{"a.txt", "x"}});
  const std::string pattern = dir + "/s-{0..2}.tar";
  const std::string message = error_message([&] { data::existing_shards(pattern); });
  EXPECT_THAT(message, HasSubstr("shard '" + dir + "/s-0.tar' does not exist"));
  EXPECT_THAT(message, HasSubstr("2 of the 3 shards"));
  EXPECT_THAT(data::existing_shards(dir + "/s-1.tar"), ElementsAre(dir + "/s-1.tar"));
}

TEST(ShardPattern, SizesJsonGivesCountsPerShard) {
  const std::string dir = make_temp_dir("shard_sizes");
  write_text(dir + "/sizes.json", "{\"s-0.tar\": 3, \"s-1.tar\": 10}\n");
  EXPECT_THAT(data::shard_sizes_from_json({dir + "/s-0.tar", dir + "/s-1.tar", dir + "/s-2.tar"}),
              ElementsAre(3, 10, -1));
  EXPECT_THAT(data::shard_sizes_from_json({make_temp_dir("shard_no_sizes") + "/a.tar"}),
              ElementsAre(-1));
  write_text(dir + "/sizes.json", "{\"s-0.tar\": \"many\"}\n");
  EXPECT_THAT(error_message([&] { data::shard_sizes_from_json({dir + "/s-0.tar"}); }),
              HasSubstr("the count of 's-0.tar' must be an integer"));
}

TEST(ShardReader, SplitsMemberNamesAtTheFirstDotOfTheFileName) {
  std::string key, ext;
  ASSERT_TRUE(data::split_member_name("dir.v2/0001.JPG", key, ext));
  EXPECT_EQ(key, "dir.v2/0001");
  EXPECT_EQ(ext, "jpg");
  ASSERT_TRUE(data::split_member_name("a/b.c/x.seg.png", key, ext));
  EXPECT_EQ(key, "a/b.c/x");
  EXPECT_EQ(ext, "seg.png");
  EXPECT_FALSE(data::split_member_name("README", key, ext));
  EXPECT_FALSE(data::split_member_name("dir.v2/noext", key, ext));
}

TEST(ShardReader, GroupsMembersByKeyWithFoldersAndUpperCaseExtensions) {
  const std::string dir = make_temp_dir("shard_group");
  const std::string img1 = png_bytes(1), img2 = png_bytes(2), img3 = png_bytes(3);
  write_tar(
      dir + "/s.tar",
      {{"0001.jpg", img1},
       {"0001.txt", "  a red square \n"},
       {"0001.json", "{\"mismatched\": 1, \"label\": 3, \"uid\": \"abc\", \"url\": \"http://x\"}"},
       {"LICENSE", "ignored: no extension"},
       {"part.v2/0002.PNG", img2},
       {"part.v2/0002.TXT", "a green square"},
       {"part.v2/0002.json", "{\"mismatched\": false}"},
       {"0003.txt", "caption first"},
       {"0003.webp", img3}});
  std::string error;
  const auto samples = read_all_samples(dir + "/s.tar", &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].key, "0001");
  EXPECT_TRUE(samples[0].usable()) << samples[0].problem;
  EXPECT_EQ(samples[0].image_bytes(), img1);
  EXPECT_EQ(samples[0].caption_text(), "a red square");
  EXPECT_EQ(samples[0].mismatched, 1);
  EXPECT_EQ(samples[0].label, 3);
  EXPECT_EQ(samples[0].uid, "abc");
  EXPECT_EQ(samples[0].members.size(), 3u);
  EXPECT_EQ(samples[1].key, "part.v2/0002");
  EXPECT_TRUE(samples[1].usable()) << samples[1].problem;
  EXPECT_EQ(samples[1].image_bytes(), img2);
  EXPECT_EQ(samples[1].members[0].name, "part.v2/0002.PNG");  // names as stored
  EXPECT_EQ(samples[1].caption_text(), "a green square");
  EXPECT_EQ(samples[1].mismatched, 0);
  EXPECT_EQ(samples[1].label, -1);
  EXPECT_EQ(samples[2].key, "0003");
  EXPECT_EQ(samples[2].index_in_shard, 2);
  EXPECT_TRUE(samples[2].usable()) << samples[2].problem;
  EXPECT_EQ(samples[2].image_bytes(), img3);
  EXPECT_EQ(data::decode_image_bytes(samples[1].image_bytes(), samples[1].where()).cols, 16);
  EXPECT_EQ(data::count_shard_samples(dir + "/s.tar"), 3);
}

TEST(ShardReader, SamplesWithProblemsNameWhatIsWrong) {
  const std::string dir = make_temp_dir("shard_problems");
  const std::string img = png_bytes(4);
  write_tar(dir + "/bad.tar", {{"a.jpg", img},         // no caption
                               {"b.txt", "no image"},  // no image
                               {"c.png", img},
                               {"c.txt", "  \n"},  // empty caption
                               {"d.png", img},
                               {"d.txt", "x"},
                               {"d.json", "{not json"},
                               {"e.png", img},
                               {"e.jpg", img},
                               {"e.txt", "two images"},
                               {"f.png", img},
                               {"f.txt", "\xff\xfe"},
                               {"g.png", "not a png"},
                               {"g.txt", "fine until decoded"}});
  const auto samples = read_all_samples(dir + "/bad.tar");
  ASSERT_EQ(samples.size(), 7u);
  EXPECT_THAT(samples[0].problem, HasSubstr("no caption (a.txt)"));
  EXPECT_THAT(samples[1].problem, HasSubstr("no image (b.jpg"));
  EXPECT_THAT(samples[2].problem, HasSubstr("empty caption"));
  EXPECT_THAT(samples[3].problem, HasSubstr("json is not valid"));
  EXPECT_THAT(samples[4].problem, HasSubstr("two members of the same kind: 'e.png' and 'e.jpg'"));
  EXPECT_THAT(samples[5].problem, HasSubstr("not valid UTF-8"));
  EXPECT_TRUE(samples[6].usable());
  EXPECT_EQ(samples[6].where(), "shard '" + dir + "/bad.tar', sample 'g'");
  EXPECT_THAT(error_message(
                  [&] { data::decode_image_bytes(samples[6].image_bytes(), samples[6].where()); }),
              HasSubstr("cannot decode image shard '" + dir + "/bad.tar', sample 'g'"));
}

// Cut a shard at every 512-byte block and in the middle of blocks: the reader returns the
// complete samples before the cut, marks the one it cut through, and reports the truncation
// naming the shard; it never crashes.
TEST(ShardReader, TruncatedShardIsReportedNotACrash) {
  const std::string dir = make_temp_dir("shard_truncated");
  std::vector<std::pair<std::string, std::string>> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back({"k" + std::to_string(i) + ".png", png_bytes(i, 20, 20)});
    members.push_back({"k" + std::to_string(i) + ".txt", "caption " + std::to_string(i)});
  }
  write_tar(dir + "/full.tar", members);
  const std::string full = read_file(dir + "/full.tar");
  ASSERT_EQ(read_all_samples(dir + "/full.tar").size(), 4u);
  // The data ends before the two zero blocks that close the archive.
  size_t data_end = full.size();
  while (data_end >= 512 && full.compare(data_end - 512, 512, std::string(512, '\0')) == 0)
    data_end -= 512;
  int truncations = 0;
  for (size_t cut = 100; cut < data_end; cut += 256) {
    write_text(dir + "/cut.tar", full.substr(0, cut));
    std::string error;
    const auto samples = read_all_samples(dir + "/cut.tar", &error);
    ASSERT_LE(samples.size(), 4u);
    for (size_t i = 0; i + 1 < samples.size(); ++i)
      EXPECT_TRUE(samples[i].usable()) << cut << ": " << samples[i].problem;
    const bool complete = samples.size() == 4 && samples.back().usable();
    if (!complete) {
      EXPECT_THAT(error, HasSubstr("shard '" + dir + "/cut.tar' is truncated or corrupt")) << cut;
      ++truncations;
    }
  }
  EXPECT_GT(truncations, 5);
}

TEST(ShardWriter, RoundTripKeepsNamesAndBytesAndWritesAtomically) {
  const std::string dir = make_temp_dir("shard_writer");
  const std::string img = png_bytes(7);
  write_tar(dir + "/in.tar",
            {{"x/01.JPG", img}, {"x/01.txt", "one"}, {"x/02.png", img}, {"x/02.txt", "two"}});
  const auto samples = read_all_samples(dir + "/in.tar");
  ASSERT_EQ(samples.size(), 2u);
  {
    data::ShardWriter writer(dir + "/out.tar");
    for (const auto& s : samples) writer.add(s);
    EXPECT_FALSE(fs::exists(dir + "/out.tar"));  // not before finish()
    writer.finish();
  }
  EXPECT_EQ(read_file(dir + "/out.tar"), read_file(dir + "/in.tar"));
  {
    data::ShardWriter abandoned(dir + "/abandoned.tar");
    abandoned.add(samples[0]);
  }
  EXPECT_FALSE(fs::exists(dir + "/abandoned.tar"));
  EXPECT_TRUE(temporary_files_in(dir).empty());
  data::write_shard_sizes(dir, {{"in.tar", 2}, {"out.tar", 2}});
  EXPECT_THAT(data::shard_sizes_from_json({dir + "/out.tar", dir + "/in.tar"}), ElementsAre(2, 2));
}

}  // namespace
}  // namespace halo::test
