// Helpers shared by the tests: element-wise closeness with a readable failure, tensors from
// JSON (yaml-cpp reads JSON), and central finite differences in double precision.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/types.h>
#include <yaml-cpp/yaml.h>

namespace halo::test {

// |actual - expected| <= atol + rtol * |expected| everywhere (shapes must match).
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double rtol, double atol);

// A JSON number, a list of numbers, or a list of lists, as a float64 tensor.
torch::Tensor tensor_from_json(const YAML::Node& node);

// Gradients of the scalar function f at `inputs` by central differences with step h.
std::vector<torch::Tensor> finite_difference_grads(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
    const std::vector<torch::Tensor>& inputs, double h = 1e-6);

// Gradients of f at `inputs` by autograd (inputs are cloned as leaves).
std::vector<torch::Tensor> autograd_grads(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& f,
    const std::vector<torch::Tensor>& inputs);

// A fresh, empty folder under the system's temporary directory (removed at exit is not needed:
// names are unique per process and test).
std::string make_temp_dir(const std::string& name);

// Writes `text` to `path` (bytes as given), creating its folders.
void write_text(const std::string& path, const std::string& text);

// The "loss" of every line of RUN_DIR/metrics.jsonl that has one, in order.
std::vector<double> logged_losses(const std::string& run_dir);

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::string& path);

// The names of the entries of `dir` that look like temporary files (containing ".tmp"), sorted:
// what a crash or a failed write could leave behind.
std::vector<std::string> temporary_files_in(const std::string& dir);

// A small PNG (h x w, one colour from `seed`), encoded in memory: an image member of a shard.
std::string png_bytes(int seed, int height = 12, int width = 16);

// Writes a tar shard at `path` with the given (member name, bytes) pairs, in order.
void write_tar(const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& members);

// A message that a halo::Error thrown by `f` carries, or "" when nothing was thrown.
std::string error_message(const std::function<void()>& f);

}  // namespace halo::test
