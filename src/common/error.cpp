// halo::Error: keeps the message and prefixes what() with the throwing source location.
#include "common/error.h"

#include <cstring>
#include <filesystem>

namespace halo {

static std::string short_path(const char* file) {
  const char* src = std::strstr(file, "src/");
  return src ? std::string(src) : std::string(file);
}

Error::Error(const char* file, int line, const std::string& message)
    : std::runtime_error(message + " (" + short_path(file) + ":" + std::to_string(line) + ")"),
      message_(message) {}

void check_input_file(const std::string& path, const std::string& what, const std::string& key) {
  namespace fs = std::filesystem;
  HALO_CHECK(!path.empty(), "no ", what, " given",
             key.empty() ? std::string() : " (set " + key + ")");
  std::error_code ec;
  HALO_CHECK(!fs::is_directory(path, ec), what, " '", path, "' is a directory, not a file");
  if (fs::is_regular_file(path, ec)) return;
  const fs::path p(path);
  HALO_CHECK(fs::exists(p, ec), what, " '", path, "' does not exist",
             p.is_absolute()
                 ? std::string()
                 : " (relative to the current directory " + fs::current_path(ec).string() + ")");
  HALO_FAIL(what, " '", path, "' is not a regular file");
}

}  // namespace halo
