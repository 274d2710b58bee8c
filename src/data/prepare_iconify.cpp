// prepare iconify: every visible icon and alias of the Iconify sets rendered with librsvg on a
// pool of threads and written straight into WebDataset shards (never a folder of files), one
// shard set per split. The icons are drawn in fixed-size blocks in parallel and each block is
// then written in icon order, so the shards do not depend on the thread count; at the end of a
// split its samples are shuffled across the split's shards with a fixed seed. Exact duplicates
// (same pixels) are collapsed within each split, and the training pool loses every image that
// an evaluation set also holds. docs/data.md ("The icon corpus (Iconify)") has the rules.
// In this file, in order: the request that prepared.json records; the evaluation sets whose
// images leave the pool (EvalSet); the Preparer, whose run() reads top to bottom: select_sets,
// check_existing_output, the evaluation sets hashed, survey, prepare_split per split (draw a
// block, dedup, write), the side files (ATTRIBUTION.md, sets.tsv, skipped.tsv), prepared.json.
// The shards themselves: ShuffledShardStream (shard_stream.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <opencv2/imgproc.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "data/iconify_set.h"
#include "data/image.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/shard_pattern.h"
#include "data/shard_stream.h"
#include "data/shard_writer.h"
#include "data/svg_render.h"
#include "data/tar_reader.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace iconify {
namespace {

// prepared.json's layout and the rules that make the output; 2: shards in a seeded random order
constexpr int kFormatVersion = 2;
constexpr int64_t kBlockSize = 512;  // icons drawn in parallel before a block is written
constexpr double kProgressSeconds = 5.0;
constexpr uint64_t kOrderSeed = 0x1c0f1e5;  // the order of the samples in each split's shards

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string padded(int64_t value, int width) {
  std::string text = std::to_string(value);
  if (static_cast<int>(text.size()) < width) {
    text.insert(0, static_cast<size_t>(width) - text.size(), '0');
  }
  return text;
}

std::string thousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (value < 0 ? "-" : "") + out;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return std::to_string(s / 3600) + "h" + padded((s % 3600) / 60, 2) + "m";
  if (s >= 60) return std::to_string(s / 60) + "m" + padded(s % 60, 2) + "s";
  return std::to_string(s) + "s";
}

// One TSV field: tabs and line breaks become spaces.
std::string tsv_cell(std::string text) {
  for (char& ch : text) {
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  }
  return text;
}

