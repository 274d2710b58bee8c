// Console messages: a line prefixed with the time since the process started, silenced on the
// ranks other than 0 of a multi-process run, and durations formatted for humans.
#pragma once
#include <string>

namespace halo {

// A line on stdout, prefixed with the time since the process started.
void log_message(const std::string& text);
// Silences log_message (ranks other than 0 of a multi-process run).
void set_log_quiet(bool quiet);
// "1h02m" or "3m07s".
std::string format_duration(double seconds);

}  // namespace halo
