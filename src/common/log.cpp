// Console messages (see log.h).
#include "common/log.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>

namespace halo {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

namespace {
bool g_log_quiet = false;
}  // namespace

void set_log_quiet(bool quiet) {
  g_log_quiet = quiet;
}

void log_message(const std::string& text) {
  if (g_log_quiet) return;
  static const auto start = std::chrono::steady_clock::now();
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[" << format_duration(t) << "] " << text << std::endl;
}

}  // namespace halo
