// prepare mnist / fashion-mnist: reads the IDX image and label files of a split (raw, or .gz
// through `gzip -dc`), writes each image as a PNG and captions it from a template with its class.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "common/splitmix.h"
#include "data/prepare.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace {

std::string read_raw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  HALO_CHECK(in.good(), "cannot open '", path.string(), "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string read_gzip(const fs::path& path) {  // no zlib in the link: gzip(1) through a pipe
  std::string quoted = "'";
  for (const char c : path.string()) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  std::FILE* pipe = ::popen(("gzip -dc -- " + quoted + " 2>/dev/null").c_str(), "r");
  HALO_CHECK(pipe != nullptr, "cannot run gzip to read '", path.string(), "'");
  std::string data;
  char buffer[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) data.append(buffer, got);
  const int status = ::pclose(pipe);
  HALO_CHECK(status == 0, "cannot decompress '", path.string(), "' (gzip -dc failed)");
  return data;
}

// The IDX file `<prefix>-<kind>` of `source`, raw or gzipped; both spellings of the name
// (train-images-idx3-ubyte and train-images.idx3-ubyte) are accepted.
std::string read_idx_file(const fs::path& source, const std::string& prefix,
                          const std::string& kind, fs::path* found) {
  const std::string dashed = prefix + "-" + kind;  // e.g. train-images-idx3-ubyte
  std::string dotted = dashed;
  dotted[dashed.find("-idx")] = '.';  // e.g. train-images.idx3-ubyte
  for (const auto& name : {dashed, dotted}) {
    if (fs::is_regular_file(source / name)) return read_raw(*found = source / name);
    if (fs::is_regular_file(source / (name + ".gz"))) {
      return read_gzip(*found = source / (name + ".gz"));
    }
  }
  HALO_FAIL("no IDX file '", dashed, "' (or .gz) in --source '", source.string(), "'");
}

uint32_t big_endian(const std::string& data, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Checks an unsigned-byte IDX header with `dims` dimensions and returns the dimensions.
std::vector<uint32_t> idx_dims(const std::string& data, int dims, const fs::path& path) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  HALO_CHECK(
      data.size() >= header && data[0] == 0 && data[1] == 0 && data[2] == 0x08 && data[3] == dims,
      "'", path.string(), "' is not an unsigned-byte IDX file with ", dims, " dimensions");
  std::vector<uint32_t> out;
  size_t count = 1;
  for (int d = 0; d < dims; ++d) {
    out.push_back(big_endian(data, 4 + 4 * static_cast<size_t>(d)));
    count *= out.back();
  }
  HALO_CHECK(data.size() == header + count, "'", path.string(), "' holds ", data.size() - header,
             " bytes of data, its header says ", count);
  return out;
}

const char* const kDigitWords[] = {"zero", "one", "two",   "three", "four",
                                   "five", "six", "seven", "eight", "nine"};
// Fashion-MNIST's classes (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker,
// Bag, Ankle boot) as nouns that read well after "a".
const char* const kFashionNouns[] = {"t-shirt", "pair of trousers", "pullover", "dress",
                                     "coat",    "sandal",           "shirt",    "sneaker",
                                     "bag",     "ankle boot"};

// Caption templates: {w} is the class as a word ("seven", "a dress", "an ankle boot"), {d} the
// digit ("7").
const char* const kDigitTemplates[] = {"a handwritten digit {w}", "the number {d} written by hand",
                                       "a photo of the digit {d}", "a handwritten {w}",
                                       "a white digit {w} on a black background"};
const char* const kFashionTemplates[] = {"a photo of {w}", "a black and white picture of {w}",
                                         "a small grayscale photo of {w}", "a product photo of {w}",
                                         "a low resolution image of {w}"};

std::string fill_in(std::string text, const std::string& key, const std::string& value) {
  const size_t at = text.find(key);
  if (at != std::string::npos) text.replace(at, key.size(), value);
  return text;
}

std::string caption_for(bool fashion, int label, uint64_t pick) {
  if (fashion) {
    const std::string noun = kFashionNouns[label];
    return fill_in(kFashionTemplates[pick % 5], "{w}", (noun[0] == 'a' ? "an " : "a ") + noun);
  }
  return fill_in(fill_in(kDigitTemplates[pick % 5], "{w}", kDigitWords[label]), "{d}",
                 std::to_string(label));
}

}  // namespace

Collected collect_mnist(const PrepareOptions& options, bool fashion) {
  const std::string set = fashion ? "fashion-mnist" : "mnist";
  const fs::path source(options.source);
  const std::string prefix = options.split == "train" ? "train" : "t10k";
  fs::path image_path, label_path;
  const std::string images = read_idx_file(source, prefix, "images-idx3-ubyte", &image_path);
  const std::string labels = read_idx_file(source, prefix, "labels-idx1-ubyte", &label_path);
  const auto image_dims = idx_dims(images, 3, image_path);
  const auto label_dims = idx_dims(labels, 1, label_path);
  HALO_CHECK(image_dims[0] == label_dims[0], set, ": '", image_path.string(), "' has ",
             image_dims[0], " images but '", label_path.string(), "' has ", label_dims[0],
             " labels");

  Collected out;
  for (int c = 0; c < 10; ++c) out.classes.push_back(fashion ? kFashionNouns[c] : kDigitWords[c]);
  int64_t n = image_dims[0];
  if (options.limit > 0 && n > options.limit) n = options.limit;
  const int rows = static_cast<int>(image_dims[1]), cols = static_cast<int>(image_dims[2]);
  const size_t pixels = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const fs::path image_dir = fs::path(options.out) / "images";
  fs::create_directories(image_dir);

  Progress progress(set + " " + options.split, 5000, options.verbose);
  char name[64];
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<unsigned char>(labels[8 + static_cast<size_t>(i)]);
    HALO_CHECK(label < 10, set, ": '", label_path.string(), "' item ", i, " has label ", label,
               " (expected 0-9)");
    std::snprintf(name, sizeof name, "%s_%05lld.png", options.split.c_str(),
                  static_cast<long long>(i));
    const cv::Mat image(rows, cols, CV_8UC1,
                        const_cast<char*>(images.data() + 16 + static_cast<size_t>(i) * pixels));
    const std::string target = (image_dir / name).string();
    HALO_CHECK(cv::imwrite(target, image), set, ": cannot write '", target, "'");

    // The template depends on (seed, index) only, so --limit keeps the same captions.
    const uint64_t pick = splitmix64(options.seed ^ splitmix64(static_cast<uint64_t>(i)));
    ManifestRow row;
    row.image_path = std::string("images/") + name;
    row.caption = row.original_caption = caption_for(fashion, label, pick);
    row.label = label;
    out.rows.push_back(std::move(row));
    progress.tick();
  }
  return out;
}

}  // namespace halo::data
