// Atomic file writes (see atomic_file.h): a temporary file in the target's folder, fsync,
// rename.
#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace fs = std::filesystem;

namespace halo {

namespace {

constexpr const char* kMarker = ".tmp-";

// ".NAME.tmp-PID" in the target's folder, which must exist.
std::string temporary_for(const std::string& path) {
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  HALO_CHECK(fs::is_directory(folder), "cannot write '", path, "': folder '", folder.string(),
             "' does not exist");
  return (folder / ("." + target.filename().string() + kMarker + std::to_string(::getpid())))
      .string();
}

// Flushes the written temporary file to disk and renames it over `path`; removes it on failure.
void sync_and_rename(const std::string& temporary, const std::string& path) {
  const int fd = ::open(temporary.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int saved_errno = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) {
    std::remove(temporary.c_str());
    HALO_FAIL("cannot write '", temporary, "': ", std::strerror(saved_errno));
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) {
    std::remove(temporary.c_str());
    HALO_FAIL("cannot rename '", temporary, "' to '", path, "': ", ec.message());
  }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  file.out().write(content.data(), static_cast<std::streamsize>(content.size()));
  file.commit();
}

void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string&)>& write) {
  const std::string temporary = temporary_for(path);
  try {
    write(temporary);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  sync_and_rename(temporary, path);
}

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temporary_(temporary_for(path_)), out_(temporary_, std::ios::binary) {
  HALO_CHECK(out_.good(), "cannot write '", temporary_, "': ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::remove(temporary_.c_str());
}

void AtomicFile::commit() {
  out_.close();
  if (out_.fail()) {
    std::remove(temporary_.c_str());
    committed_ = true;
    HALO_FAIL("writing '", path_, "' failed (disk full?)");
  }
  committed_ = true;
  sync_and_rename(temporary_, path_);
}

int remove_stale_temporaries(const std::string& folder) {
  int removed = 0;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return 0;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(kMarker) != std::string::npos &&
        entry.is_regular_file(ec)) {
      if (fs::remove(entry.path(), ec)) ++removed;
    }
  }
  return removed;
}

}  // namespace halo
