// Reading WebDataset shards with libarchive (see tar_reader.h).
#include "data/tar_reader.h"

#include <algorithm>
#include <cctype>

#include <archive.h>
#include <archive_entry.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "data/manifest.h"

namespace halo::data {

namespace {

bool is_image_extension(const std::string& extension) {
  return extension == "jpg" || extension == "jpeg" || extension == "png" || extension == "webp";
}

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string archive_message(archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "unknown libarchive error";
}

// The sample's json: `mismatched` (0/1 or a boolean), `label` (an integer >= 0), `uid`.
void read_sample_json(ShardSample& s, const std::string& text) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    s.problem = "its json is not valid (" + std::string(e.what()) + ")";
    return;
  }
  if (!node.IsMap()) return;  // img2dataset writes an object; anything else carries nothing we read
  try {
    if (const YAML::Node m = node["mismatched"]; m && !m.IsNull()) {
      const std::string v = m.Scalar();
      if (v == "1" || v == "true")
        s.mismatched = 1;
      else if (v == "0" || v == "false")
        s.mismatched = 0;
      else
        s.problem = "json field 'mismatched' must be 0 or 1, got '" + v + "'";
    }
    if (const YAML::Node l = node["label"]; l && !l.IsNull()) {
      const int64_t v = l.as<int64_t>();
      if (v >= 0)
        s.label = v;
      else
        s.problem = "json field 'label' must be a class index >= 0";
    }
    if (const YAML::Node u = node["uid"]; u && !u.IsNull()) s.uid = u.Scalar();
  } catch (const YAML::Exception&) {
    s.problem = "json field 'label' must be an integer";
  }
}

}  // namespace

std::string ShardSample::caption_text() const {
  return caption < 0 ? std::string() : trimmed(members.at(static_cast<size_t>(caption)).data);
}

std::string ShardSample::where() const {
  return "shard '" + shard + "', sample '" + key + "'";
}

bool split_member_name(const std::string& name, std::string& key, std::string& extension) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos || dot + 1 >= name.size()) return false;
  key = name.substr(0, dot);
  extension = name.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return !key.empty() && key.back() != '/';
}

ShardReader::ShardReader(std::string shard, bool read_images, bool keep_other_members)
    : path_(std::move(shard)), read_images_(read_images), keep_other_members_(keep_other_members) {
  check_input_file(path_, "shard");
  archive_ = archive_read_new();
  HALO_CHECK(archive_ != nullptr, "libarchive: out of memory opening shard '", path_, "'");
  archive_read_support_format_tar(archive_);
  archive_read_support_filter_all(archive_);  // .tar.gz and friends, as webdataset reads them
  if (archive_read_open_filename(archive_, path_.c_str(), 1 << 16) != ARCHIVE_OK) {
    // Not a tar from its first bytes on (e.g. cut inside the first header): a shard with no
    // samples, and the reason in error().
    error_ =
        "shard '" + path_ + "' is truncated or corrupt at its start: " + archive_message(archive_);
    ended_ = true;
  }
}

ShardReader::~ShardReader() {
  if (archive_) archive_read_free(archive_);
}

bool ShardReader::read_header() {
  while (!ended_) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(archive_, &entry);
    if (r == ARCHIVE_EOF) {
      ended_ = true;
      return false;
    }
    if (r < ARCHIVE_WARN) {
      error_ =
          "shard '" + path_ + "' is truncated or corrupt" +
          (last_key_.empty() ? std::string(" at its start") : " after sample '" + last_key_ + "'") +
          ": " + archive_message(archive_);
      ended_ = true;
      return false;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;  // folders, links
    const char* name = archive_entry_pathname(entry);
    std::string key, extension;
    if (!name || !split_member_name(name, key, extension)) continue;
    pending_ = TarMember{name, "", static_cast<int64_t>(archive_entry_mtime(entry)),
                         static_cast<int>(archive_entry_perm(entry))};
    pending_key_ = key;
    pending_ext_ = extension;
    has_pending_ = true;
    return true;
  }
  return false;
}

