// Files that appear complete or not at all: every output of halo-clip (results, reports,
// manifests, pair dynamics, checkpoints and their pointer) is written to a temporary file in the
// target's folder (named after the target and the process), flushed to disk and renamed over
// the target. A failure leaves no temporary file behind; a crash can, and
// remove_stale_temporaries() clears those of a folder.
#pragma once
#include <fstream>
#include <functional>
#include <string>

namespace halo {

// Writes `content` to `path`. Throws halo::Error naming the file when the folder is missing or
// a write or the rename fails.
void write_file_atomically(const std::string& path, const std::string& content);

// The same for a writer that needs a path (e.g. torch's archives): `write` fills the temporary
// file it is given.
void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& temporary)>& write);

// A file written piece by piece through out(); it appears at `path` on commit(), and is
// discarded if the object is destroyed before.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  std::ofstream& out() { return out_; }
  void commit();

 private:
  std::string path_, temporary_;
  std::ofstream out_;
  bool committed_ = false;
};

// Deletes the temporary files that an interrupted write of this module left in `folder`
// (".NAME.tmp-PID"); returns how many. Call it only where no other process writes.
int remove_stale_temporaries(const std::string& folder);

}  // namespace halo
