// Atomic file writes (see atomic_file.h): a temporary file in the target's folder, fsync,
// rename.
#include "common/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace halo {

void write_file_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  HALO_CHECK(fs::is_directory(folder), "cannot write '", path, "': folder '", folder.string(),
             "' does not exist");
  const std::string tmp =
      (folder / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  HALO_CHECK(f != nullptr, "cannot write '", tmp, "': ", std::strerror(errno));
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size() &&
                       std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(tmp.c_str());
    HALO_FAIL("cannot write '", tmp, "': ", std::strerror(written ? errno : saved_errno));
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    HALO_FAIL("cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace halo