bool ShardReader::next(ShardSample& out) {
  if (!has_pending_ && !read_header()) return false;
  out = ShardSample{};
  out.shard = path_;
  out.key = pending_key_;
  out.index_in_shard = samples_++;
  last_key_ = out.key;
  // A key met before in this shard is a second sample under the same name (webdataset refuses
  // such a shard): it is never merged into the first, and it carries the problem.
  if (!keys_.insert(out.key).second) {
    out.problem =
        "the key '" + out.key + "' repeats in this shard (an earlier sample has the same key)";
  }
  // A member whose data cannot be read: the sample says which, and the stream ends there.
  auto unreadable_member = [&] {
    out.problem =
        "member '" + pending_.name +
        "' cannot be read (the shard is truncated or corrupt): " + archive_message(archive_);
    error_ = "shard '" + path_ + "' is truncated or corrupt in sample '" + out.key +
             "': " + archive_message(archive_);
    ended_ = true;
  };
  while (has_pending_ && pending_key_ == out.key) {
    // The same member name again right after: the next sample repeats this one's key.
    const bool repeated = std::any_of(out.members.begin(), out.members.end(),
                                      [&](const TarMember& m) { return m.name == pending_.name; });
    if (repeated) break;
    has_pending_ = false;
    const bool image = is_image_extension(pending_ext_);
    const int index = static_cast<int>(out.members.size());
    int* slot = image                    ? &out.image
                : pending_ext_ == "txt"  ? &out.caption
                : pending_ext_ == "json" ? &out.json
                                         : nullptr;
    if (!slot && !keep_other_members_) {  // not part of the pair: skipped unread, left out
      if (archive_read_data_skip(archive_) != ARCHIVE_OK) {
        unreadable_member();
        break;
      }
      read_header();
      continue;
    }
    if (slot && *slot >= 0 && out.problem.empty()) {
      out.problem = "two members of the same kind: '" +
                    out.members[static_cast<size_t>(*slot)].name + "' and '" + pending_.name + "'";
    }
    if (slot && *slot < 0) *slot = index;
    if (skip_data_ || (image && !read_images_)) {
      if (archive_read_data_skip(archive_) != ARCHIVE_OK) {
        unreadable_member();
      }
    } else {
      char buffer[1 << 16];
      while (true) {
        const la_ssize_t n = archive_read_data(archive_, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0) {
          unreadable_member();
          break;
        }
        pending_.data.append(buffer, static_cast<size_t>(n));
      }
    }
    out.members.push_back(std::move(pending_));
    if (ended_) break;
    read_header();
  }
  skip_data_ = false;
  finish(out);
  // A sample cut short by the end of a truncated shard says so.
  if (!error_.empty() && !out.problem.empty() &&
      out.problem.find("truncated") == std::string::npos) {
    out.problem += " (the shard is truncated or corrupt after it)";
  }
  return true;
}

void ShardReader::finish(ShardSample& s) const {
  if (s.json >= 0 && s.problem.empty())
    read_sample_json(s, s.members[static_cast<size_t>(s.json)].data);
  if (!s.problem.empty()) return;
  if (s.image < 0) {
    s.problem = "no image (" + s.key + ".jpg, .jpeg, .png or .webp)";
  } else if (s.caption < 0) {
    s.problem = "no caption (" + s.key + ".txt)";
  } else {
    const std::string caption = s.caption_text();
    if (caption.empty())
      s.problem = "empty caption";
    else if (!valid_utf8(caption))
      s.problem = "caption is not valid UTF-8";
  }
}

int64_t count_shard_samples(const std::string& shard) {
  ShardReader reader(shard, false);
  ShardSample sample;
  int64_t n = 0;
  while (reader.next(sample)) ++n;
  return n;
}

}  // namespace halo::data
