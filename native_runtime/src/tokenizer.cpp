// Byte-level BPE as HuggingFace `tokenizers` runs it (see tokenizer.h). The pre-tokenizer is a
// hand-written scanner for the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (no regex engine: std::regex has no \p{..} classes), with \p{L}/\p{N} from tokenizer_unicode.h.
#include "tokenizer.h"

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

#include "json.hpp"
#include "tokenizer_unicode.h"

namespace ek {
namespace {

bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {  // first range whose end >= cp
    size_t mid = (lo + hi) / 2;
    if (r[mid][1] < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && r[lo][0] <= cp;
}
bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(EK_UNI_LETTER, EK_UNI_LETTER_N, cp);
}
bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(EK_UNI_NUMBER, EK_UNI_NUMBER_N, cp);
}
bool is_space(uint32_t cp) {  // Unicode White_Space (the regex engine's \s)
  return (cp >= 9 && cp <= 13) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

void put_utf8(std::string &o, uint32_t cp) {
  if (cp < 0x80) {
    o += char(cp);
  } else if (cp < 0x800) {
    o += char(0xC0 | (cp >> 6));
    o += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    o += char(0xE0 | (cp >> 12));
    o += char(0x80 | ((cp >> 6) & 0x3F));
    o += char(0x80 | (cp & 0x3F));
  } else {
    o += char(0xF0 | (cp >> 18));
    o += char(0x80 | ((cp >> 12) & 0x3F));
    o += char(0x80 | ((cp >> 6) & 0x3F));
    o += char(0x80 | (cp & 0x3F));
  }
}

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 with `bad` = bytes of its maximal invalid
// prefix (at least 1) -- the unit Rust's String::from_utf8_lossy replaces with one U+FFFD.
size_t utf8_seq(const unsigned char *s, size_t n, size_t i, size_t &bad) {
  unsigned char b = s[i];
  if (b < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) need = 1;
  else if (b == 0xE0) { need = 2; lo = 0xA0; }
  else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need = 2;
  else if (b == 0xED) { need = 2; hi = 0x9F; }
  else if (b == 0xF0) { need = 3; lo = 0x90; }
  else if (b >= 0xF1 && b <= 0xF3) need = 3;
  else if (b == 0xF4) { need = 3; hi = 0x8F; }
  else { bad = 1; return 0; }
  for (size_t k = 1; k <= need; k++) {
    unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
    if (i + k >= n || s[i + k] < lo_k || s[i + k] > hi_k) {
      bad = k;
      return 0;
    }
  }
  return need + 1;
}

uint32_t utf8_decode(const unsigned char *s, size_t len) {
  if (len == 1) return s[0];
  uint32_t cp = s[0] & (0x7F >> len);
  for (size_t k = 1; k < len; k++) cp = (cp << 6) | (s[k] & 0x3F);
  return cp;
}

}  // namespace

bool read_text_file(const std::string &path, std::string &out, std::string &error) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  if (f) ss << f.rdbuf();
  if (!f || f.bad()) {
    error = "cannot read " + path;
    return false;
  }
  out = ss.str();
  return true;
}

