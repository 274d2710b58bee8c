// halo::write_file_atomically: the whole content or nothing, never a temporary file left over,
// and errors that name the file.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/atomic_file.h"
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

}  // namespace
}  // namespace halo::test
