// The one atomic file writer (common/atomic_file.h): the whole content or nothing, never a
// temporary file left over, errors that name the file; streamed files appear only on commit;
// stale temporaries of an interrupted run are found and removed.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

TEST(AtomicFile, WritesAndReplacesTheWholeContent) {
  const std::string dir = make_temp_dir("atomic_file");
  const std::string path = dir + "/result.txt";
  write_file_atomically(path, std::string("first\0binary", 12));
  EXPECT_EQ(read_file(path), std::string("first\0binary", 12));
  write_file_atomically(path, "second");
  EXPECT_EQ(read_file(path), "second");
  write_file_atomically(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_TRUE(temporary_files_in(dir).empty());
}

TEST(AtomicFile, FailuresNameTheFileAndLeaveNothingBehind) {
  const std::string dir = make_temp_dir("atomic_file_errors");
  EXPECT_THAT(error_message([&] { write_file_atomically(dir + "/missing/result.txt", "x"); }),
              HasSubstr("folder '" + dir + "/missing' does not exist"));
  // The target is a folder: the rename fails, the old folder stays, no temporary file remains.
  std::filesystem::create_directories(dir + "/taken/inside");
  EXPECT_THAT(error_message([&] { write_file_atomically(dir + "/taken", "x"); }),
              HasSubstr("cannot rename"));
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/taken/inside"));
  EXPECT_TRUE(temporary_files_in(dir).empty());
}

TEST(AtomicFile, StreamedFileAppearsOnlyOnCommit) {
  const std::string dir = make_temp_dir("atomic_file_stream");
  {
    AtomicFile kept(dir + "/kept.tsv");
    kept.out() << "a\n";
    EXPECT_FALSE(std::filesystem::exists(dir + "/kept.tsv"));
    EXPECT_EQ(temporary_files_in(dir).size(), 1u);
    kept.out() << "b\n";
    kept.commit();
  }
  EXPECT_EQ(read_file(dir + "/kept.tsv"), "a\nb\n");
  {
    AtomicFile abandoned(dir + "/abandoned.tsv");  // an error before commit()
    abandoned.out() << "half";
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/abandoned.tsv"));
  EXPECT_TRUE(temporary_files_in(dir).empty());
}

TEST(AtomicFile, WriterThatNeedsAPathWritesThroughATemporaryFile) {
  const std::string dir = make_temp_dir("atomic_file_path");
  std::string seen;
  write_file_atomically(dir + "/model.pt", [&](const std::string& temporary) {
    seen = temporary;
    std::ofstream(temporary) << "weights";
  });
  EXPECT_NE(seen, dir + "/model.pt");
  EXPECT_EQ(read_file(dir + "/model.pt"), "weights");
  EXPECT_THAT(error_message([&] {
                write_file_atomically(dir + "/broken.pt", [](const std::string& temporary) {
                  std::ofstream(temporary) << "half";
                  HALO_FAIL("serialisation failed");
                });
              }),
              HasSubstr("serialisation failed"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/broken.pt"));
  EXPECT_TRUE(temporary_files_in(dir).empty());
}

TEST(AtomicFile, StaleTemporariesAreRemovedAndNothingElse) {
  const std::string dir = make_temp_dir("atomic_file_stale");
  std::ofstream(dir + "/.step_00000004.pt.tmp-12345") << "interrupted";
  std::ofstream(dir + "/.latest.tmp-999") << "interrupted";
  std::ofstream(dir + "/step_00000004.pt") << "kept";
  std::ofstream(dir + "/.hidden") << "kept";
  EXPECT_EQ(remove_stale_temporaries(dir), 2);
  EXPECT_TRUE(temporary_files_in(dir).empty());
  EXPECT_TRUE(std::filesystem::exists(dir + "/step_00000004.pt"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/.hidden"));
  EXPECT_EQ(remove_stale_temporaries(dir + "/missing"), 0);
}

}  // namespace
}  // namespace halo::test
