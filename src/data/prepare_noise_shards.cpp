// prepare noise on a shard set: the seeded caption swaps of inject_mismatches() (as for a
// manifest), written as a new shard set under the same shard names. Every member keeps its name
// and bytes except each sample's .txt (the caption it now carries) and .json (its fields kept,
// `mismatched` and `original_caption` set; created when the sample had none). Two passes: the
// captions (images skipped), then the copy; sizes.json last. Unusable samples are left out and
// counted.
#include <filesystem>
#include <iostream>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/json.h"
#include "data/prepare.h"
#include "data/shard_pattern.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace {

// A JSON value as yaml-cpp read it, written back: quoted scalars as strings, plain ones
// (numbers, true, false, null) as they were.
void append_json(const YAML::Node& node, std::string& out) {
  if (node.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& kv : node) {
      out += first ? "" : ", ";
      first = false;
      out += json_quote(kv.first.Scalar()) + ": ";
      append_json(kv.second, out);
    }
    out += '}';
  } else if (node.IsSequence()) {
    out += '[';
    for (size_t i = 0; i < node.size(); ++i) {
      out += i ? ", " : "";
      append_json(node[i], out);
    }
    out += ']';
  } else if (node.IsScalar()) {
    out += node.Tag() == "!" ? json_quote(node.Scalar()) : node.Scalar();
  } else {
    out += "null";
  }
}

// The sample's json with the ground truth of the swap.
std::string noisy_json(const ShardSample& s, bool mismatched, const std::string& original_caption) {
  std::string out = "{";
  if (s.json >= 0) {
    const YAML::Node node =
        YAML::Load(s.members[static_cast<size_t>(s.json)].data);  // valid: the sample is usable
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (key == "mismatched" || key == "original_caption") continue;
      out += json_quote(key) + ": ";
      append_json(kv.second, out);
      out += ", ";
    }
  }
  return out + "\"mismatched\": " + (mismatched ? "1" : "0") +
         ", \"original_caption\": " + json_quote(original_caption) + "}";
}

}  // namespace

PrepareReport prepare_noise_shards(const PrepareOptions& options) {
  const std::vector<std::string> shards = existing_shards(options.source);
  fs::create_directories(options.out);
  for (const auto& shard : shards) {
    HALO_CHECK(!fs::exists(fs::path(options.out) / fs::path(shard).filename()) ||
                   !fs::equivalent(fs::path(options.out) / fs::path(shard).filename(), shard),
               "--out '", options.out, "' would overwrite the input shard '", shard,
               "': choose another folder");
  }
  claim_shard_folder(options.out, options.overwrite, shards);
  // Pass 1: the usable samples' captions, in shard order.
  Collected collected;
  std::vector<ManifestRow>& rows = collected.rows;
  for (const auto& shard : shards) {
    ShardReader reader(shard, /*read_images=*/false);
    ShardSample s;
    while (reader.next(s)) {
      if (!s.usable()) {
        collected.skip("unusable sample (" + s.problem + ")");
        continue;
      }
      ManifestRow row;
      row.image_path = s.key;
      row.original_caption = s.caption_text();
      rows.push_back(std::move(row));
    }
    HALO_CHECK(reader.error().empty(), reader.error());
  }
  HALO_CHECK(!rows.empty(), "no usable sample in --manifest '", options.source, "'");
  PrepareReport report;
  report.mismatched = inject_mismatches(rows, options.mismatch_fraction, options.seed);

  // Pass 2: the copy, with the new captions and json.
  std::vector<std::pair<std::string, int64_t>> sizes;
  size_t next = 0;
  for (const auto& shard : shards) {
    const std::string name = fs::path(shard).filename().string();
    ShardWriter writer((fs::path(options.out) / name).string());
    ShardReader reader(shard);
    ShardSample s;
    while (reader.next(s)) {
      if (!s.usable()) continue;
      const ManifestRow& row = rows.at(next++);
      HALO_CHECK(row.image_path == s.key, "shard '", shard, "' changed while it was read (sample '",
                 s.key, "')");
      std::string json = noisy_json(s, row.mismatched, row.original_caption);
      TarMember& caption = s.members.at(static_cast<size_t>(s.caption));
      caption.data = row.caption;
      if (s.json >= 0) {
        s.members[static_cast<size_t>(s.json)].data = std::move(json);
      } else {
        s.members.emplace_back(s.key + ".json", std::move(json), caption.mtime, caption.mode);
      }
      writer.add(s);
    }
    HALO_CHECK(reader.error().empty(), reader.error());
    sizes.emplace_back(name, writer.samples());
    writer.finish();
  }
  write_shard_sizes(options.out, sizes);
  report.manifest_path = shard_pattern_in(options.source, options.out);
  report.written = static_cast<int64_t>(rows.size());
  report.skipped = collected.skipped;
  if (options.verbose) {
    std::cout << "prepare noise: " << report.written << " samples in " << shards.size()
              << " shard(s): " << report.manifest_path << "\n  mismatched: " << report.mismatched
              << " (--fraction " << options.mismatch_fraction << ", --seed " << options.seed
              << ")\n";
    for (const auto& [reason, count] : report.skipped)
      std::cout << "  skipped " << count << ": " << reason << "\n";
  }
  return report;
}

}  // namespace halo::data
