// Image decoding and transforms (see image.h).
#include "data/image.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace halo::data {

namespace {

// Converts any 8/16-bit 1-4 channel image to 8-bit RGB, alpha composited on white.
cv::Mat to_rgb8(const cv::Mat& raw) {
  cv::Mat img = raw;
  if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257.0);
  if (img.depth() != CV_8U) img.convertTo(img, CV_8U);
  cv::Mat rgb;
  switch (img.channels()) {
    case 1:
      cv::cvtColor(img, rgb, cv::COLOR_GRAY2RGB);
      break;
    case 3:
      cv::cvtColor(img, rgb, cv::COLOR_BGR2RGB);
      break;
    case 4: {
      cv::Mat bgra_f, out;
      img.convertTo(bgra_f, CV_32F, 1.0 / 255.0);
      std::vector<cv::Mat> ch;
      cv::split(bgra_f, ch);
      for (int c = 0; c < 3; ++c) ch[c] = ch[c].mul(ch[3]) + (1.0 - ch[3]);  // over white
      cv::Mat bgr;
      cv::merge(std::vector<cv::Mat>{ch[0], ch[1], ch[2]}, bgr);
      bgr.convertTo(out, CV_8U, 255.0);
      cv::cvtColor(out, rgb, cv::COLOR_BGR2RGB);
      break;
    }
    default:
      HALO_FAIL("unsupported number of channels: ", img.channels());
  }
  return rgb;
}

}  // namespace

cv::Mat decode_image(const std::string& path) {
  HALO_CHECK(std::filesystem::is_regular_file(path), "image not found: '", path, "'");
  cv::Mat raw;
  try {
    raw = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    HALO_FAIL("cannot decode image '", path, "': ", e.what());
  }
  HALO_CHECK(!raw.empty() && raw.rows > 0 && raw.cols > 0, "cannot decode image '", path,
             "' (corrupt or not an image)");
  try {
    return to_rgb8(raw);
  } catch (const halo::Error& e) {
    HALO_FAIL("cannot use image '", path, "': ", e.message());
  }
}

cv::Mat decode_image_bytes(const std::string& bytes, const std::string& name) {
  HALO_CHECK(!bytes.empty(), "cannot decode image ", name, ": it is empty");
  cv::Mat raw;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    raw = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    HALO_FAIL("cannot decode image ", name, ": ", e.what());
  }
  HALO_CHECK(!raw.empty() && raw.rows > 0 && raw.cols > 0, "cannot decode image ", name,
             " (corrupt or not an image)");
  try {
    return to_rgb8(raw);
  } catch (const halo::Error& e) {
    HALO_FAIL("cannot use image ", name, ": ", e.message());
  }
}

torch::Tensor transform_image(const cv::Mat& rgb, const ImageTransform& t, std::mt19937_64& rng) {
  const int size = static_cast<int>(t.size);
  cv::Rect crop(0, 0, rgb.cols, rgb.rows);
  if (t.random_resized_crop) {
    // torchvision's RandomResizedCrop: a crop of random area and aspect ratio, 10 tries, then
    // fall back to the whole image.
    std::uniform_real_distribution<double> area_d(t.scale_min, t.scale_max);
    std::uniform_real_distribution<double> log_ratio_d(std::log(t.ratio_min),
                                                       std::log(t.ratio_max));
    const double area = static_cast<double>(rgb.cols) * rgb.rows;
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * area_d(rng), ratio = std::exp(log_ratio_d(rng));
      const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
      const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
      if (w > 0 && h > 0 && w <= rgb.cols && h <= rgb.rows) {
        const int x = std::uniform_int_distribution<int>(0, rgb.cols - w)(rng);
        const int y = std::uniform_int_distribution<int>(0, rgb.rows - h)(rng);
        crop = cv::Rect(x, y, w, h);
        break;
      }
    }
  } else {
    // Resize the short side to `size`, then take the centre square.
    const int side = std::min(rgb.cols, rgb.rows);
    crop = cv::Rect((rgb.cols - side) / 2, (rgb.rows - side) / 2, side, side);
  }
  cv::Mat out;
  const bool shrinking = crop.width > size || crop.height > size;
  cv::resize(rgb(crop), out, cv::Size(size, size), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (t.horizontal_flip && std::uniform_int_distribution<int>(0, 1)(rng) == 1)
    cv::flip(out, out, 1);
  if (!out.isContinuous()) out = out.clone();

  torch::Tensor x = torch::from_blob(out.data, {size, size, 3}, torch::kUInt8)
                        .permute({2, 0, 1})
                        .to(torch::kFloat)
                        .div_(255.0);
  const auto mean = torch::tensor({t.mean[0], t.mean[1], t.mean[2]}).view({3, 1, 1});
  const auto std = torch::tensor({t.std[0], t.std[1], t.std[2]}).view({3, 1, 1});
  return x.sub_(mean).div_(std).contiguous();
}

}  // namespace halo::data
