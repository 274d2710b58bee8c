// Writing a manifest as shards (see manifest_to_shards.h).
#include "data/manifest_to_shards.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "data/shard_writer.h"

namespace fs = std::filesystem;

namespace halo::data {

namespace {

std::string zero_padded(int64_t value, int width) {
  std::string text = std::to_string(value);
  if (static_cast<int>(text.size()) < width)
    text.insert(0, static_cast<size_t>(width) - text.size(), '0');
  return text;
}

std::string file_bytes(const std::string& path, const std::string& where) {
  std::ifstream in(path, std::ios::binary);
  HALO_CHECK(in.good(), where, ": image '", path, "' cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

ManifestToShardsReport write_manifest_as_shards(const Manifest& m,
                                                const ManifestToShardsOptions& o) {
  HALO_CHECK(o.samples_per_shard >= 1, "--samples-per-shard must be >= 1, got ",
             o.samples_per_shard);
  HALO_CHECK(m.size() > 0, "manifest '", m.path, "' has no rows to write as shards");
  std::vector<std::string> inputs = m.images;
  inputs.push_back(m.path);
  claim_shard_folder(o.out, o.overwrite, inputs);
  const int64_t n = m.size();
  const int64_t count = (n + o.samples_per_shard - 1) / o.samples_per_shard;
  const int key_width = std::max<int>(9, static_cast<int>(std::to_string(n - 1).size()));
  std::vector<std::pair<std::string, int64_t>> sizes;
  for (int64_t s = 0; s < count; ++s) {
    const int64_t begin = s * n / count,
                  end = (s + 1) * n / count;  // balanced: sizes differ by <= 1
    const std::string name = zero_padded(s, 5) + ".tar";
    ShardWriter writer((fs::path(o.out) / name).string());
    for (int64_t row = begin; row < end; ++row) {
      const auto r = static_cast<size_t>(row);
      const std::string where =
          m.path + (r < m.lines.size() ? ":" + std::to_string(m.lines[r]) : std::string());
      std::string extension = fs::path(m.images[r]).extension().string();
      for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      HALO_CHECK(extension == ".jpg" || extension == ".jpeg" || extension == ".png" ||
                     extension == ".webp",
                 where, ": image '", m.images[r],
                 "' is not a .jpg, .jpeg, .png or .webp file (shards keep the original bytes)");
      HALO_CHECK(fs::is_regular_file(m.images[r]), where, ": image not found: '", m.images[r], "'");
      const std::string key = zero_padded(row, key_width);
      JsonObject json;
      json.add("key", key);
      if (!m.mismatched.empty()) json.add("mismatched", static_cast<int64_t>(m.mismatched[r]));
      if (!m.labels.empty()) json.add("label", m.labels[r]);
      if (r < m.lines.size()) json.add("manifest_line", m.lines[r]);
      ShardSample sample;
      sample.members = {TarMember{key + extension, file_bytes(m.images[r], where)},
                        TarMember{key + ".txt", m.captions[r]},
                        TarMember{key + ".json", json.dump()}};
      writer.add(sample);
    }
    writer.finish();
    sizes.emplace_back(name, end - begin);
    if (o.verbose && (s + 1) % 10 == 0)
      std::cout << "prepare shards: " << s + 1 << " of " << count << " shards\n";
  }
  write_shard_sizes(o.out, sizes);  // last: its presence says the set is complete
  ManifestToShardsReport report;
  report.shards = count;
  report.samples = n;
  report.pattern =
      (fs::path(o.out) / ("{" + zero_padded(0, 5) + ".." + zero_padded(count - 1, 5) + "}.tar"))
          .string();
  if (o.verbose) {
    std::cout << "prepare shards: " << n << " samples in " << count
              << " shards (sizes.json beside them): " << report.pattern << "\n";
  }
  return report;
}

}  // namespace halo::data
