// The data-set independent half of `prepare` (see prepare.h): option checks, the seeded
// mismatch injection, writing manifest.tsv and classes.txt, and the summary.
#include "data/prepare.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/shard_pattern.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void Collected::skip(const std::string& reason, int64_t count) {
  for (auto& entry : skipped) {
    if (entry.first == reason) {
      entry.second += count;
      return;
    }
  }
  skipped.emplace_back(reason, count);
}

const std::vector<std::pair<std::string, std::string>>& prepare_sets() {
  static const std::vector<std::pair<std::string, std::string>> sets{
      {"emoji-google", "emoji, Google art: emoji.json + img/google/64/*.png"},
      {"emoji-twitter", "emoji, Twitter art: emoji.json + img/twitter/64/*.png"},
      {"tuxpaint", "Tux Paint stamps: **/*.png, caption = first line of the .txt beside each"},
      {"mnist", "MNIST digits: IDX files, captions from templates"},
      {"fashion-mnist", "Fashion-MNIST: IDX files, captions from templates"},
      {"noise", "any manifest (TSV/CSV): its pairs, a seeded fraction of captions swapped"},
  };
  return sets;
}

void validate_prepare_options(const PrepareOptions& options, const std::string& set) {
  HALO_CHECK(std::isfinite(options.mismatch_fraction) && options.mismatch_fraction >= 0.0 &&
                 options.mismatch_fraction < 1.0,
             "--mismatch-fraction must be in [0, 1), got ", options.mismatch_fraction);
  HALO_CHECK(options.limit != 0, "--limit must be a positive number of pairs, got 0");
  HALO_CHECK(options.split == "train" || options.split == "test",
             "--split must be 'train' or 'test', got '", options.split, "'");
  if (set == "noise" && is_shard_source(options.source)) {
    existing_shards(options.source);
  } else if (set == "noise") {
    check_input_file(options.source, "--manifest");
  } else {
    HALO_CHECK(!options.source.empty(), "--source: no folder given");
    HALO_CHECK(fs::is_directory(options.source), "--source folder '", options.source,
               "' does not exist (fetch it with scripts/fetch_data.sh)");
  }
  HALO_CHECK(!options.out.empty(), "--out: no folder given");
  HALO_CHECK(!fs::exists(options.out) || fs::is_directory(options.out), "--out '", options.out,
             "' exists and is not a folder");
}

int64_t inject_mismatches(std::vector<ManifestRow>& rows, double fraction, uint64_t seed) {
  HALO_CHECK(std::isfinite(fraction) && fraction >= 0.0 && fraction < 1.0,
             "--mismatch-fraction must be in [0, 1), got ", fraction);
  const auto n = static_cast<int64_t>(rows.size());
  const int64_t k = std::llround(fraction * static_cast<double>(n));
  for (auto& row : rows) {
    row.caption = row.original_caption;
    row.mismatched = false;
  }
  if (k < 2) return 0;  // one chosen pair can only get its own caption back
  // The first k steps of a Fisher-Yates shuffle: a uniformly random ordered k-subset. Written
  // out (not std::shuffle) so that the choice is the same with every standard library.
  std::mt19937_64 rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i < k; ++i) {
    const auto j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  int64_t mismatched = 0;
  for (int64_t c = 0; c < k; ++c) {
    ManifestRow& row = rows[static_cast<size_t>(order[static_cast<size_t>(c)])];
    const ManifestRow& donor = rows[static_cast<size_t>(order[static_cast<size_t>((c + 1) % k)])];
    row.caption = donor.original_caption;
    row.mismatched = sanitize_caption(row.caption) != sanitize_caption(row.original_caption);
    mismatched += row.mismatched ? 1 : 0;
  }
  return mismatched;
}

