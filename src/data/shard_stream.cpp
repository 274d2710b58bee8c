// The shuffled, balanced shard stream of one split (shard_stream.h).
#include "data/shard_stream.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>

#include "common/error.h"
#include "data/tar_reader.h"

namespace halo::data {

namespace fs = std::filesystem;

std::string shuffled_shard_name(int64_t index) {
  std::string digits = std::to_string(index);
  if (digits.size() < 5) digits.insert(0, 5 - digits.size(), '0');
  return digits + ".tar";
}

ShuffledShardStream::ShuffledShardStream(std::string folder, int64_t samples_per_shard,
                                         uint64_t seed)
    : folder_(std::move(folder)), per_shard_(samples_per_shard), seed_(seed) {}

void ShuffledShardStream::add(const ShardSample& sample) {
  if (!writer_) {
    fs::create_directories(folder_);
    const std::string name = shuffled_shard_name(static_cast<int64_t>(sizes_.size()));
    writer_ = std::make_unique<ShardWriter>((fs::path(folder_) / name).string());
    sizes_.emplace_back(name, 0);
  }
  writer_->add(sample);
  ++total_;
  if (++sizes_.back().second == per_shard_) close_shard();
}

void ShuffledShardStream::finish() {
  close_shard();
  if (total_ > 0) shuffle_and_balance();
  if (!sizes_.empty()) write_shard_sizes(folder_, sizes_);
}

void ShuffledShardStream::close_shard() {
  if (writer_) writer_->finish();
  writer_.reset();
}

// Two passes holding one shard in memory: every sample is dealt to the output shard of its
// position in the permutation, then each output shard is put in the permutation's order.
void ShuffledShardStream::shuffle_and_balance() {
  const fs::path folder(folder_), temporary = folder / temporary_folder();
  fs::remove_all(temporary);
  fs::create_directories(temporary);
  const auto count = static_cast<int64_t>(sizes_.size());
  std::vector<int64_t> position(static_cast<size_t>(total_));
  std::iota(position.begin(), position.end(), int64_t{0});
  std::shuffle(position.begin(), position.end(), std::mt19937_64(seed_));
  // Output shard s holds the positions [floor(s N / count), floor((s + 1) N / count)).
  const auto shard_of = [&](int64_t p) { return ((p + 1) * count - 1) / total_; };
  const auto dealt_path = [&](int64_t s) {
    return temporary / ("dealt-" + shuffled_shard_name(s));
  };

  std::vector<std::unique_ptr<ShardWriter>> dealt;
  std::vector<std::vector<int64_t>> positions(static_cast<size_t>(count));
  for (int64_t s = 0; s < count; ++s) {
    dealt.push_back(std::make_unique<ShardWriter>(dealt_path(s).string()));
  }
  int64_t index = 0;
  for (const auto& [name, n] : sizes_) {
    ShardReader reader((folder / name).string());
    ShardSample sample;
    while (reader.next(sample)) {
      HALO_CHECK(sample.usable(), "iconify: rewriting ", sample.where(), ": ", sample.problem);
      HALO_CHECK(index < total_, "iconify: rewriting '", folder_, "': more than the ", total_,
                 " samples written");
      const int64_t p = position[static_cast<size_t>(index++)];
      const auto s = static_cast<size_t>(shard_of(p));
      dealt[s]->add(sample);
      positions[s].push_back(p);
    }
    HALO_CHECK(reader.error().empty(), "iconify: rewriting shards: ", reader.error());
  }
  HALO_CHECK(index == total_, "iconify: rewriting '", folder_, "': read ", index, " of ", total_,
             " samples");
  for (auto& writer : dealt) writer->finish();

  std::vector<std::pair<std::string, int64_t>> sizes;
  for (int64_t s = 0; s < count; ++s) {
    const auto& wanted = positions[static_cast<size_t>(s)];
    std::vector<ShardSample> samples;
    {
      ShardReader reader(dealt_path(s).string());
      for (ShardSample sample; reader.next(sample); sample = ShardSample{}) {
        samples.push_back(std::move(sample));
      }
      HALO_CHECK(reader.error().empty() && samples.size() == wanted.size(), "iconify: rewriting '",
                 dealt_path(s).string(), "': read ", samples.size(), " of ", wanted.size(),
                 " samples ", reader.error());
    }
    std::vector<size_t> order(samples.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return wanted[a] < wanted[b]; });
    ShardWriter out((temporary / shuffled_shard_name(s)).string());
    for (size_t i : order) out.add(samples[i]);
    out.finish();
    fs::remove(dealt_path(s));
    sizes.emplace_back(shuffled_shard_name(s), static_cast<int64_t>(samples.size()));
  }
  for (const auto& [name, n] : sizes_) fs::remove(folder / name);
  for (const auto& [name, n] : sizes) fs::rename(temporary / name, folder / name);
  fs::remove(temporary);
  sizes_ = std::move(sizes);
}

}  // namespace halo::data
