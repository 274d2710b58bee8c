// halo::Error: keeps the message and prefixes what() with the throwing source location.
#include "common/error.h"

#include <cstring>

namespace halo {

static std::string short_path(const char* file) {
  const char* src = std::strstr(file, "src/");
  return src ? std::string(src) : std::string(file);
}

Error::Error(const char* file, int line, const std::string& message)
    : std::runtime_error(message + " (" + short_path(file) + ":" + std::to_string(line) + ")"),
      message_(message) {}

}  // namespace halo
