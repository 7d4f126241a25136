// Entry points for the tests (tests/test_native_llm.py drives them through ctypes): the tokenizer
// and the sampler without a model. Exported but not in the public header: not part of the C API.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sampler.h"
#include "tokenizer.h"

#define EK_INTERNAL extern "C" __attribute__((visibility("default")))

namespace {
thread_local std::string g_error;
char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}
}  // namespace

EK_INTERNAL const char *ek_internal_error(void) { return g_error.c_str(); }

// Encodes `text` with tokenizer.json at `path`: ids in a malloc'd array (free with ek_free), count in *n.
EK_INTERNAL int64_t *ek_internal_encode(const char *path, const char *text, size_t *n) {
  try {
    ek::Tokenizer tok;
    std::vector<int64_t> ids;
    if (!tok.load(path, g_error) || !tok.encode(text, ids, g_error)) return nullptr;
    auto *out = static_cast<int64_t *>(std::malloc(sizeof(int64_t) * (ids.size() + 1)));
    if (!out) return nullptr;
    std::memcpy(out, ids.data(), sizeof(int64_t) * ids.size());
    *n = ids.size();
    return out;
  } catch (const std::exception &e) {
    g_error = e.what();
    return nullptr;
  }
}

// Decodes ids; the text's byte length in *len (it may hold NUL bytes).
EK_INTERNAL char *ek_internal_decode(const char *path, const int64_t *ids, size_t n, size_t *len) {
  try {
    ek::Tokenizer tok;
    if (!tok.load(path, g_error)) return nullptr;
    std::string text = tok.decode(std::vector<int64_t>(ids, ids + n));
    *len = text.size();
    return dup(text);
  } catch (const std::exception &e) {
    g_error = e.what();
    return nullptr;
  }
}

// `steps` draws from one seeded sampler over the same logits (as many decode steps would).
EK_INTERNAL void ek_internal_sample(const float *logits, size_t n, float temperature, int top_k, uint64_t seed,
                                    int steps, int64_t *out) {
  ek::Sampler s(temperature, top_k, seed);
  for (int i = 0; i < steps; i++) out[i] = s.sample(logits + size_t(i) * n, n);
}

EK_INTERNAL void ek_internal_random_raw(uint64_t seed, size_t n, uint64_t *out) {
  ek::Pcg64 r(seed);
  for (size_t i = 0; i < n; i++) out[i] = r.next_u64();
}
