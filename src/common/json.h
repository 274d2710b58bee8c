// A small builder for JSON objects with ordered keys (results files), and string escaping.
// Non-finite numbers are written as null.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace halo {

std::string json_quote(const std::string& text);  // "text" with JSON escapes
std::string json_number(double value);            // shortest round-trip form; null if not finite

class JsonObject {
 public:
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, int64_t value);
  JsonObject& add(const std::string& key, int value) {
    return add(key, static_cast<int64_t>(value));
  }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value) {
    return add(key, std::string(value));
  }
  JsonObject& add(const std::string& key, const JsonObject& value);
  JsonObject& add(const std::string& key, const std::vector<double>& values);
  JsonObject& add(const std::string& key, const std::vector<JsonObject>& values);
  std::string dump(int indent = 0) const;  // indent 0: one line
  bool empty() const { return entries_.empty(); }

 private:
  // Values are kept rendered; nested objects are rendered on dump() for the indentation.
  struct Entry {
    std::string key, value;
    std::vector<JsonObject> objects;
    int kind = 0;  // 0: rendered value, 1: one object, 2: array of objects
  };
  std::string render(int indent, int depth) const;
  std::vector<Entry> entries_;
};

}  // namespace halo
