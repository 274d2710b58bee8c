// Progress lines and the metrics file (see run_log.h).
#include "train/run_log.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"

namespace halo::train {

namespace {

// Keeps only the metric lines of steps <= last_step (a resumed run rewrites what follows).
void truncate_metrics(const std::string& path, int64_t last_step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto pos = line.find("\"step\": ");
    if (pos == std::string::npos) continue;
    if (std::stoll(line.substr(pos + 8)) <= last_step) kept += line + "\n";
  }
  write_file_atomically(path, kept);
}

}  // namespace

RunLog::RunLog(const std::string& run_dir, int64_t resume_step, int64_t total_steps, bool enabled)
    : enabled_(enabled),
      total_steps_(total_steps),
      window_start_(std::chrono::steady_clock::now()),
      run_start_(window_start_) {
  if (!enabled_) return;
  const std::string path = (std::filesystem::path(run_dir) / "metrics.jsonl").string();
  if (resume_step > 0) {
    truncate_metrics(path, resume_step);
  } else {
    std::filesystem::remove(path);
  }
  jsonl_.open(path, std::ios::app);
  HALO_CHECK(jsonl_.good(), "cannot write '", path, "'");
  steps_ = resume_step;
}

void RunLog::step(int64_t step, int64_t epoch, int64_t images, double data_wait_s,
                  const Metrics& metrics, int64_t every) {
  if (!enabled_) return;
  images_ += images;
  data_wait_ += data_wait_s;
  if (step % every != 0 && step != total_steps_) return;
  const auto now = std::chrono::steady_clock::now();
  const double window = std::chrono::duration<double>(now - window_start_).count();
  const int64_t window_steps = step - steps_;
  const double images_per_s = window > 0 ? images_ / window : 0.0;
  const double eta = window_steps > 0 ? window / window_steps * (total_steps_ - step) : 0.0;

  std::ostringstream json;
  json << "{\"step\": " << step << ", \"epoch\": " << epoch
       << ", \"images_per_s\": " << json_number(images_per_s)
       << ", \"data_wait_fraction\": " << json_number(window > 0 ? data_wait_ / window : 0.0)
       << ", \"elapsed_s\": "
       << json_number(std::chrono::duration<double>(now - run_start_).count());
  for (const auto& [name, value] : metrics) json << ", \"" << name << "\": " << json_number(value);
  json << "}\n";
  jsonl_ << json.str();
  jsonl_.flush();

  double loss = NAN, lr = NAN;
  for (const auto& [name, value] : metrics) {
    if (name == "loss") loss = value;
    if (name == "lr") lr = value;
  }
  char line[256];
  std::snprintf(
      line, sizeof line, "step %lld/%lld | epoch %lld | loss %.4f | lr %.2e | %.0f img/s | ETA %s",
      static_cast<long long>(step), static_cast<long long>(total_steps_),
      static_cast<long long>(epoch), loss, lr, images_per_s, format_duration(eta).c_str());
  std::cout << line << std::endl;
  images_ = 0;
  data_wait_ = 0;
  steps_ = step;
  window_start_ = now;
}

void RunLog::record(int64_t step, const Metrics& metrics) {
  if (!enabled_ || metrics.empty()) return;
  std::ostringstream json;
  json << "{\"step\": " << step;
  for (const auto& [name, value] : metrics) json << ", \"" << name << "\": " << json_number(value);
  json << "}\n";
  jsonl_ << json.str();
  jsonl_.flush();
}

}  // namespace halo::train
