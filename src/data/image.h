// Image decoding and transforms with OpenCV: any format OpenCV reads, alpha composited on
// white, grey expanded to RGB; then a random resized crop (training) or a resize of the short
// side and a centre crop (evaluation), an optional flip, and per-channel normalisation.
#pragma once
#include <array>
#include <cstdint>
#include <random>
#include <string>

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

namespace halo::data {

struct ImageTransform {
  int64_t size = 32;                        // output is size x size
  bool random_resized_crop = false;         // training augmentation
  double scale_min = 0.8, scale_max = 1.0;  // crop area fraction
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  bool horizontal_flip = false;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

// 8-bit RGB image. Throws halo::Error naming the file when it is missing or cannot be decoded.
cv::Mat decode_image(const std::string& path);

// The same from encoded bytes in memory (a tar member); `name` says where they came from in
// the error message.
cv::Mat decode_image_bytes(const std::string& bytes, const std::string& name);

// 3 x size x size float tensor. `rng` drives the augmentation (crop, flip) when enabled.
torch::Tensor transform_image(const cv::Mat& rgb, const ImageTransform& transform,
                              std::mt19937_64& rng);

}  // namespace halo::data
