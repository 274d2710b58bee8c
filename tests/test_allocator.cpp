// The host-allocator choice: on by default under glibc, off when HALO_KEEP_FREED_MEMORY=0, and
// left to the user when GLIBC_TUNABLES already sets malloc parameters; once applied, a block of
// hundreds of MiB comes from the heap, not from an mmap that its free() would unmap.
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <gtest/gtest.h>

#include "common/allocator.h"

namespace halo::test {
namespace {

TEST(Allocator, ChoiceFollowsTheEnvironment) {
  EXPECT_FALSE(keep_freed_memory_choice("0", nullptr).apply);
  EXPECT_NE(keep_freed_memory_choice("0", nullptr).reason.find("HALO_KEEP_FREED_MEMORY=0"),
            std::string::npos);
  EXPECT_FALSE(keep_freed_memory_choice(nullptr, "glibc.malloc.trim_threshold=1").apply);
  EXPECT_FALSE(
      keep_freed_memory_choice("1", "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=4096").apply);
#if defined(__GLIBC__)
  EXPECT_TRUE(keep_freed_memory_choice(nullptr, nullptr).apply);
  EXPECT_TRUE(keep_freed_memory_choice("1", nullptr).apply);
  EXPECT_TRUE(keep_freed_memory_choice(nullptr, "glibc.pthread.rseq=0").apply)
      << "no malloc tunable set";
#else
  EXPECT_FALSE(keep_freed_memory_choice(nullptr, nullptr).apply);
#endif
}

#if defined(__GLIBC__)
TEST(Allocator, AppliesUnderGlibc) {
  // With no HALO_KEEP_FREED_MEMORY or malloc tunable in the environment, mallopt must accept
  // both settings.
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (std::getenv("HALO_KEEP_FREED_MEMORY") != nullptr ||
      (tunables != nullptr && std::strstr(tunables, "glibc.malloc."))) {
    GTEST_SKIP() << "the environment chooses the allocator settings";
  }
  const AllocatorChoice done = keep_freed_memory();
  EXPECT_TRUE(done.apply) << done.reason;
  EXPECT_TRUE(applied_allocator_choice().apply);
  EXPECT_EQ(applied_allocator_choice().reason, done.reason);

  // glibc caps the mmap threshold at 32 MiB: without M_MMAP_MAX = 0 this block would be an
  // mmap'd chunk (counted in hblkhd), unmapped by free() and faulted in again by the next step.
  const size_t before = mallinfo2().hblkhd;
  void* block = std::malloc(256u << 20);
  ASSERT_NE(block, nullptr);
  const size_t during = mallinfo2().hblkhd;
  std::free(block);
  EXPECT_EQ(during, before) << "a 256 MiB block was mmap'd";
}
#endif

}  // namespace
}  // namespace halo::test
