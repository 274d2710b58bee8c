// bench_shards: the shard data path. `throughput` decodes the same images from files (a
// manifest) and from shards (written from it) and prints images/s per worker thread; `make`
// writes a synthetic shard set of N samples by repeating a manifest's images under new keys;
// `read` streams a shard set through the training loader and prints the time to the first
// batch, images/s and the process's peak resident memory (run one process per size to see
// that memory does not grow with the number of samples).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include <torch/torch.h>

#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/manifest_to_shards.h"
#include "data/shard_loader.h"
#include "data/shard_plan.h"
#include "data/shard_writer.h"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Peak resident set size of this process (VmHWM), MiB.
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

// Decoding and augmentation only: every caption becomes the same token row.
halo::data::TextEncoder constant_tokens() {
  return [](const std::vector<std::string>& captions) {
    return torch::ones({static_cast<int64_t>(captions.size()), 16}, torch::kLong);
  };
}

halo::data::LoaderOptions training_loader(int64_t batch, int64_t workers, int64_t image_size) {
  halo::data::LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.prefetch_batches = 4;
  o.transform.size = image_size;
  o.transform.random_resized_crop = true;
  return o;
}

// Images per second over one epoch of `source` (the first batch, which includes start-up, not
// counted); the median of `epochs` epochs.
double images_per_second(halo::data::BatchSource& source, int64_t epochs) {
  std::vector<double> rates;
  for (int64_t e = 0; e < epochs; ++e) {
    source.start_epoch(e, 0);
    auto first = source.next();
    HALO_CHECK(first.has_value(), "no batch");
    int64_t images = 0;
    const auto start = Clock::now();
    while (auto b = source.next()) images += b->images.size(0);
    rates.push_back(static_cast<double>(images) / seconds_since(start));
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

int throughput(const std::vector<std::string>& argv) {
  halo::ArgParser args(
      "bench_shards throughput",
      "Images/s per worker thread decoding the same images from files and from shards.");
  args.required("manifest", "FILE", "image-caption manifest (its images are read as files)")
      .required("work", "DIR",
                "scratch folder: the manifest is written as shards in DIR/shards once")
      .option("workers", "N", "loader worker threads", "1")
      .option("batch", "N", "batch size", "64")
      .option("image-size", "S", "output image size (random resized crop)", "64")
      .option("epochs", "N", "epochs timed per source (the median is printed)", "5");
  if (!args.parse(argv)) return 0;
  const int64_t workers = args.integer("workers"), batch = args.integer("batch"),
                size = args.integer("image-size");
  const int64_t epochs = args.integer("epochs");
  HALO_CHECK(epochs >= 1, "--epochs must be >= 1");
  auto manifest =
      std::make_shared<halo::data::Manifest>(halo::data::read_manifest(args.str("manifest"), {}));
  const fs::path shards_dir = fs::path(args.str("work")) / "shards";
  // One shard per worker and batch-sized shards' worth of samples, so both sources give every
  // image.
  halo::data::ManifestToShardsOptions so;
  so.out = shards_dir.string();
  so.samples_per_shard = (manifest->size() + workers - 1) / workers;
  so.verbose = false;
  const std::string pattern = halo::data::write_manifest_as_shards(*manifest, so).pattern;
  auto set = std::make_shared<halo::data::ShardSet>(halo::data::open_shard_set(pattern));
  halo::data::BatchLoader files(manifest, constant_tokens(), training_loader(batch, workers, size));
  halo::data::ShardLoader shards(set, constant_tokens(), training_loader(batch, workers, size),
                                 1000);
  const double f = images_per_second(files, epochs), s = images_per_second(shards, epochs);
  std::printf(
      "data path, %lld images (%s), batch %lld, %lldx%lld random resized crop, %lld worker(s), "
      "median of %lld epochs:\n",
      static_cast<long long>(manifest->size()), args.str("manifest").c_str(),
      static_cast<long long>(batch), static_cast<long long>(size), static_cast<long long>(size),
      static_cast<long long>(workers), static_cast<long long>(epochs));
  std::printf("  files : %8.0f images/s, %8.0f per worker\n", f, f / static_cast<double>(workers));
  std::printf("  shards: %8.0f images/s, %8.0f per worker (%lld shards)\n", s,
              s / static_cast<double>(workers), static_cast<long long>(set->shards.size()));
  return 0;
}

int make(const std::vector<std::string>& argv) {
  halo::ArgParser args(
      "bench_shards make",
      "A synthetic shard set: a manifest's images and captions repeated under new keys.");
  args.required("manifest", "FILE", "image-caption manifest (.png/.jpg images)")
      .required("out", "DIR", "output folder (shards and sizes.json)")
      .required("samples", "N", "samples in the set")
      .option("samples-per-shard", "N", "samples per shard", "10000");
  if (!args.parse(argv)) return 0;
  const auto m = halo::data::read_manifest(args.str("manifest"), {});
  const int64_t n = args.integer("samples"), per = args.integer("samples-per-shard");
  HALO_CHECK(n >= 1 && per >= 1, "--samples and --samples-per-shard must be >= 1");
  std::vector<std::string> bytes;
  for (const auto& image : m.images) {
    std::ifstream in(image, std::ios::binary);
    bytes.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  fs::create_directories(args.str("out"));
  std::vector<std::pair<std::string, int64_t>> sizes;
  const auto start = Clock::now();
  for (int64_t first = 0, s = 0; first < n; first += per, ++s) {
    char name[32];
    std::snprintf(name, sizeof name, "%05lld.tar", static_cast<long long>(s));
    halo::data::ShardWriter writer((fs::path(args.str("out")) / name).string());
    const int64_t end = std::min(n, first + per);
    for (int64_t i = first; i < end; ++i) {
      char key[32];
      std::snprintf(key, sizeof key, "%09lld", static_cast<long long>(i));
      const auto r = static_cast<size_t>(i % m.size());
      halo::data::ShardSample sample;
      sample.members = {{std::string(key) + fs::path(m.images[r]).extension().string(), bytes[r]},
                        {std::string(key) + ".txt", m.captions[r]}};
      writer.add(sample);
    }
    writer.finish();
    sizes.emplace_back(name, end - first);
  }
  halo::data::write_shard_sizes(args.str("out"), sizes);
  std::printf("wrote %lld samples in %zu shards to %s in %.1f s\n", static_cast<long long>(n),
              sizes.size(), args.str("out").c_str(), seconds_since(start));
  return 0;
}

int read_set(const std::vector<std::string>& argv) {
  halo::ArgParser args("bench_shards read",
                       "Streams a shard set through the training loader: time to the first batch, "
                       "images/s, peak RSS.");
  args.required("shards", "PATTERN", "the shard set (a brace pattern)")
      .option("workers", "N", "loader worker threads", "2")
      .option("batch", "N", "batch size", "256")
      .option("image-size", "S", "output image size", "64")
      .option("shuffle-buffer", "N", "samples each worker holds for mixing", "1000")
      .option("batches", "N", "batches to read (default: the whole epoch)");
  if (!args.parse(argv)) return 0;
  const double rss_start = peak_rss_mib();
  const auto start = Clock::now();
  auto set = std::make_shared<halo::data::ShardSet>(halo::data::open_shard_set(args.str("shards")));
  halo::data::LoaderOptions o =
      training_loader(args.integer("batch"), args.integer("workers"), args.integer("image-size"));
  halo::data::ShardLoader loader(set, constant_tokens(), o, args.integer("shuffle-buffer"));
  loader.start_epoch(0, 0);
  auto first = loader.next();
  HALO_CHECK(first.has_value(), "no batch");
  const double to_first = seconds_since(start);
  const int64_t limit = args.has("batches") ? args.integer("batches") : loader.batches_per_epoch();
  int64_t images = first->images.size(0), batches = 1;
  const auto timed = Clock::now();
  while (batches < limit) {
    auto b = loader.next();
    if (!b) break;
    images += b->images.size(0);
    ++batches;
  }
  const double seconds = seconds_since(timed);
  std::printf(
      "%lld samples in %zu shards (%lld counted), %lld worker(s), batch %lld, shuffle buffer "
      "%lld:\n",
      static_cast<long long>(set->total), set->shards.size(), static_cast<long long>(set->counted),
      static_cast<long long>(o.workers), static_cast<long long>(o.batch_size),
      static_cast<long long>(args.integer("shuffle-buffer")));
  std::printf(
      "  first batch after %.2f s; %lld batches, %lld images, %.0f images/s; peak RSS %.0f MiB "
      "(%.0f MiB at start)\n",
      to_first, static_cast<long long>(batches), static_cast<long long>(images),
      static_cast<double>(images - first->images.size(0)) / std::max(seconds, 1e-9), peak_rss_mib(),
      rss_start);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::vector<std::string> rest(argc > 2 ? argv + 2 : argv + argc, argv + argc);
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    halo::configure_cpu_threads();
    if (command == "throughput") return throughput(rest);
    if (command == "make") return make(rest);
    if (command == "read") return read_set(rest);
    std::cout
        << "usage: bench_shards throughput|make|read [flags]   (bench_shards COMMAND --help)\n";
    return command == "--help" || command == "-h" ? 0 : 2;
  } catch (const halo::Error& e) {
    std::cerr << "error: " << e.message() << "\n";
    return 1;
  }
}
