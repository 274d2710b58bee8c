// Implementation of the manifest writer (see manifest_writer.h): caption sanitising, UTF-8
// validation and the manifest's atomic write.
#include "data/manifest_writer.h"

#include "common/atomic_file.h"
#include "common/error.h"

namespace halo::data {

std::string sanitize_caption(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {  // control characters (tab, CR, LF, ...) and spaces
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool is_valid_utf8(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

void write_manifest(const std::string& path, const std::vector<ManifestRow>& rows) {
  bool with_label = false;
  for (const auto& row : rows) with_label = with_label || row.label >= 0;
  std::string out = "image_path\tcaption\tmismatched\toriginal_caption";
  out += with_label ? "\tlabel\n" : "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const ManifestRow& row = rows[i];
    HALO_CHECK(
        !row.image_path.empty() && row.image_path.find_first_of("\t\r\n") == std::string::npos,
        "manifest '", path, "': row ", i + 1, " has an empty image path or one with a tab ",
        "or newline: '", row.image_path, "'");
    const std::string caption = sanitize_caption(row.caption);
    const std::string original = sanitize_caption(row.original_caption);
    HALO_CHECK(!caption.empty() && !original.empty(), "manifest '", path, "': row ", i + 1, " (",
               row.image_path, ") has an empty caption");
    out += row.image_path;
    out += '\t';
    out += caption;
    out += row.mismatched ? "\t1\t" : "\t0\t";
    out += original;
    if (with_label) out += "\t" + std::to_string(row.label);
    out += '\n';
  }
  write_file_atomically(path, out);
}

}  // namespace halo::data