PrepareReport prepare_dataset(const std::string& set, const PrepareOptions& options) {
  const double start = now_seconds();
  validate_prepare_options(options, set);
  if (set == "noise" && is_shard_source(options.source)) return prepare_noise_shards(options);
  fs::create_directories(options.out);

  Collected collected;
  if (set == "emoji-google") {
    collected = collect_emoji(options, "google");
  } else if (set == "emoji-twitter") {
    collected = collect_emoji(options, "twitter");
  } else if (set == "tuxpaint") {
    collected = collect_tuxpaint(options);
  } else if (set == "mnist" || set == "fashion-mnist") {
    collected = collect_mnist(options, set == "fashion-mnist");
  } else if (set == "noise") {
    collected = collect_manifest(options);
  } else {
    std::string known;
    for (const auto& entry : prepare_sets()) known += (known.empty() ? "" : ", ") + entry.first;
    HALO_FAIL("unknown data set '", set, "' (known: ", known, ")");
  }
  // Captions are sanitised once here, so that mismatch flags compare the text as written.
  std::vector<ManifestRow> kept;
  kept.reserve(collected.rows.size());
  for (auto& row : collected.rows) {
    row.original_caption = sanitize_caption(row.original_caption);
    row.caption = row.original_caption;
    if (row.original_caption.empty()) {
      collected.skip("empty caption");
    } else {
      kept.push_back(std::move(row));
    }
  }
  collected.rows = std::move(kept);
  HALO_CHECK(!collected.rows.empty(), "no image-caption pairs found in --source '", options.source,
             "' for ", set);
  if (options.limit > 0 && static_cast<int64_t>(collected.rows.size()) > options.limit) {
    collected.rows.resize(static_cast<size_t>(options.limit));  // collectors usually did this
  }

  PrepareReport report;
  report.mismatched = inject_mismatches(collected.rows, options.mismatch_fraction, options.seed);
  report.manifest_path = (fs::path(options.out) / "manifest.tsv").string();
  write_manifest(report.manifest_path, collected.rows);
  if (!collected.classes.empty()) {
    std::string text;
    for (const auto& name : collected.classes) text += name + "\n";
    write_file_atomically((fs::path(options.out) / "classes.txt").string(), text);
  }
  report.written = static_cast<int64_t>(collected.rows.size());
  report.skipped = collected.skipped;
  report.seconds = now_seconds() - start;

  if (options.verbose) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", report.seconds);
    std::cout << "prepare " << set << ": " << report.written << " pairs written to "
              << report.manifest_path << " in " << seconds << " s\n";
    if (report.skipped.empty()) std::cout << "  skipped: none\n";
    for (const auto& [reason, count] : report.skipped) {
      std::cout << "  skipped " << count << ": " << reason << "\n";
    }
    std::cout << "  mismatched: " << report.mismatched;
    if (options.mismatch_fraction > 0) {
      std::cout << " (--mismatch-fraction " << options.mismatch_fraction << ", --seed "
                << options.seed << "; swapped captions that are identical stay 0)";
    }
    std::cout << "\n";
    if (!collected.classes.empty()) {
      std::cout << "  classes: " << (fs::path(options.out) / "classes.txt").string() << " ("
                << collected.classes.size() << ")\n";
    }
  }
  return report;
}

void copy_image(const std::string& from, const std::string& to) {
  std::error_code ec;
  const fs::path target(to);
  if (fs::is_regular_file(target, ec) && fs::file_size(target, ec) == fs::file_size(from, ec) &&
      !ec) {
    return;
  }
  fs::create_directories(target.parent_path());
  fs::copy_file(from, target, fs::copy_options::overwrite_existing, ec);
  HALO_CHECK(!ec, "cannot copy '", from, "' to '", to, "': ", ec.message());
}

std::string lower_utf8(const std::string& text) {
  std::string out = text;
  for (size_t i = 0; i < out.size(); ++i) {
    auto c = static_cast<unsigned char>(out[i]);
    if (c >= 'A' && c <= 'Z') {
      out[i] = static_cast<char>(c - 'A' + 'a');
    } else if (c == 0xc3 && i + 1 < out.size()) {
      // U+00C0..U+00DE are C3 80..C3 9E; U+00D7 (multiplication sign) has no lower case.
      const auto next = static_cast<unsigned char>(out[i + 1]);
      if (next >= 0x80 && next <= 0x9e && next != 0x97) out[i + 1] = static_cast<char>(next + 0x20);
      ++i;
    }
  }
  return out;
}

Progress::Progress(std::string what, int64_t every, bool verbose)
    : what_(std::move(what)), every_(every), verbose_(verbose), start_(now_seconds()) {}

void Progress::tick() {
  ++count_;
  if (!verbose_ || count_ % every_ != 0) return;
  const double elapsed = now_seconds() - start_;
  std::cout << "  " << what_ << ": " << count_ << " images, "
            << static_cast<int64_t>(elapsed > 0 ? static_cast<double>(count_) / elapsed : 0.0)
            << " images/s\n"
            << std::flush;
}

}  // namespace halo::data
