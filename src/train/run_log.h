// What a training run reports: a progress line on stdout (step, loss, learning rate, images/s,
// ETA) and one JSON object per logging step in run_dir/metrics.jsonl. On resume the metrics of
// steps after the checkpoint (from the interrupted run) are dropped before appending.
#pragma once
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/named_values.h"

namespace halo::train {

class RunLog {
 public:
  // enabled = false (ranks other than 0): nothing is printed or written.
  RunLog(const std::string& run_dir, int64_t resume_step, int64_t total_steps, bool enabled = true);
  // Records one step: `images` processed since the previous call and the time spent waiting
  // for data. Prints and writes a line every `every` steps.
  void step(int64_t step, int64_t epoch, int64_t images, double data_wait_s, const Metrics& metrics,
            int64_t every);
  // Writes a line of metrics.jsonl for `step` holding only `metrics` (results that arrive
  // between logging steps, such as validation).
  void record(int64_t step, const Metrics& metrics);

 private:
  bool enabled_;
  std::ofstream jsonl_;
  int64_t total_steps_, images_ = 0, steps_ = 0;
  double data_wait_ = 0;
  std::chrono::steady_clock::time_point window_start_, run_start_;
};

}  // namespace halo::train
