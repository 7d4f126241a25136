#include "json.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace ek {

const Json *Json::get(const std::string &key) const {
  if (kind != Object) return nullptr;
  for (const auto &kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool Json::is_int() const {
  return kind == Number && std::isfinite(num) && num == std::floor(num) && std::fabs(num) < 9.007e15;
}

namespace {

constexpr int kMaxDepth = 64;  // manifests nest ~6 deep; a hostile file must not blow the stack

struct Parser {
  const std::string &s;
  size_t i = 0;
  std::string err;

  bool fail(const char *why) {
    if (err.empty()) {
      size_t line = 1, col = 1;
      for (size_t k = 0; k < i && k < s.size(); ++k) {
        if (s[k] == '\n') { ++line; col = 1; } else { ++col; }
      }
      err = "line " + std::to_string(line) + " column " + std::to_string(col) + ": " + why;
    }
    return false;
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool lit(const char *word) {
    size_t n = std::strlen(word);
    if (s.compare(i, n, word) != 0) return fail("invalid literal");
    i += n;
    return true;
  }
  static void utf8(std::string &o, unsigned cp) {
    if (cp < 0x80) o += char(cp);
    else if (cp < 0x800) { o += char(0xC0 | (cp >> 6)); o += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      o += char(0xE0 | (cp >> 12)); o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F));
    } else {
      o += char(0xF0 | (cp >> 18)); o += char(0x80 | ((cp >> 12) & 0x3F));
      o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(unsigned &v) {
    if (i + 4 > s.size()) return fail("truncated \\u escape");
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else return fail("bad \\u escape");
    }
    return true;
  }
  bool string(std::string &o) {
    ++i;  // opening quote
    while (true) {
      if (i >= s.size()) return fail("unterminated string");
      unsigned char c = (unsigned char)s[i++];
      if (c == '"') return true;
      if (c < 0x20) return fail("control character in string");
      if (c != '\\') { o += char(c); continue; }
      if (i >= s.size()) return fail("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case '/': o += '/'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            unsigned lo = 0;
            if (!hex4(lo)) return false;
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(o, cp);
          break;
        }
        default: return fail("bad escape");
      }
    }
  }
  bool number(Json &v) {
    size_t start = i;
    if (s[i] == '-') ++i;
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) return fail("bad number");
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                            s[i] == '+' || s[i] == '-'))
      ++i;
    std::string tok = s.substr(start, i - start);
    char *end = nullptr;
    v.kind = Json::Number;
    v.num = std::strtod(tok.c_str(), &end);
    if (!end || *end) return fail("bad number");
    return true;
  }
  bool value(Json &v, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end of input");
    char c = s[i];
    if (c == '{') {
      v.kind = Json::Object;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') { ++i; return true; }
      while (true) {
        ws();
        if (i >= s.size() || s[i] != '"') return fail("expected a string key");
        std::string key;
        if (!string(key)) return false;
        ws();
        if (i >= s.size() || s[i] != ':') return fail("expected ':'");
        ++i;
        v.obj.emplace_back(std::move(key), Json());
        if (!value(v.obj.back().second, depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == '}') { ++i; return true; }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') { ++i; return true; }
      while (true) {
        v.arr.emplace_back();
        if (!value(v.arr.back(), depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == ']') { ++i; return true; }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') { v.kind = Json::String; return string(v.str); }
    if (c == 't') { v.kind = Json::Bool; v.b = true; return lit("true"); }
    if (c == 'f') { v.kind = Json::Bool; v.b = false; return lit("false"); }
    if (c == 'n') { v.kind = Json::Null; return lit("null"); }
    // Python's json writes NaN/Infinity for non-finite floats (e.g. in metrics): accept them.
    if (c == 'N') { v.kind = Json::Number; v.num = NAN; return lit("NaN"); }
    if (c == 'I') { v.kind = Json::Number; v.num = INFINITY; return lit("Infinity"); }
    if (c == '-' && s.compare(i, 9, "-Infinity") == 0) { i += 9; v.kind = Json::Number; v.num = -INFINITY; return true; }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    return fail("unexpected character");
  }
};

}  // namespace

bool parse_json(const std::string &text, Json &out, std::string &error) {
  try {
    Parser p{text, 0, std::string()};
    out = Json();
    if (!p.value(out, 0)) { error = p.err; return false; }
    p.ws();
    if (p.i != text.size()) { p.fail("trailing characters"); error = p.err; return false; }
    return true;
  } catch (const std::exception &e) {  // bad_alloc on a hostile file
    error = std::string("cannot parse: ") + e.what();
    return false;
  }
}

}  // namespace ek
