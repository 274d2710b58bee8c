// Writing WebDataset shards with libarchive (see shard_writer.h).
#include "data/shard_writer.h"

#include <algorithm>
#include <filesystem>

#include <archive.h>
#include <archive_entry.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"

namespace halo::data {

struct ShardWriter::Output {
  explicit Output(const std::string& path) : file(path) {}
  AtomicFile file;
};

namespace {

la_ssize_t write_to_atomic_file(archive*, void* client, const void* buffer, size_t length) {
  auto& out = static_cast<AtomicFile*>(client)->out();
  out.write(static_cast<const char*>(buffer), static_cast<std::streamsize>(length));
  return out ? static_cast<la_ssize_t>(length) : -1;
}

}  // namespace

ShardWriter::ShardWriter(std::string path)
    : path_(std::move(path)), output_(std::make_unique<Output>(path_)) {
  archive_ = archive_write_new();
  HALO_CHECK(archive_ != nullptr, "libarchive: out of memory writing shard '", path_, "'");
  // POSIX pax without extended headers unless a name needs one: what Python's tarfile writes.
  archive_write_set_format_pax_restricted(archive_);
  const int r = archive_write_open2(archive_, &output_->file, nullptr, write_to_atomic_file,
                                    nullptr, nullptr);
  HALO_CHECK(r == ARCHIVE_OK, "cannot write shard '", path_, "': ", archive_error_string(archive_));
}

ShardWriter::~ShardWriter() {
  if (archive_) archive_write_free(archive_);  // the AtomicFile discards the temporary
}

void ShardWriter::add(const TarMember& member) {
  HALO_CHECK(archive_ != nullptr, "shard '", path_, "' is already finished");
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, member.name.c_str());
  archive_entry_set_size(entry, static_cast<la_int64_t>(member.data.size()));
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, static_cast<mode_t>(member.mode));
  archive_entry_set_mtime(entry, static_cast<time_t>(member.mtime), 0);
  const int r = archive_write_header(archive_, entry);
  archive_entry_free(entry);
  HALO_CHECK(r == ARCHIVE_OK, "cannot write member '", member.name, "' to shard '", path_,
             "': ", archive_error_string(archive_));
  const la_ssize_t n = archive_write_data(archive_, member.data.data(), member.data.size());
  HALO_CHECK(n == static_cast<la_ssize_t>(member.data.size()), "cannot write member '", member.name,
             "' to shard '", path_, "': ", archive_error_string(archive_));
}

void ShardWriter::add(const ShardSample& sample) {
  for (const auto& member : sample.members) add(member);
  ++samples_;
}

void ShardWriter::finish() {
  HALO_CHECK(archive_ != nullptr, "shard '", path_, "' is already finished");
  const int r = archive_write_close(archive_);
  const std::string message = r == ARCHIVE_OK ? "" : archive_error_string(archive_);
  archive_write_free(archive_);
  archive_ = nullptr;
  HALO_CHECK(r == ARCHIVE_OK, "cannot finish shard '", path_, "': ", message);
  output_->file.commit();
}

void claim_shard_folder(const std::string& folder, bool overwrite,
                        const std::vector<std::string>& inputs, const std::string& flag) {
  namespace fs = std::filesystem;
  fs::create_directories(folder);
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && (entry.path().extension() == ".tar" || name == "sizes.json")) {
      found.push_back(entry.path());
    }
  }
  if (found.empty()) return;
  std::sort(found.begin(), found.end());
  for (const auto& file : found) {
    for (const auto& input : inputs) {
      HALO_CHECK(!fs::exists(input) || !fs::equivalent(file, input), "output folder '", folder,
                 "' holds the input '", input, "': choose another folder");
    }
  }
  if (!overwrite) {
    std::string names;
    for (size_t i = 0; i < found.size() && i < 5; ++i)
      names += (i ? ", " : "") + found[i].filename().string();
    if (found.size() > 5) names += " and " + std::to_string(found.size() - 5) + " more";
    HALO_FAIL("output folder '", folder, "' already holds a shard set (", names,
              "); a pattern over it would mix the two sets. Choose an empty folder, or give ", flag,
              " to replace that set");
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    return (a.filename() == "sizes.json") > (b.filename() == "sizes.json");  // sizes.json first
  });
  for (const auto& file : found) fs::remove(file);
}

void write_shard_sizes(const std::string& folder,
                       const std::vector<std::pair<std::string, int64_t>>& sizes) {
  JsonObject json;
  for (const auto& [name, count] : sizes) json.add(name, count);
  write_file_atomically(folder + "/sizes.json", json.dump(2) + "\n");
}

}  // namespace halo::data
