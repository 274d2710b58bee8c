// Named scalar values in order: what a step logs to metrics.jsonl and the progress line.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace halo {

using Metrics = std::vector<std::pair<std::string, double>>;

}  // namespace halo
