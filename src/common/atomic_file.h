// Writing a whole file so that it appears complete or not at all: results, reports, manifests,
// pair dynamics and the checkpoint pointer go through here. Files written piece by piece
// (the filter's kept and rejected manifests, checkpoints) follow the same pattern on their own.
#pragma once
#include <string>

namespace halo {

// Writes `content` to `path` through a temporary file in the same folder (named after the file
// and this process), flushed to disk and renamed over `path`. Throws halo::Error naming the file
// when the folder is missing or a write or the rename fails; no temporary file is left behind.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace halo
