// The layers of src/ run one way (docs/architecture.md): every #include "folder/..." of a file
// under src/FOLDER names FOLDER itself or a folder below it, and every file starts with a
// comment saying what it is for.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace halo::test {
namespace {

namespace fs = std::filesystem;

// The folders each folder may include besides itself: common < data, loss < encoders < dist <
// hooks < train < eval < classify < cli (encoders read data's batches and tokenizer).
const std::map<std::string, std::set<std::string>>& allowed() {
  static const std::map<std::string, std::set<std::string>> below = [] {
    std::map<std::string, std::set<std::string>> b;
    b["common"] = {};
    b["data"] = {"common"};
    b["loss"] = {"common"};
    b["encoders"] = {"common", "data"};
    b["dist"] = {"common", "data", "loss", "encoders"};
    b["hooks"] = {"common", "data", "loss", "encoders", "dist"};
    b["train"] = {"common", "data", "loss", "encoders", "dist", "hooks"};
    b["eval"] = {"common", "data", "loss", "encoders", "dist", "hooks", "train"};
    b["classify"] = {"common", "data", "loss", "encoders", "dist", "hooks", "train", "eval"};
    b["cli"] = {"common", "data", "loss", "encoders", "dist", "hooks", "train", "eval", "classify"};
    return b;
  }();
  return below;
}

struct SourceFile {
  fs::path path;
  std::string folder;  // the top folder under src/
};

std::vector<SourceFile> sources() {
  std::vector<SourceFile> out;
  const fs::path src = fs::path(HALO_SOURCE_DIR) / "src";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".h" && ext != ".cpp" && ext != ".cu" && ext != ".cuh"))
      continue;
    out.push_back({e.path(), fs::relative(e.path(), src).begin()->string()});
  }
  return out;
}

TEST(Layers, EveryFolderIsKnown) {
  for (const auto& f : sources())
    EXPECT_TRUE(allowed().count(f.folder)) << f.path << ": folder '" << f.folder << "'";
}

TEST(Layers, IncludesRunOneWay) {
  const std::regex include(R"re(^\s*#\s*include\s+"([a-z_]+)/)re");
  int checked = 0;
  for (const auto& f : sources()) {
    const auto rules = allowed().find(f.folder);
    if (rules == allowed().end()) continue;
    std::ifstream in(f.path);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      std::smatch m;
      if (!std::regex_search(line, m, include)) continue;
      const std::string to = m[1];
      if (!allowed().count(to)) continue;  // a file beside this one (e.g. "kernels/...")
      ++checked;
      EXPECT_TRUE(to == f.folder || rules->second.count(to))
          << f.path.string() << ":" << line_no << ": " << f.folder << "/ may not include " << to
          << "/";
    }
  }
  EXPECT_GT(checked, 100);  // the scan found the includes
}

TEST(Layers, EveryFileSaysWhatItIsFor) {
  for (const auto& f : sources()) {
    std::ifstream in(f.path);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("//", 0), 0u) << f.path << " does not start with a comment";
  }
}

}  // namespace
}  // namespace halo::test
