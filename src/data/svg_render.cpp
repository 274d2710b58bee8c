// See svg_render.h. Kept out of the unity build (CMakeLists.txt): glib's headers define macros
// (MIN, MAX, TRUE, ...) that must not leak into other sources.
#include "data/svg_render.h"

#include <cstring>
#include <vector>

#include <cairo.h>
#include <librsvg/rsvg.h>
#include <opencv2/imgcodecs.hpp>

#include "common/error.h"

namespace halo::data {

struct SvgRenderer::Surface {
  cairo_surface_t* surface = nullptr;
  ~Surface() {
    if (surface != nullptr) cairo_surface_destroy(surface);
  }
};

namespace {

// A Cairo context for one document: a failed render can leave a context in an error state or
// with unbalanced groups, so none is reused.
struct Context {
  explicit Context(cairo_surface_t* surface) : cr(cairo_create(surface)) {}
  ~Context() { cairo_destroy(cr); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  cairo_t* cr;
};

}  // namespace

SvgRenderer::SvgRenderer(int size) : size_(size), surface_(std::make_unique<Surface>()) {
  HALO_CHECK(size >= 1 && size <= 4096, "SVG render size must be in [1, 4096], got ", size);
  surface_->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, size, size);
  HALO_CHECK(cairo_surface_status(surface_->surface) == CAIRO_STATUS_SUCCESS, "cannot create a ",
             size, "x", size,
             " Cairo surface: ", cairo_status_to_string(cairo_surface_status(surface_->surface)));
}

SvgRenderer::~SvgRenderer() = default;

bool SvgRenderer::render(const std::string& document, cv::Mat& rgb, std::string& error) {
  GError* gerror = nullptr;
  RsvgHandle* handle = rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(document.data()),
                                                 static_cast<gsize>(document.size()), &gerror);
  if (handle == nullptr) {
    error = gerror != nullptr ? gerror->message : "librsvg cannot read the document";
    if (gerror != nullptr) g_error_free(gerror);
    return false;
  }
  // A failed render can leave the surface itself in Cairo's sticky error state (NoMemory after a
  // document with an oversized filter), failing every later render on it: start a new one.
  if (cairo_surface_status(surface_->surface) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(surface_->surface);
    surface_->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, size_, size_);
    HALO_CHECK(cairo_surface_status(surface_->surface) == CAIRO_STATUS_SUCCESS, "cannot create a ",
               size_, "x", size_,
               " Cairo surface: ", cairo_status_to_string(cairo_surface_status(surface_->surface)));
  }
  gboolean ok = FALSE;
  {
    Context context(surface_->surface);
    cairo_t* cr = context.cr;
    // White first: the document is drawn over it, so transparency is composited on white.
    cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
    cairo_set_source_rgb(cr, 1.0, 1.0, 1.0);
    cairo_paint(cr);
    cairo_set_operator(cr, CAIRO_OPERATOR_OVER);
    RsvgRectangle viewport{0.0, 0.0, static_cast<double>(size_), static_cast<double>(size_)};
    ok = rsvg_handle_render_document(handle, cr, &viewport, &gerror);
    if (ok && cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
      error = std::string("Cairo: ") + cairo_status_to_string(cairo_status(cr));
      g_object_unref(handle);
      return false;
    }
  }
  g_object_unref(handle);
  if (!ok) {
    error = gerror != nullptr ? gerror->message : "librsvg cannot render the document";
    if (gerror != nullptr) g_error_free(gerror);
    return false;
  }
  cairo_surface_flush(surface_->surface);

  // ARGB32 is native-endian 32-bit words, premultiplied; after the white background every pixel
  // is opaque, so the colour channels are the composited values.
  const unsigned char* data = cairo_image_surface_get_data(surface_->surface);
  const int stride = cairo_image_surface_get_stride(surface_->surface);
  rgb.create(size_, size_, CV_8UC3);
  for (int y = 0; y < size_; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<ptrdiff_t>(y) * stride);
    unsigned char* out = rgb.ptr<unsigned char>(y);
    for (int x = 0; x < size_; ++x) {
      const uint32_t p = row[x];
      out[3 * x] = static_cast<unsigned char>((p >> 16) & 0xff);
      out[3 * x + 1] = static_cast<unsigned char>((p >> 8) & 0xff);
      out[3 * x + 2] = static_cast<unsigned char>(p & 0xff);
    }
  }
  return true;
}

Hash128 hash_bytes(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t a = 0xcbf29ce484222325ULL;  // FNV-1a, 64 bit
  for (size_t i = 0; i < size; ++i) a = (a ^ bytes[i]) * 0x100000001b3ULL;
  uint64_t b = 0x243f6a8885a308d3ULL ^ (size * 0x9e3779b97f4a7c15ULL);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    b = (b ^ (word * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
    b = (b << 29) | (b >> 35);
  }
  uint64_t tail = 0;
  for (size_t k = 0; i + k < size; ++k) tail |= static_cast<uint64_t>(bytes[i + k]) << (8 * k);
  b = (b ^ (tail * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
  b ^= b >> 33;  // splitmix-style finish
  b *= 0xff51afd7ed558ccdULL;
  b ^= b >> 33;
  return {a, b};
}

Hash128 hash_image(const cv::Mat& rgb) {
  HALO_CHECK(rgb.type() == CV_8UC3, "hash_image: expected an 8-bit RGB image");
  std::vector<unsigned char> bytes;
  bytes.reserve(rgb.total() * 3 + 8);
  for (int y = 0; y < rgb.rows; ++y) {
    const unsigned char* row = rgb.ptr<unsigned char>(y);
    bytes.insert(bytes.end(), row, row + static_cast<ptrdiff_t>(rgb.cols) * 3);
  }
  for (int v : {rgb.rows, rgb.cols}) {
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<unsigned char>((v >> (8 * k)) & 0xff));
  }
  return hash_bytes(bytes.data(), bytes.size());
}

std::string encode_png(const cv::Mat& rgb) {
  HALO_CHECK(rgb.type() == CV_8UC3, "encode_png: expected an 8-bit RGB image");
  cv::Mat bgr(rgb.rows, rgb.cols, CV_8UC3);
  for (int y = 0; y < rgb.rows; ++y) {
    const unsigned char* in = rgb.ptr<unsigned char>(y);
    unsigned char* out = bgr.ptr<unsigned char>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      out[3 * x] = in[3 * x + 2];
      out[3 * x + 1] = in[3 * x + 1];
      out[3 * x + 2] = in[3 * x];
    }
  }
  std::vector<unsigned char> png;
  HALO_CHECK(cv::imencode(".png", bgr, png), "cannot encode a ", rgb.cols, "x", rgb.rows,
             " image as PNG");
  return std::string(png.begin(), png.end());
}

}  // namespace halo::data
