// Implementation of the shared test helpers (see test_util.h).
#include "test_util.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <unistd.h>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "data/shard_writer.h"

namespace halo::test {

::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double rtol, double atol) {
  if (!actual.defined() || !expected.defined()) {
    return ::testing::AssertionFailure() << "undefined tensor";
  }
  const torch::Tensor a = actual.detach().to(torch::kDouble).cpu().reshape(expected.sizes());
  const torch::Tensor e = expected.detach().to(torch::kDouble).cpu();
  if (actual.numel() != expected.numel()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " differs from expected " << expected.sizes();
  }
  if (!torch::isfinite(a).all().item<bool>()) {
    return ::testing::AssertionFailure() << "non-finite values in the result";
  }
  const torch::Tensor excess = (a - e).abs() - (atol + rtol * e.abs());
  if (excess.numel() == 0 || excess.max().item<double>() <= 0) {
    return ::testing::AssertionSuccess();
  }
  const int64_t worst = excess.reshape({-1}).argmax().item<int64_t>();
  std::ostringstream msg;
  msg << (excess > 0).sum().item<int64_t>() << " of " << e.numel()
      << " elements differ; worst at flat index " << worst << ": got "
      << a.reshape({-1})[worst].item<double>() << ", expected "
      << e.reshape({-1})[worst].item<double>() << " (rtol " << rtol << ", atol " << atol << ")";
  return ::testing::AssertionFailure() << msg.str();
}

torch::Tensor tensor_from_json(const YAML::Node& node) {
  if (node.IsScalar()) return torch::tensor(node.as<double>(), torch::kDouble);
  std::vector<double> values;
  int64_t rows = static_cast<int64_t>(node.size()), cols = -1;
  for (const auto& row : node) {
    if (row.IsScalar()) {
      values.push_back(row.as<double>());
      continue;
    }
    cols = static_cast<int64_t>(row.size());
    for (const auto& v : row) values.push_back(v.as<double>());
  }
  torch::Tensor t = torch::tensor(values, torch::kDouble);
  return cols < 0 ? t : t.reshape({rows, cols});
}

std::vector<torch::Tensor> finite_difference_grads(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
    const std::vector<torch::Tensor>& inputs, double h) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> work;
  for (const auto& x : inputs) work.push_back(x.detach().clone());
  std::vector<torch::Tensor> grads;
  for (auto& x : work) {
    torch::Tensor g = torch::zeros_like(x);
    auto flat = x.view({-1});
    auto gflat = g.view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double v = flat[i].item<double>();
      flat[i] = v + h;
      const double up = f(work).item<double>();
      flat[i] = v - h;
      const double down = f(work).item<double>();
      flat[i] = v;
      gflat[i] = (up - down) / (2 * h);
    }
    grads.push_back(g);
  }
  return grads;
}

std::vector<torch::Tensor> autograd_grads(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
    const std::vector<torch::Tensor>& inputs) {
  std::vector<torch::Tensor> leaves;
  for (const auto& x : inputs) leaves.push_back(x.detach().clone().requires_grad_(true));
  f(leaves).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& x : leaves)
    grads.push_back(x.grad().defined() ? x.grad() : torch::zeros_like(x));
  return grads;
}

std::string make_temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("halo_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const std::string& path, const std::string& text) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<double> logged_losses(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);) {
    const auto pos = line.find("\"loss\": ");
    if (pos != std::string::npos) losses.push_back(std::stod(line.substr(pos + 8)));
  }
  return losses;
}

std::vector<std::string> temporary_files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp") != std::string::npos) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const halo::Error& e) {
    return e.message();
  }
  return "";
}

std::string png_bytes(int seed, int height, int width) {
  cv::Mat img(height, width, CV_8UC3,
              cv::Scalar(seed * 37 % 256, seed * 11 % 256, 255 - seed * 23 % 256));
  std::vector<uchar> buffer;
  cv::imencode(".png", img, buffer);
  return std::string(buffer.begin(), buffer.end());
}

void write_tar(const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& members) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  data::ShardWriter writer(path);
  for (const auto& [name, bytes] : members) writer.add(data::TarMember{name, bytes});
  writer.finish();
}

}  // namespace halo::test