// Runs fn(worker, i) for i in [0, n) on `threads` threads (the caller is worker 0). The first
// exception stops the others and is rethrown.
void parallel_for(int threads, int64_t n, const std::function<void(int, int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](int worker) {
    try {
      for (int64_t i = next++; i < n; i = next++) fn(worker, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  const int count = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(n, 1)));
  std::vector<std::thread> pool;
  for (int w = 1; w < count; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// The inputs and settings that make an output: equal requests give equal bytes.
struct Request {
  std::string iconify_version;
  int size = 0;
  int64_t samples_per_shard = 0;
  std::vector<std::string> sets, decontaminate;
};

std::string json_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_quote(items[i]);
  return out + "]";
}

std::string request_json(const Request& r) {
  return "{\"version\": " + std::to_string(kFormatVersion) +
         ", \"iconify_version\": " + json_quote(r.iconify_version) +
         ", \"size\": " + std::to_string(r.size) +
         ", \"samples_per_shard\": " + std::to_string(r.samples_per_shard) +
         ",\n    \"sets\": " + json_strings(r.sets) +
         ",\n    \"decontaminate\": " + json_strings(r.decontaminate) + "}";
}

std::vector<std::string> string_list(const YAML::Node& node) {
  std::vector<std::string> out;
  if (node && node.IsSequence()) {
    for (const auto& item : node) out.push_back(item.Scalar());
  }
  return out;
}

// The settings in which the request of an existing prepared.json differs from `r`.
std::vector<std::string> request_differences(const YAML::Node& old, const Request& r) {
  std::vector<std::string> out;
  if (!old || !old.IsMap()) return {"prepared.json has no request"};
  auto text = [&](const char* key) {
    return old[key] && old[key].IsScalar() ? old[key].Scalar() : "";
  };
  if (text("version") != std::to_string(kFormatVersion)) out.push_back("format version");
  if (text("iconify_version") != r.iconify_version) out.push_back("@iconify/json version");
  if (text("size") != std::to_string(r.size)) out.push_back("--size");
  if (text("samples_per_shard") != std::to_string(r.samples_per_shard)) {
    out.push_back("--samples-per-shard");
  }
  if (string_list(old["sets"]) != r.sets) out.push_back("the sets");
  if (string_list(old["decontaminate"]) != r.decontaminate) out.push_back("--decontaminate");
  return out;
}

// Images by their pixels' hash, each with what it is (a uid "set:name", or an image of another
// set), for skipped.tsv.
using HashMap = std::unordered_map<Hash128, std::string, Hash128Hasher>;

// An evaluation set whose images leave the training pool.
struct EvalSet {
  std::string name;  // "emoji", "val" or the --decontaminate argument
  HashMap hashes;
};

// The 8-bit RGB image at the corpus size: as it is when it has that size, else resized with
// cv::INTER_AREA (the images of another set are compared the way the renders are).
cv::Mat at_size(const cv::Mat& rgb, int size) {
  if (rgb.rows == size && rgb.cols == size) return rgb;
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  return out;
}

EvalSet hash_external(const std::string& source, int size, int threads, bool verbose) {
  EvalSet set;
  set.name = source;
  std::vector<Hash128> hashes;
  std::vector<std::string> what;
  if (is_shard_source(source)) {
    for (const auto& shard : existing_shards(source)) {
      ShardReader reader(shard);
      ShardSample sample;
      while (reader.next(sample)) {
        HALO_CHECK(sample.image >= 0, "--decontaminate: ", sample.where(), " has no image");
        const cv::Mat rgb = decode_image_bytes(sample.image_bytes(), sample.where());
        hashes.push_back(hash_image(at_size(rgb, size)));
        what.push_back(shard + " " + sample.key);
      }
      HALO_CHECK(reader.error().empty(), "--decontaminate: ", reader.error());
    }
  } else {
    check_input_file(source, "--decontaminate manifest");
    ManifestOptions mo;
    const bool jsonl = source.size() > 6 && source.compare(source.size() - 6, 6, ".jsonl") == 0;
    const bool csv = source.size() > 4 && source.compare(source.size() - 4, 4, ".csv") == 0;
    if (csv) mo.separator = ',';
    const Manifest m = jsonl ? read_jsonl_manifest(source, mo) : read_manifest(source, mo);
    hashes.resize(static_cast<size_t>(m.size()));
    what = m.images;
    parallel_for(threads, m.size(), [&](int, int64_t i) {
      const auto r = static_cast<size_t>(i);
      hashes[r] = hash_image(at_size(decode_image(m.images[r]), size));
    });
  }
  for (size_t i = 0; i < hashes.size(); ++i) set.hashes.emplace(hashes[i], what[i]);
  if (verbose) {
    std::cout << "prepare iconify: --decontaminate " << source << ": "
              << thousands(static_cast<int64_t>(hashes.size())) << " images, "
              << thousands(static_cast<int64_t>(set.hashes.size())) << " distinct\n";
  }
  return set;
}

enum class Outcome : uint8_t { kOk, kBlank, kFailed };

// One icon's render, or where to find it: an icon whose document is byte-identical to an
// earlier one of the split is not drawn again (the same document gives the same pixels).
struct Rendered {
  Outcome outcome = Outcome::kOk;
  Hash128 pixels;
  std::string png, error;
};

bool is_flat(const cv::Mat& rgb) {
  const unsigned char* first = rgb.ptr<unsigned char>(0);
  for (int y = 0; y < rgb.rows; ++y) {
    const unsigned char* row = rgb.ptr<unsigned char>(y);
    for (int x = 0; x < rgb.cols * 3; ++x) {
      if (row[x] != first[x % 3]) return false;
    }
  }
  return true;
}

struct SetTally {
  int64_t candidates = 0, written = 0;
};

// Everything one run holds: the settings, the sets, the counts.
class Preparer {
 public:
  explicit Preparer(const IconifyOptions& options) : o_(options) {}
  IconifyReport run();

 private:
  void select_sets();
  bool check_existing_output(const Request& request);
  void survey();  // counts and emoji classes, before anything is drawn
  void prepare_split(Split split, IconifySplitCounts& counts);
  void write_side_files();
  void write_prepared_json(const Request& request) const;
  void progress(const std::string& set, bool force);
  IconifySplitCounts& counts_of(Split s) {
    return s == Split::kEmoji ? report_.emoji : s == Split::kVal ? report_.val : report_.train;
  }

  const IconifyOptions& o_;
  std::string source_;  // --source, or its package/ folder (an unpacked npm tarball)
  int threads_ = 1;
  std::string iconify_version_;
  std::vector<SetInfo> sets_;  // selected, in processing order (emoji, val, train)
  std::map<std::string, SetTally> tallies_;
  std::vector<EvalSet> eval_sets_;              // emoji, val, then --decontaminate
  std::map<std::string, int64_t> class_index_;  // class key -> label
  std::vector<std::string> classes_;
  std::vector<std::unique_ptr<SvgRenderer>> renderers_;
  std::unique_ptr<AtomicFile> skipped_;
  IconifyReport report_;
  int64_t total_ = 0, done_ = 0;
  double start_ = 0, last_progress_ = 0;
};

void Preparer::select_sets() {
  const fs::path source(source_);
  const auto all = read_collections((source / "collections.json").string());
  std::set<std::string> wanted(o_.sets.begin(), o_.sets.end());
  for (const auto& prefix : wanted) {
    const bool known =
        std::any_of(all.begin(), all.end(), [&](const SetInfo& s) { return s.prefix == prefix; });
    HALO_CHECK(known, "--sets: no set '", prefix, "' in '", (source / "collections.json").string(),
               "'");
  }
  for (Split split : {Split::kEmoji, Split::kVal, Split::kTrain}) {
    int64_t taken = 0;
    for (const auto& s : all) {
      if (s.split != split || (!wanted.empty() && wanted.count(s.prefix) == 0)) continue;
      if (o_.limit_sets > 0 && taken >= o_.limit_sets) break;
      HALO_CHECK(fs::is_regular_file(source / "json" / (s.prefix + ".json")), "iconify: set '",
                 s.prefix, "' of collections.json has no file '",
                 (source / "json" / (s.prefix + ".json")).string(), "'");
      sets_.push_back(s);
      ++taken;
    }
  }
  HALO_CHECK(!sets_.empty(), "iconify: no icon sets selected in '", source_, "'");
  const fs::path package = source / "package.json";
  if (fs::is_regular_file(package)) {
    try {
      const YAML::Node root = YAML::LoadFile(package.string());
      if (root["version"]) iconify_version_ = root["version"].Scalar();
    } catch (const YAML::Exception& e) {
      HALO_FAIL("iconify: cannot parse '", package.string(), "': ", e.what());
    }
  }
}

bool Preparer::check_existing_output(const Request& request) {
  const fs::path out(o_.out);
  const fs::path prepared = out / "prepared.json";
  if (fs::is_regular_file(prepared) && !o_.overwrite) {
    YAML::Node loaded;
    try {
      loaded = YAML::LoadFile(prepared.string());
    } catch (const YAML::Exception& e) {
      HALO_FAIL("iconify: '", prepared.string(), "' cannot be parsed (", e.what(),
                "): give --overwrite to prepare the corpus again");
    }
    const YAML::Node old = loaded;
    HALO_CHECK(
        old.IsMap() && old["splits"] && old["splits"].IsMap(), "iconify: '", prepared.string(),
        "' is not a prepared.json of this command: give --overwrite to prepare the corpus again");
    const auto differences = request_differences(old["request"], request);
    std::vector<std::string> missing;
    for (Split split : {Split::kEmoji, Split::kVal, Split::kTrain}) {
      const YAML::Node s = old["splits"][split_name(split)];
      int64_t shards = 0;
      try {
        if (s && s.IsMap() && s["shards"]) shards = s["shards"].as<int64_t>();
      } catch (const YAML::Exception&) {
        HALO_FAIL("iconify: '", prepared.string(), "': splits.", split_name(split),
                  ".shards is not a number");
      }
      const fs::path folder = out / split_name(split);
      if (shards > 0 && !fs::is_regular_file(folder / "sizes.json")) {
        missing.push_back((folder / "sizes.json").string());
      }
      for (int64_t k = 0; k < shards; ++k) {
        const fs::path shard = folder / shuffled_shard_name(k);
        if (!fs::is_regular_file(shard)) missing.push_back(shard.string());
      }
    }
    if (differences.empty() && missing.empty()) {
      if (o_.verbose) {
        std::cout << "prepare iconify: '" << o_.out
                  << "' already holds this corpus, complete (prepared.json, "
                  << "every shard and sizes.json); nothing to do (--overwrite prepares it again)\n";
      }
      return true;
    }
    std::string why;
    for (const auto& d : differences) why += (why.empty() ? "" : ", ") + d;
    if (!missing.empty()) {
      why += std::string(why.empty() ? "" : "; ") + "missing '" + missing.front() + "'" +
             (missing.size() > 1 ? " and " + std::to_string(missing.size() - 1) + " more" : "");
    }
    HALO_FAIL("iconify: '", o_.out, "' already holds a prepared corpus that differs (", why,
              "): choose another --out, or give --overwrite to replace it");
  }
  // A fresh start: what an earlier run left goes first, prepared.json before the shards so that
  // a crash never leaves a complete-looking mixture.
  if (o_.overwrite) fs::remove(prepared);
  for (Split split : {Split::kEmoji, Split::kVal, Split::kTrain}) {
    const fs::path folder = out / split_name(split);
    if (fs::exists(folder)) {
      std::vector<std::string> inputs;
      for (const auto& d : o_.decontaminate) {
        if (is_shard_source(d)) {
          for (const auto& shard : expand_shard_pattern(d)) inputs.push_back(shard);
        }
      }
      claim_shard_folder(folder.string(), o_.overwrite, inputs);
      fs::remove(folder / "classes.txt");
      fs::remove_all(folder / ShuffledShardStream::temporary_folder());
    }
  }
  if (o_.overwrite) {
    for (const char* name : {"ATTRIBUTION.md", "sets.tsv", "skipped.tsv"}) fs::remove(out / name);
  }
  return false;
}

void Preparer::survey() {
  struct Survey {
    int64_t candidates = 0, hidden = 0, animated = 0, broken = 0;
    std::map<std::string, int64_t> categories;  // emoji sets: icons per category
  };
  std::vector<Survey> surveys(sets_.size());
  parallel_for(threads_, static_cast<int64_t>(sets_.size()), [&](int, int64_t i) {
    const SetInfo& s = sets_[static_cast<size_t>(i)];
    const SetContent content = read_icon_set(
        (fs::path(source_) / "json" / (s.prefix + ".json")).string(), s.prefix, o_.size);
    Survey& v = surveys[static_cast<size_t>(i)];
    v.candidates = static_cast<int64_t>(content.icons.size());
    v.hidden = content.hidden;
    v.animated = static_cast<int64_t>(content.animated.size());
    v.broken = static_cast<int64_t>(content.broken.size());
    if (s.split == Split::kEmoji) {
      for (const auto& icon : content.icons) {
        if (!icon.category.empty()) ++v.categories[icon.category];
      }
    }
  });
  // Emoji classes: one per class key, named by its most used spelling (ties: the first in
  // byte order), sorted by name.
  std::map<std::string, std::map<std::string, int64_t>> spellings;
  for (size_t i = 0; i < sets_.size(); ++i) {
    IconifySplitCounts& c = counts_of(sets_[i].split);
    ++c.sets;
    c.hidden += surveys[i].hidden;
    c.animated += surveys[i].animated;
    c.broken_aliases += surveys[i].broken;
    tallies_[sets_[i].prefix].candidates = surveys[i].candidates;
    total_ += surveys[i].candidates;
    for (const auto& [category, n] : surveys[i].categories) {
      spellings[class_key(category)][category_text(category)] += n;
    }
  }
  std::vector<std::pair<std::string, std::string>> named;  // (name, key)
  for (const auto& [key, counts] : spellings) {
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    named.emplace_back(best->first, key);
  }
  std::sort(named.begin(), named.end());
  for (const auto& [name, key] : named) {
    class_index_[key] = static_cast<int64_t>(classes_.size());
    classes_.push_back(name);
  }
  report_.classes = static_cast<int64_t>(classes_.size());
  if (o_.verbose) {
    std::cout << "prepare iconify: " << sets_.size() << " sets (" << report_.emoji.sets
              << " emoji, " << report_.val.sets << " val, " << report_.train.sets << " train), "
              << thousands(total_) << " icons and aliases to draw ("
              << thousands(report_.emoji.hidden + report_.val.hidden + report_.train.hidden)
              << " hidden, "
              << thousands(report_.emoji.animated + report_.val.animated + report_.train.animated)
              << " animated and "
              << thousands(report_.emoji.broken_aliases + report_.val.broken_aliases +
                           report_.train.broken_aliases)
              << " broken aliases left out), " << classes_.size() << " emoji classes, " << threads_
              << " threads, " << o_.size << "x" << o_.size << " px\n";
  }
}

void Preparer::progress(const std::string& set, bool force) {
  const double now = seconds_now();
  if (!o_.verbose || (!force && now - last_progress_ < kProgressSeconds)) return;
  last_progress_ = now;
  const double elapsed = std::max(now - start_, 1e-9);
  const double rate = static_cast<double>(done_) / elapsed;
  const double left = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  char percent[16];
  std::snprintf(percent, sizeof percent, "%.1f",
                total_ > 0 ? 100.0 * static_cast<double>(done_) / total_ : 100.0);
  std::cout << "prepare iconify: " << thousands(done_) << " of " << thousands(total_) << " icons ("
            << percent << "%), set " << set << ", " << thousands(static_cast<int64_t>(rate + 0.5))
            << " icons/s, elapsed " << duration_text(now - start_) << ", ETA "
            << duration_text(left) << std::endl;
}

void Preparer::prepare_split(Split split, IconifySplitCounts& c) {
  const std::string split_folder = (fs::path(o_.out) / split_name(split)).string();
  ShuffledShardStream stream(split_folder, o_.samples_per_shard, kOrderSeed);
  HashMap seen;  // the split's images kept so far
  // Documents drawn in this split: its Rendered, or (while its block is drawn) the position of
  // the first icon with that document in `block`.
  struct Known {
    int64_t pending = -1;
    Outcome outcome = Outcome::kOk;
    Hash128 pixels;
  };
  std::unordered_map<Hash128, Known, Hash128Hasher> documents;
  std::vector<int64_t> removed_by(eval_sets_.size(), 0);
  const int key_width = 9;

  for (const SetInfo& info : sets_) {
    if (info.split != split) continue;
    const SetContent content = read_icon_set(
        (fs::path(source_) / "json" / (info.prefix + ".json")).string(), info.prefix, o_.size);
    SetTally& tally = tallies_[info.prefix];
    for (const auto& name : content.animated) {
      skipped_->out() << split_name(split) << '\t' << info.prefix << '\t' << name << "\tanimated\n";
    }
    for (const auto& name : content.broken) {
      skipped_->out() << split_name(split) << '\t' << info.prefix << '\t' << name
                      << "\talias whose chain reaches no icon\n";
    }
    const auto n = static_cast<int64_t>(content.icons.size());
    for (int64_t begin = 0; begin < n; begin += kBlockSize) {
      const int64_t end = std::min(n, begin + kBlockSize);
      const int64_t count = end - begin;
      std::vector<Rendered> block(static_cast<size_t>(count));
      // -1: drawn here; i >= 0: the document of icon i of this block; -2: of an earlier block.
      std::vector<int64_t> same_as(static_cast<size_t>(count), -1);
      std::vector<Known> earlier(static_cast<size_t>(count));
      std::vector<Hash128> doc_hash(static_cast<size_t>(count));
      std::vector<int64_t> to_draw;
      for (int64_t i = 0; i < count; ++i) {
        const auto k = static_cast<size_t>(i);
        doc_hash[k] = hash_bytes(content.icons[static_cast<size_t>(begin + i)].document);
        auto [it, added] = documents.try_emplace(doc_hash[k]);
        if (added) {
          it->second.pending = i;
          to_draw.push_back(i);
        } else if (it->second.pending >= 0) {
          same_as[k] = it->second.pending;
        } else {
          same_as[k] = -2;
          earlier[k] = it->second;
        }
      }
      parallel_for(threads_, static_cast<int64_t>(to_draw.size()), [&](int worker, int64_t j) {
        const int64_t i = to_draw[static_cast<size_t>(j)];
        Rendered& r = block[static_cast<size_t>(i)];
        cv::Mat rgb;
        if (!renderers_[static_cast<size_t>(worker)]->render(
                content.icons[static_cast<size_t>(begin + i)].document, rgb, r.error)) {
          r.outcome = Outcome::kFailed;
          return;
        }
        r.pixels = hash_image(rgb);
        if (is_flat(rgb)) {
          r.outcome = Outcome::kBlank;
          return;
        }
        r.png = encode_png(rgb);
      });
      for (int64_t i = 0; i < count; ++i) {
        const auto k = static_cast<size_t>(i);
        const Icon& icon = content.icons[static_cast<size_t>(begin + i)];
        Outcome outcome;
        Hash128 pixels;
        if (same_as[k] == -1) {
          outcome = block[k].outcome;
          pixels = block[k].pixels;
          Known& known = documents[doc_hash[k]];
          known.pending = -1;
          known.outcome = outcome;
          known.pixels = pixels;
        } else if (same_as[k] == -2) {
          outcome = earlier[k].outcome;
          pixels = earlier[k].pixels;
        } else {
          const Rendered& first = block[static_cast<size_t>(same_as[k])];
          outcome = first.outcome;
          pixels = first.pixels;
        }
        ++c.rendered;
        if (outcome != Outcome::kOk) {
          const bool failed = outcome == Outcome::kFailed;
          ++(failed ? c.failed : c.blank);
          std::string reason = "drawn as one flat colour";
          if (failed) {
            reason = "librsvg: " + (same_as[k] == -1 ? block[k].error
                                                     : "the same document as an icon that failed");
          }
          skipped_->out() << split_name(split) << '\t' << info.prefix << '\t' << icon.name << '\t'
                          << tsv_cell(reason) << '\n';
          continue;
        }
        ++c.before;
        const std::string uid = info.prefix + ":" + icon.name;
        std::string also_in;  // the evaluation sets that hold these pixels
        if (split == Split::kTrain) {
          for (size_t e = 0; e < eval_sets_.size(); ++e) {
            auto it = eval_sets_[e].hashes.find(pixels);
            if (it == eval_sets_[e].hashes.end()) continue;
            ++removed_by[e];
            also_in += (also_in.empty() ? "" : ", ") + eval_sets_[e].name + " (" + it->second + ")";
          }
        }
        if (!also_in.empty()) {
          ++c.removed;
          skipped_->out() << split_name(split) << '\t' << info.prefix << '\t' << icon.name
                          << "\talso in " << tsv_cell(also_in) << '\n';
          continue;
        }
        if (auto [it, added] = seen.emplace(pixels, uid); !added) {
          ++c.collapsed;
          skipped_->out() << split_name(split) << '\t' << info.prefix << '\t' << icon.name
                          << "\tduplicate of " << it->second << '\n';
          continue;
        }
        // Only the first icon of a document can be new: the others have its pixels.
        HALO_CHECK(same_as[k] == -1, "iconify: set '", info.prefix, "', icon '", icon.name,
                   "': a repeated document gave new pixels");
        const std::string key = padded(c.written, key_width);
        JsonObject json;
        json.add("key", key);
        json.add("uid", uid);
        json.add("set", info.prefix);
        json.add("name", icon.name);
        if (!icon.parent.empty()) json.add("parent", icon.parent);
        json.add("license", info.license_spdx);
        json.add("author", info.author);
        if (!icon.category.empty()) json.add("category", icon.category);
        if (split == Split::kEmoji && !icon.category.empty()) {
          json.add("label", class_index_.at(class_key(icon.category)));
        }
        ShardSample sample;
        sample.members = {TarMember{key + ".png", std::move(block[k].png)},
                          TarMember{key + ".txt", caption_for(icon.name, icon.category)},
                          TarMember{key + ".json", json.dump()}};
        stream.add(sample);
        ++c.written;
        ++tally.written;
      }
      done_ += count;
      progress(info.prefix, false);
    }
  }
  stream.finish();
  c.shards = stream.shards();
  if (split == Split::kTrain) {
    for (size_t e = 0; e < eval_sets_.size(); ++e) {
      c.removed_by.emplace_back(eval_sets_[e].name, removed_by[e]);
    }
  }
  if (split == Split::kEmoji && c.written > 0) {
    std::string text;
    for (const auto& name : classes_) text += name + "\n";
    write_file_atomically((fs::path(split_folder) / "classes.txt").string(), text);
  }
  if (c.written == 0 && fs::is_directory(split_folder) && fs::is_empty(split_folder)) {
    fs::remove(split_folder);
  }
  // The split's images are an evaluation set for the training pool.
  if (split == Split::kEmoji) {
    eval_sets_.insert(eval_sets_.begin(), EvalSet{"emoji", std::move(seen)});
  } else if (split == Split::kVal) {
    eval_sets_.insert(eval_sets_.begin() + 1, EvalSet{"val", std::move(seen)});
  }
}

std::string markdown_cell(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') {
      out += "\\|";
    } else if (ch == '\n' || ch == '\t' || ch == '\r') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

void Preparer::write_side_files() {
  const fs::path out(o_.out);
  std::string tsv =
      "prefix\tname\tauthor\tauthor_url\tlicense\tlicense_title\tlicense_"
      "url\tcategory\tpalette\tsplit\t"
      "icons\twritten\n";
  std::string md =
      "# Attribution\n\n"
      "The images of these shards are renderings of icons from the icon sets below, as distributed "
      "in the npm package @iconify/json" +
      (iconify_version_.empty() ? std::string() : " " + iconify_version_) +
      " (collected by the Iconify project, https://iconify.design). Each set keeps its own "
      "licence: "
      "the licence, author and source of every set used are listed here, and every sample's json "
      "names its set, licence and author. Sets under CC-BY licences require this attribution; "
      "renderings of CC-BY-SA sets are shared under the same licence.\n\n"
      "| prefix | set | author | licence | licence text | icons used | split |\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const SetInfo& s : sets_) {
    const SetTally& t = tallies_[s.prefix];
    tsv += tsv_cell(s.prefix) + '\t' + tsv_cell(s.name) + '\t' + tsv_cell(s.author) + '\t' +
           tsv_cell(s.author_url) + '\t' + tsv_cell(s.license_spdx) + '\t' +
           tsv_cell(s.license_title) + '\t' + tsv_cell(s.license_url) + '\t' +
           tsv_cell(s.category) + '\t' + (s.palette ? "1" : "0") + '\t' + split_name(s.split) +
           '\t' + std::to_string(t.candidates) + '\t' + std::to_string(t.written) + '\n';
    const std::string author = s.author_url.empty()
                                   ? markdown_cell(s.author)
                                   : "[" + markdown_cell(s.author) + "](" + s.author_url + ")";
    const std::string license =
        s.license_url.empty() ? markdown_cell(s.license_title)
                              : "[" + markdown_cell(s.license_title) + "](" + s.license_url + ")";
    md += "| " + markdown_cell(s.prefix) + " | " + markdown_cell(s.name) + " | " + author + " | " +
          markdown_cell(s.license_spdx) + " | " + license + " | " + std::to_string(t.written) +
          " | " + split_name(s.split) + " |\n";
  }
  write_file_atomically((out / "sets.tsv").string(), tsv);
  write_file_atomically((out / "ATTRIBUTION.md").string(), md);
}

std::string counts_json(const IconifySplitCounts& c, const std::string& pattern) {
  std::string out =
      "{\"sets\": " + std::to_string(c.sets) + ", \"hidden\": " + std::to_string(c.hidden) +
      ", \"animated\": " + std::to_string(c.animated) +
      ", \"broken_aliases\": " + std::to_string(c.broken_aliases) +
      ", \"rendered\": " + std::to_string(c.rendered) +
      ", \"failed\": " + std::to_string(c.failed) + ", \"blank\": " + std::to_string(c.blank) +
      ",\n      \"before\": " + std::to_string(c.before) +
      ", \"collapsed\": " + std::to_string(c.collapsed) +
      ", \"removed\": " + std::to_string(c.removed);
  if (!c.removed_by.empty()) {
    out += ", \"removed_by\": {";
    for (size_t i = 0; i < c.removed_by.size(); ++i) {
      out += (i ? ", " : "") + json_quote(c.removed_by[i].first) + ": " +
             std::to_string(c.removed_by[i].second);
    }
    out += "}";
  }
  out += ", \"written\": " + std::to_string(c.written) +
         ", \"shards\": " + std::to_string(c.shards) + ", \"pattern\": " + json_quote(pattern) +
         "}";
  return out;
}

std::string split_pattern(const std::string& split, int64_t shards) {
  if (shards == 0) return "";
  return split + "/{" + padded(0, 5) + ".." + padded(shards - 1, 5) + "}.tar";
}

void Preparer::write_prepared_json(const Request& request) const {
  std::string text = "{\n  \"request\": " + request_json(request) + ",\n  \"splits\": {\n";
  const std::pair<const char*, const IconifySplitCounts*> splits[] = {
      {"emoji", &report_.emoji}, {"val", &report_.val}, {"train", &report_.train}};
  for (size_t i = 0; i < 3; ++i) {
    text +=
        std::string("    ") + json_quote(splits[i].first) + ": " +
        counts_json(*splits[i].second, split_pattern(splits[i].first, splits[i].second->shards)) +
        (i < 2 ? ",\n" : "\n");
  }
  text += "  },\n  \"classes\": " + std::to_string(report_.classes) +
          ",\n  \"held_out_sets\": " + json_strings(held_out_sets()) + "\n}\n";
  write_file_atomically((fs::path(o_.out) / "prepared.json").string(), text);
}

IconifyReport Preparer::run() {
  const double started = seconds_now();
  HALO_CHECK(!o_.source.empty(), "--source: no folder given");
  HALO_CHECK(fs::is_directory(o_.source), "--source folder '", o_.source,
             "' does not exist (fetch it with scripts/fetch_data.sh --only iconify)");
  HALO_CHECK(!o_.out.empty(), "--out: no folder given");
  HALO_CHECK(!fs::exists(o_.out) || fs::is_directory(o_.out), "--out '", o_.out,
             "' exists and is not a folder");
  HALO_CHECK(o_.size >= 8 && o_.size <= 1024, "--size must be in [8, 1024] pixels, got ", o_.size);
  HALO_CHECK(o_.threads >= 0, "--threads must be >= 1, got ", o_.threads);
  HALO_CHECK(o_.samples_per_shard >= 1, "--samples-per-shard must be >= 1, got ",
             o_.samples_per_shard);
  HALO_CHECK(o_.limit_sets == -1 || o_.limit_sets >= 1, "--limit-sets must be >= 1, got ",
             o_.limit_sets);
  HALO_CHECK(o_.limit_sets == -1 || o_.sets.empty(),
             "--limit-sets and --sets exclude each other: give one");
  threads_ = o_.threads > 0 ? o_.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  source_ = o_.source;
  if (!fs::exists(fs::path(source_) / "collections.json") &&
      fs::exists(fs::path(source_) / "package" / "collections.json")) {
    source_ = (fs::path(source_) / "package").string();
  }

  select_sets();
  Request request;
  request.iconify_version = iconify_version_;
  request.size = o_.size;
  request.samples_per_shard = o_.samples_per_shard;
  for (const auto& s : sets_) request.sets.push_back(s.prefix);
  request.decontaminate = o_.decontaminate;
  if (check_existing_output(request)) {
    report_.already_complete = true;
    return report_;
  }
  fs::create_directories(o_.out);

  for (const auto& source : o_.decontaminate) {
    eval_sets_.push_back(hash_external(source, o_.size, threads_, o_.verbose));
  }
  survey();
  for (int t = 0; t < threads_; ++t) renderers_.push_back(std::make_unique<SvgRenderer>(o_.size));
  skipped_ = std::make_unique<AtomicFile>((fs::path(o_.out) / "skipped.tsv").string());
  skipped_->out() << "split\tset\tname\treason\n";
  start_ = last_progress_ = seconds_now();
  for (Split split : {Split::kEmoji, Split::kVal, Split::kTrain}) {
    prepare_split(split, counts_of(split));
  }
  progress("(done)", true);
  skipped_->commit();
  write_side_files();
  write_prepared_json(request);  // last: its presence says the corpus is complete
  report_.seconds = seconds_now() - started;

  if (o_.verbose) {
    for (Split split : {Split::kEmoji, Split::kVal, Split::kTrain}) {
      const IconifySplitCounts& c = counts_of(split);
      std::cout << "prepare iconify: " << split_name(split) << ": " << c.sets << " sets, "
                << thousands(c.rendered) << " drawn, " << thousands(c.failed) << " failed, "
                << thousands(c.blank) << " blank; " << thousands(c.before) << " before, "
                << thousands(c.collapsed) << " duplicates collapsed";
      if (split == Split::kTrain) {
        std::cout << ", " << thousands(c.removed) << " removed as evaluation images (";
        for (size_t i = 0; i < c.removed_by.size(); ++i) {
          std::cout << (i ? ", " : "") << c.removed_by[i].first << ": "
                    << thousands(c.removed_by[i].second);
        }
        std::cout << ")";
      }
      std::cout << ", " << thousands(c.written) << " after, in " << c.shards << " shard(s)";
      if (c.shards > 0) {
        std::cout << ": "
                  << (fs::path(o_.out) / split_pattern(split_name(split), c.shards)).string();
      }
      std::cout << "\n";
    }
    std::cout << "prepare iconify: " << report_.classes
              << " emoji classes; ATTRIBUTION.md, sets.tsv, skipped.tsv and "
              << "prepared.json in " << o_.out << " (" << duration_text(report_.seconds) << ")\n";
  }
  return report_;
}

}  // namespace
}  // namespace iconify

IconifyReport prepare_iconify(const IconifyOptions& options) {
  iconify::Preparer preparer(options);
  return preparer.run();
}

}  // namespace halo::data
