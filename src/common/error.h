// One error vocabulary for the whole project: HALO_CHECK(cond, parts...) throws halo::Error
// with the source location and a human message. Never assert on user input; main() catches.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace halo {

class Error : public std::runtime_error {
 public:
  Error(const char* file, int line, const std::string& message);
  // The message alone, without the source location (for users).
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

// Throws halo::Error unless `path` is an existing regular file: "WHAT 'PATH' is empty" (no path
// given; `key` names the setting, e.g. data.train_manifest), "... is a directory", or "... does
// not exist" (for a relative path: relative to which current directory).
void check_input_file(const std::string& path, const std::string& what,
                      const std::string& key = "");

}  // namespace halo

#define HALO_CHECK(cond, ...)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      throw ::halo::Error(__FILE__, __LINE__, ::halo::detail::concat(__VA_ARGS__)); \
    }                                                                               \
  } while (0)

#define HALO_FAIL(...) throw ::halo::Error(__FILE__, __LINE__, ::halo::detail::concat(__VA_ARGS__))
