// Streaming reader of WebDataset shards (img2dataset's layout): a tar file read with libarchive
// member by member, never unpacked to disk, and grouped into samples by key. The key of a
// member is its path up to the first dot of the file name (folders are part of the key, so
// `a.b/0001.jpg` has the key `a.b/0001`); consecutive members with the same key form a sample. A
// key that repeats within a shard (a member name met again, or a key of an earlier sample) starts
// a sample of its own that carries the problem, never one merged sample.
// KEY.jpg|jpeg|png|webp (any case) is the image, KEY.txt the caption, KEY.json optional
// metadata whose `mismatched`, `label` and `uid` fields are read.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

struct archive;

namespace halo::data {

// One tar member as stored: its name (not renamed) and bytes.
struct TarMember {
  TarMember() = default;
  TarMember(std::string member_name, std::string bytes, int64_t modified = 0,
            int permissions = 0644)
      : name(std::move(member_name)), data(std::move(bytes)), mtime(modified), mode(permissions) {}
  std::string name;
  std::string data;
  int64_t mtime = 0;
  int mode = 0644;
};

struct ShardSample {
  std::string shard;  // the shard's path
  std::string key;
  int64_t index_in_shard = 0;      // position among the shard's samples
  int64_t row = -1;                // position in a shard set (data::ShardSet), where one is known
  std::vector<TarMember> members;  // every member of the sample, in tar order
  int image = -1, caption = -1, json = -1;  // indices into members, -1 when absent
  int8_t mismatched = -1;                   // from the json: 0/1, -1 when not given
  int64_t label = -1;                       // from the json, -1 when not given
  std::string uid;                          // from the json, "" when not given
  std::string problem;                      // why the sample cannot be used ("" when it can)

  bool usable() const { return problem.empty(); }
  const std::string& image_bytes() const { return members.at(static_cast<size_t>(image)).data; }
  std::string caption_text() const;  // the .txt without surrounding white space
  // "shard 'PATH', sample 'KEY'" for messages.
  std::string where() const;
};

class ShardReader {
 public:
  // With read_images false, image members are skipped (their data left empty): counting and
  // reading captions only. With keep_other_members false, members other than the image, the
  // caption and the json (e.g. KEY.npy, KEY.cls) are skipped without being read and left out of
  // the sample: what training reads (copying a sample whole, as filter does, keeps them).
  explicit ShardReader(std::string shard, bool read_images = true, bool keep_other_members = true);
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  // The next sample, or false at the end of the shard. A sample with a missing image, a
  // missing or empty caption, a broken json or a member that cannot be read carries a problem.
  // A shard that ends inside a member or header (truncated) ends the stream; error() says so.
  bool next(ShardSample& out);
  // Non-empty when the shard is truncated or corrupt: the message names the shard and the
  // last key read.
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  // The next sample's members are skipped, not read (their data left empty): a sample that will
  // be dropped (replaying a stream to resume it).
  void skip_next_sample_data(bool skip) { skip_data_ = skip; }

 private:
  bool read_header();  // the next regular member's header into pending_; false at the end
  void finish(ShardSample& sample) const;

  std::string path_;
  bool read_images_, keep_other_members_;
  archive* archive_ = nullptr;
  bool has_pending_ = false, ended_ = false, skip_data_ = false;
  std::string pending_key_, pending_ext_;
  TarMember pending_;
  int64_t samples_ = 0;
  std::string last_key_, error_;
  std::unordered_set<std::string> keys_;  // every key of the shard so far: a repeat is a problem
};

// The key and the lower-case extension of a member name ("dir/a.b.JPG" -> "dir/a", "b.jpg").
// Returns false for a name without an extension (such members are ignored, as webdataset does).
bool split_member_name(const std::string& name, std::string& key, std::string& extension);

// Samples in a shard, counted by reading its headers and captions (images skipped).
int64_t count_shard_samples(const std::string& shard);

}  // namespace halo::data
