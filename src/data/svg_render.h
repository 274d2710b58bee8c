// Rendering one SVG document to a square RGB image with librsvg and Cairo, in process: the icon
// corpus (`prepare iconify`) draws every icon this way. One renderer per thread: each owns its
// Cairo surface, and every document gets its own librsvg handle.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

namespace halo::data {

class SvgRenderer {
 public:
  // Renders onto a `size` x `size` image.
  explicit SvgRenderer(int size);
  ~SvgRenderer();
  SvgRenderer(const SvgRenderer&) = delete;
  SvgRenderer& operator=(const SvgRenderer&) = delete;

  // Draws `document` (a complete <svg> element whose viewport is the image) composited on
  // white into `rgb` (size x size, CV_8UC3, channels in R, G, B order; reallocated as needed).
  // Returns false with `error` set when librsvg cannot parse or render the document.
  bool render(const std::string& document, cv::Mat& rgb, std::string& error);
  int size() const { return size_; }

 private:
  struct Surface;
  int size_;
  std::unique_ptr<Surface> surface_;
};

// 128 bits of two independent 64-bit hashes of a byte string (FNV-1a and a multiply-rotate
// hash with another seed): exact-duplicate detection where a collision must not happen by
// chance (about 1e-29 for a million images).
struct Hash128 {
  uint64_t a = 0, b = 0;
  bool operator==(const Hash128& o) const { return a == o.a && b == o.b; }
  bool operator!=(const Hash128& o) const { return !(*this == o); }
};
struct Hash128Hasher {
  size_t operator()(const Hash128& h) const {
    return static_cast<size_t>(h.a ^ (h.b * 0x9e3779b97f4a7c15ULL));
  }
};
Hash128 hash_bytes(const void* data, size_t size);
inline Hash128 hash_bytes(const std::string& text) {
  return hash_bytes(text.data(), text.size());
}
// The hash of an 8-bit RGB image's pixels (rows without padding, then its height and width).
Hash128 hash_image(const cv::Mat& rgb);

// The image as PNG bytes (RGB, OpenCV's default compression): what the shards store.
std::string encode_png(const cv::Mat& rgb);

}  // namespace halo::data
