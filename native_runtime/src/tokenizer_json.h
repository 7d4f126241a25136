// A small JSON reader for the LLM helper: tokenizer.json and the manifest's LLM fields.
// Parses into a tree; errors are returned as messages, never thrown across the C boundary.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ek {

struct Json {
  enum Kind { NUL, BOOL, NUM, STR, ARR, OBJ } kind = NUL;
  bool b = false;
  double num = 0;
  std::string str;                                        // STR
  std::vector<Json> arr;                                  // ARR
  std::vector<std::pair<std::string, Json>> obj;          // OBJ, in file order

  const Json *get(const std::string &key) const;          // nullptr when absent or not an object
  bool is_str() const { return kind == STR; }
  bool is_num() const { return kind == NUM; }
  bool is_obj() const { return kind == OBJ; }
  bool is_arr() const { return kind == ARR; }
};

// Parses `text`; on failure returns false and sets `error` (with the byte offset).
bool parse_json(const std::string &text, Json &out, std::string &error);
// Reads a whole file; false (with `error`) when it cannot be read.
bool read_file(const std::string &path, std::string &out, std::string &error);

}  // namespace ek