bool Tokenizer::load(const std::string &path, std::string &error) {
  std::string text;
  Json j;
  if (!read_text_file(path, text, error)) return false;
  if (!parse_json(text, j, error)) {
    error = path + ": " + error;
    return false;
  }
  auto type_of = [](const Json *x) -> std::string {
    const Json *t = x ? x->get("type") : nullptr;
    return t && t->kind == Json::String ? t->str : (x && x->kind == Json::Null ? "null" : "?");
  };
  auto unsupported = [&](const std::string &what) {
    error = path + ": unsupported tokenizer (" + what +
            "); this runtime reads the byte-level BPE tokenizer edgekit trains (model BPE, pre_tokenizer "
            "ByteLevel, decoder ByteLevel, no normalizer)";
    return false;
  };
  const Json *model = j.get("model"), *pre = j.get("pre_tokenizer"), *dec = j.get("decoder");
  if (!model || type_of(model) != "BPE") return unsupported("model " + type_of(model));
  if (!pre || type_of(pre) != "ByteLevel") return unsupported("pre_tokenizer " + type_of(pre));
  if (!dec || type_of(dec) != "ByteLevel") return unsupported("decoder " + type_of(dec));
  const Json *norm = j.get("normalizer");
  if (norm && norm->kind != Json::Null) return unsupported("normalizer " + type_of(norm));
  const Json *post = j.get("post_processor");
  if (post && post->kind != Json::Null && type_of(post) != "ByteLevel")  // ByteLevel only touches offsets
    return unsupported("post_processor " + type_of(post));
  const Json *use_regex = pre->get("use_regex");
  if (use_regex && use_regex->kind == Json::Bool && !use_regex->b) return unsupported("use_regex false");
  const Json *aps = pre->get("add_prefix_space");
  add_prefix_space_ = aps && aps->kind == Json::Bool && aps->b;
  for (const char *k : {"dropout", "continuing_subword_prefix", "end_of_word_suffix", "unk_token"}) {
    const Json *v = model->get(k);
    if (v && v->kind != Json::Null) return unsupported(std::string("model.") + k + " set");
  }
  const Json *bf = model->get("byte_fallback");
  if (bf && bf->kind == Json::Bool && bf->b) return unsupported("byte_fallback");
  const Json *im = model->get("ignore_merges");
  if (im && im->kind == Json::Bool && im->b) return unsupported("ignore_merges");

  const Json *vocab = model->get("vocab"), *merges = model->get("merges");
  if (!vocab || vocab->kind != Json::Object || !merges || merges->kind != Json::Array) {
    error = path + ": model.vocab (object) or model.merges (list) missing";
    return false;
  }
  int64_t max_id = -1;
  for (const auto &kv : vocab->obj) {
    if (kv.second.kind != Json::Number || kv.second.num < 0 || kv.second.num > 1e8) {
      error = path + ": vocab entry '" + kv.first + "' has no valid id";
      return false;
    }
    vocab_[kv.first] = int64_t(kv.second.num);
    max_id = std::max(max_id, int64_t(kv.second.num));
  }
  const Json *added = j.get("added_tokens");
  if (added && added->kind == Json::Array) {
    for (const Json &a : added->arr) {
      const Json *c = a.get("content"), *id = a.get("id"), *sp = a.get("special");
      if (!c || c->kind != Json::String || !id || id->kind != Json::Number || c->str.empty()) {
        error = path + ": an added_tokens entry lacks content or id";
        return false;
      }
      for (const char *k : {"single_word", "lstrip", "rstrip", "normalized"}) {
        const Json *v = a.get(k);
        // normalized only matters with a normalizer (there is none here)
        if (v && v->kind == Json::Bool && v->b && std::string(k) != "normalized")
          return unsupported(std::string("added token with ") + k);
      }
      added_.push_back({c->str, int64_t(id->num), sp && sp->kind == Json::Bool && sp->b});
      max_id = std::max(max_id, int64_t(id->num));
    }
  }
  std::stable_sort(added_.begin(), added_.end(),
                   [](const Added &x, const Added &y) { return x.content.size() > y.content.size(); });
  id_to_token_.assign(size_t(max_id + 1), std::string());
  special_.assign(size_t(max_id + 1), false);
  for (const auto &kv : vocab_) id_to_token_[size_t(kv.second)] = kv.first;
  for (const Added &a : added_) {
    id_to_token_[size_t(a.id)] = a.content;
    special_[size_t(a.id)] = a.special;
  }
  for (size_t r = 0; r < merges->arr.size(); r++) {
    const Json &m = merges->arr[r];
    std::string a, b;
    if (m.kind == Json::Array && m.arr.size() == 2 && m.arr[0].kind == Json::String && m.arr[1].kind == Json::String) {
      a = m.arr[0].str;
      b = m.arr[1].str;
    } else if (m.kind == Json::String && m.str.find(' ') != std::string::npos) {  // older "a b" form
      size_t sp = m.str.find(' ');
      a = m.str.substr(0, sp);
      b = m.str.substr(sp + 1);
    } else {
      error = path + ": merge " + std::to_string(r) + " is neither [a, b] nor \"a b\"";
      return false;
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end()) {
      error = path + ": merge " + std::to_string(r) + " (" + a + " " + b + ") uses tokens not in the vocab";
      return false;
    }
    uint64_t key = (uint64_t(ia->second) << 32) | uint64_t(ib->second);
    merges_.emplace(key, std::make_pair(int32_t(r), iab->second));  // first rank wins, as in tokenizers
  }
  // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 upwards.
  int n = 0;
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
    byte_char_[b].clear();
    put_utf8(byte_char_[b], cp);
    char_byte_[cp] = uint8_t(b);
    auto it = vocab_.find(byte_char_[b]);
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
  return true;
}

