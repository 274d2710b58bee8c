// Writing WebDataset shards: members are appended as given (names and bytes unchanged) to a
// tar file that appears at its path only when finished (temporary file, then rename), so a
// crash never leaves a half-written shard. Used by `prepare shards`, `prepare noise` and `filter`.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/tar_reader.h"

struct archive;

namespace halo::data {

class ShardWriter {
 public:
  explicit ShardWriter(std::string path);
  ~ShardWriter();  // without finish(): nothing appears at the path
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add(const TarMember& member);
  void add(const ShardSample& sample);  // every member of the sample, in order
  // Closes the tar and renames it into place.
  void finish();
  int64_t samples() const { return samples_; }
  const std::string& path() const { return path_; }

 private:
  struct Output;
  std::string path_;
  std::unique_ptr<Output> output_;
  archive* archive_ = nullptr;
  int64_t samples_ = 0;
};

// Makes `folder` ready for a new shard set (created when missing). A folder that already holds
// shards (*.tar) or a sizes.json holds another set, which a brace pattern would mix with the new
// one: an error naming the files, unless `overwrite`, which removes them (sizes.json first, so a
// crash leaves no complete-looking mixture). `inputs` are never removed: an error instead.
// `flag` names the option that allows it in the message (e.g. "--overwrite").
void claim_shard_folder(const std::string& folder, bool overwrite,
                        const std::vector<std::string>& inputs,
                        const std::string& flag = "--overwrite");

// Writes sizes.json ({"shard name": samples, ...}) into `folder`, atomically.
void write_shard_sizes(const std::string& folder,
                       const std::vector<std::pair<std::string, int64_t>>& sizes);

}  // namespace halo::data
