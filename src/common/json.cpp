// JSON builder (see json.h).
#include "common/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace halo {

std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

JsonObject& JsonObject::add(const std::string& key, double value) {
  entries_.push_back({key, json_number(value), {}, 0});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, int64_t value) {
  entries_.push_back({key, std::to_string(value), {}, 0});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, bool value) {
  entries_.push_back({key, value ? "true" : "false", {}, 0});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  entries_.push_back({key, json_quote(value), {}, 0});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, const JsonObject& value) {
  entries_.push_back({key, "", {value}, 1});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<double>& values) {
  std::string text = "[";
  for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + json_number(values[i]);
  entries_.push_back({key, text + "]", {}, 0});
  return *this;
}
JsonObject& JsonObject::add(const std::string& key, const std::vector<JsonObject>& values) {
  entries_.push_back({key, "", values, 2});
  return *this;
}

std::string JsonObject::dump(int indent) const {
  return render(indent, 0);
}

std::string JsonObject::render(int indent, int depth) const {
  if (entries_.empty()) return "{}";
  const std::string pad =
      indent ? "\n" + std::string(static_cast<size_t>(indent * (depth + 1)), ' ') : " ";
  const std::string close =
      indent ? "\n" + std::string(static_cast<size_t>(indent * depth), ' ') : " ";
  std::string out = "{";
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    out += (i ? "," : "") + pad + json_quote(e.key) + ": ";
    if (e.kind == 0) {
      out += e.value;
    } else if (e.kind == 1) {
      out += e.objects[0].render(indent, depth + 1);
    } else {
      out += "[";
      for (size_t k = 0; k < e.objects.size(); ++k)
        out += (k ? ", " : "") + e.objects[k].render(0, 0);
      out += "]";
    }
  }
  return out + close + "}";
}

}  // namespace halo