int64_t Tokenizer::token_to_id(const std::string &token) const {
  for (const Added &a : added_)
    if (a.content == token) return a.id;
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void Tokenizer::bpe(const std::string &word, std::vector<int64_t> &ids) const {
  // One symbol per byte, then apply the lowest-rank merge (leftmost on ties) until none applies:
  // the result `tokenizers` gets with its priority queue, since a merge's products rank after it.
  std::vector<int64_t> sym;
  sym.reserve(word.size());
  for (unsigned char c : word)
    if (byte_id_[c] >= 0) sym.push_back(byte_id_[c]);  // no unk token: unknown symbols are dropped
  while (sym.size() > 1) {
    int32_t best = INT32_MAX;
    size_t at = 0;
    int64_t merged = -1;
    for (size_t k = 0; k + 1 < sym.size(); k++) {
      auto it = merges_.find((uint64_t(sym[k]) << 32) | uint64_t(sym[k + 1]));
      if (it != merges_.end() && it->second.first < best) {
        best = it->second.first;
        at = k;
        merged = it->second.second;
      }
    }
    if (merged < 0) break;
    sym[at] = merged;
    sym.erase(sym.begin() + long(at) + 1);
  }
  ids.insert(ids.end(), sym.begin(), sym.end());
}

void Tokenizer::encode_plain(const std::string &raw, std::vector<int64_t> &ids) const {
  std::string text = add_prefix_space_ && !raw.empty() && raw[0] != ' ' ? " " + raw : raw;
  const auto *s = reinterpret_cast<const unsigned char *>(text.data());
  std::vector<uint32_t> cp;
  std::vector<size_t> off;  // byte offset of each code point, plus the end
  for (size_t i = 0, bad = 0; i < text.size();) {
    size_t len = utf8_seq(s, text.size(), i, bad);  // validated by encode()
    cp.push_back(utf8_decode(s + i, len));
    off.push_back(i);
    i += len;
  }
  off.push_back(text.size());
  const size_t n = cp.size();
  auto other = [&](size_t k) { return !is_space(cp[k]) && !is_letter(cp[k]) && !is_number(cp[k]); };
  size_t i = 0;
  while (i < n) {
    size_t end = 0;
    if (cp[i] == '\'' && i + 1 < n) {  // 's|'t|'re|'ve|'m|'ll|'d
      uint32_t c1 = cp[i + 1], c2 = i + 2 < n ? cp[i + 2] : 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') end = i + 2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) end = i + 3;
    }
    if (!end) {  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` in that order
      size_t st = cp[i] == ' ' && i + 1 < n ? i + 1 : i;
      for (int cls = 0; cls < 3 && !end; cls++) {
        auto in = [&](size_t k) { return cls == 0 ? is_letter(cp[k]) : cls == 1 ? is_number(cp[k]) : other(k); };
        size_t from = st < n && in(st) ? st : (in(i) ? i : n);
        if (from == n) continue;
        end = from + 1;
        while (end < n && in(end)) end++;
      }
    }
    if (!end) {  // `\s+(?!\S)|\s+`: a whitespace run leaves its last char to the next word
      size_t j = i;
      while (j < n && is_space(cp[j])) j++;
      end = (j < n && j - i > 1) ? j - 1 : j;
    }
    bpe(text.substr(off[i], off[end] - off[i]), ids);
    i = end;
  }
}

bool Tokenizer::encode(const std::string &text, std::vector<int64_t> &ids, std::string &error) const {
  const auto *s = reinterpret_cast<const unsigned char *>(text.data());
  for (size_t i = 0, bad = 0; i < text.size();) {
    size_t len = utf8_seq(s, text.size(), i, bad);
    if (!len) {
      error = "the text is not valid UTF-8 (byte " + std::to_string(i) + ")";
      return false;
    }
    i += len;
  }
  ids.clear();
  // Added (special) tokens are matched in the raw text first, longest first at each position.
  size_t start = 0, i = 0;
  while (i < text.size()) {
    const Added *hit = nullptr;
    for (const Added &a : added_)
      if (text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    if (!hit) {
      i++;
      continue;
    }
    if (i > start) encode_plain(text.substr(start, i - start), ids);
    ids.push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  if (start < text.size()) encode_plain(text.substr(start), ids);
  return true;
}

std::string Tokenizer::decode(const std::vector<int64_t> &ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || size_t(id) >= id_to_token_.size() || special_[size_t(id)]) continue;
    const std::string &tok = id_to_token_[size_t(id)];
    const auto *s = reinterpret_cast<const unsigned char *>(tok.data());
    std::string mapped;
    bool all = true;
    for (size_t i = 0, bad = 0; i < tok.size();) {
      size_t len = utf8_seq(s, tok.size(), i, bad);
      if (!len) { all = false; break; }
      auto it = char_byte_.find(utf8_decode(s + i, len));
      if (it == char_byte_.end()) { all = false; break; }
      mapped += char(it->second);
      i += len;
    }
    bytes += all ? mapped : tok;  // a token with a char outside the byte map keeps its own bytes
  }
  // from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD
  std::string out;
  const auto *s = reinterpret_cast<const unsigned char *>(bytes.data());
  for (size_t i = 0, bad = 0; i < bytes.size();) {
    size_t len = utf8_seq(s, bytes.size(), i, bad);
    if (len) {
      out.append(bytes, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

}  // namespace ek
