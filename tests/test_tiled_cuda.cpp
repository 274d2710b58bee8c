// The tiled HALO loss on CUDA tensors against the dense CPU reference, both ways it runs there:
// `tiled` (the ATen tiles, cuBLAS products; tiles of 32 so that odd sizes leave partial tiles)
// and `kernel` (the hand-written CUDA kernels). Loss, parts and the gradients of image/text rows
// and columns and gamma_raw, fp32 and bf16 embeddings, over sizes around 32-row/column tiles and
// D not a multiple of 32, local batches and row blocks with row_offset != 0. Skipped where no
// CUDA device is available (the kernel test also where the build has no CUDA kernels).
#include <algorithm>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "loss/halo_tiled.h"
#include "test_util.h"

namespace halo::test {
namespace {

struct Shape {
  int64_t rows, cols, offset, dim;
};

// Loss parts and gradients (image rows, text rows, image cols, text cols, gamma_raw) on `device`.
std::vector<torch::Tensor> cuda_case_grads(const Shape& s, bool distill,
                                           loss::LossImplementation impl, torch::ScalarType dtype,
                                           const torch::Device& device, int64_t tile = 1024) {
  torch::manual_seed(static_cast<uint64_t>(s.rows * 7 + s.cols));
  const torch::Tensor image_c = torch::randn({s.cols, s.dim});
  const torch::Tensor text_c = 0.6 * image_c + torch::randn({s.cols, s.dim});
  // The same rounded values on both sides: the reference sees the bf16 inputs as fp32.
  auto leaf = [&](const torch::Tensor& t) {
    return t.to(dtype)
        .to(device, impl == loss::LossImplementation::kDense ? torch::kFloat : dtype)
        .detach()
        .requires_grad_(true);
  };
  const bool local = s.rows == s.cols;
  torch::Tensor ic = leaf(image_c), tc = leaf(text_c);
  torch::Tensor ir = local ? ic : leaf(image_c.narrow(0, s.offset, s.rows));
  torch::Tensor tr = local ? tc : leaf(text_c.narrow(0, s.offset, s.rows));
  torch::Tensor gamma_raw =
      torch::tensor({1.4}, torch::TensorOptions().device(device)).requires_grad_(true);
  loss::HaloClipOptions opt;
  opt.embed_dim = s.dim;
  opt.num_candidates = s.cols;
  opt.label_smoothing = 0.2;
  opt.distill = distill;
  opt.implementation = loss::loss_implementation_name(impl);
  opt.tile_size = tile;
  const double b = loss::abstain_bias(s.dim, s.cols, 0.2);
  const auto p = loss::halo_clip_loss(loss::PairBatch{ir, tr, ic, tc, local ? 0 : s.offset, {}, {}},
                                      gamma_raw, b, opt);
  (p.total + 0.3 * p.ce_image_to_text - 0.7 * p.ce_text_to_image).backward();
  std::vector<torch::Tensor> out{p.total, p.ce_image_to_text, p.ce_text_to_image, p.radial};
  for (const auto& t : {ir, tr, ic, tc, gamma_raw}) out.push_back(t.grad());
  for (auto& t : out) t = t.detach().to(torch::kCPU, torch::kDouble);
  return out;
}

void expect_matches_dense_cpu(loss::LossImplementation impl, int64_t tile) {
  const std::vector<Shape> shapes{{1, 1, 0, 2},     {7, 7, 0, 5},      {32, 32, 0, 32},
                                  {33, 33, 0, 40},  {100, 100, 0, 64}, {5, 70, 31, 17},
                                  {40, 97, 57, 33}, {64, 64, 0, 130},  {300, 300, 0, 96}};
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    // bf16 gradients are rounded once to 8 significant bits on the way back, and a tensor used
    // as rows and columns sums two rounded gradients: absolute tolerance relative to the largest.
    const double rtol = dtype == torch::kFloat ? 1e-4 : 1e-2;
    const double atol_rel = dtype == torch::kFloat ? 1e-5 : 2e-2;
    for (bool distill : {true, false}) {
      for (const auto& s : shapes) {
        SCOPED_TRACE(::testing::Message()
                     << s.rows << " x " << s.cols << " offset " << s.offset << " D " << s.dim
                     << (distill ? " distill " : " smoothing ") << dtype);
        const auto ref =
            cuda_case_grads(s, distill, loss::LossImplementation::kDense, dtype, torch::kCPU);
        const auto got = cuda_case_grads(s, distill, impl, dtype, torch::Device("cuda:0"), tile);
        ASSERT_EQ(ref.size(), got.size());
        for (size_t i = 0; i < ref.size(); ++i) {
          const double atol = std::max(1e-6, atol_rel * ref[i].abs().max().item<double>());
          EXPECT_TRUE(all_close(got[i], ref[i], rtol, atol)) << "output " << i;
        }
      }
    }
  }
}

TEST(TiledCuda, AtenTilesMatchDenseCpuReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_matches_dense_cpu(loss::LossImplementation::kTiled, 32);
}

TEST(TiledCuda, KernelsMatchDenseCpuReference) {
  if (!torch::cuda::is_available() || !loss::tiled_cuda_available()) {
    GTEST_SKIP() << "no CUDA device, or this build has no CUDA kernels";
  }
  expect_matches_dense_cpu(loss::LossImplementation::kKernel, 1024);
}

// Dense on the GPU against dense on the CPU: what the two tests above rest on when run with
// bench_kernel's dense reference on CUDA.
TEST(TiledCuda, DenseOnCudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Shape s{40, 97, 57, 33};
  const auto ref =
      cuda_case_grads(s, true, loss::LossImplementation::kDense, torch::kFloat, torch::kCPU);
  const auto got = cuda_case_grads(s, true, loss::LossImplementation::kDense, torch::kFloat,
                                   torch::Device("cuda:0"));
  for (size_t i = 0; i < ref.size(); ++i) {
    const double atol = std::max(1e-6, 1e-5 * ref[i].abs().max().item<double>());
    EXPECT_TRUE(all_close(got[i], ref[i], 1e-4, atol)) << "output " << i;
  }
}

}  // namespace
}  // namespace halo::test
