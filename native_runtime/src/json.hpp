// A small JSON reader for manifest.json (RFC 8259 values; \u escapes become UTF-8).
// Written for this library: no dependency, bounded nesting depth, never throws out of parse().
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ek {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keeps manifest order (methods are ordered)

  const Json *get(const std::string &key) const;  // NULL when absent or not an object
  bool is_int() const;
};

// Parses `text`; on failure returns false and sets `error` to "line L column C: why".
bool parse_json(const std::string &text, Json &out, std::string &error);

}  // namespace ek
