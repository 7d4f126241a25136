// The LLM helper of the C API: ek_llm_open / ek_llm_generate / ek_llm_close.
// Runs an edgekit LLM artifact (edgekit export-llm) through the generic ek_open/ek_run calls:
// the artifact's tokenizer (tokenizer.cpp), prefill in chunks of the exported length, then one decode
// call per token, sampling as edgekit.generate does (sampler.cpp). Same loop as
// edgekit/generate.py:LLMSession.generate, so greedy output equals `edgekit generate --temperature 0`.
// In-place-cache artifacts (.pte: prefill/decode/reset) keep the KV cache inside; explicit-cache ones
// (.tflite) take and return it on every call, kept here in two float buffers.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "edgekit_runtime.h"
#include "internal.hpp"
#include "sampler.h"
#include "tokenizer.h"
#include "json.hpp"

struct ek_llm {
  struct Outputs {  // where a method's outputs are, by name
    int count = 0, logits = -1, k = -1, v = -1;
  };
  ek_artifact *art = nullptr;
  Outputs prefill_out, decode_out;
  ek::Tokenizer tok;
  int64_t prefill_len = 0, max_seq_len = 0, vocab = 0, eos = -1;
  bool in_place = true;
  std::vector<int64_t> cache_shape;  // explicit cache: (layers, 1, kv_heads, max_seq_len, head_dim)
  std::vector<float> k, v;
  ~ek_llm() { ek_close(art); }
};

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool safe_relative(const std::string &p) {
  return !p.empty() && p[0] != '/' && p.find("..") == std::string::npos && p.find('\\') == std::string::npos;
}

int64_t int_field(const ek::Json *obj, const char *key) {
  const ek::Json *v = obj ? obj->get(key) : nullptr;
  return v && v->kind == ek::Json::Number ? int64_t(v->num) : -1;
}

// The signature entry named `name` among `n` infos; nullptr when absent.
int find_index(const ek_tensor_info *infos, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (infos[i].name && std::strcmp(infos[i].name, name) == 0) return i;
  return -1;
}
const ek_tensor_info *find_info(const ek_tensor_info *infos, int n, const char *name) {
  int i = find_index(infos, n, name);
  return i < 0 ? nullptr : &infos[i];
}

ek_status check_method(ek_llm *m, const std::string &dir, const char *method, int64_t tokens_len,
                       ek_llm::Outputs &where) {
  int ni = 0, no = 0;
  const ek_tensor_info *in = nullptr, *out = nullptr;
  if (ek_method_signature(m->art, method, &ni, &in, &no, &out) != EK_OK)
    return ek::fail(EK_ERR_NO_METHOD, dir + ": the LLM artifact has no '" + method + "' method");
  where = {no, find_index(out, no, "logits"), find_index(out, no, "k_cache_out"), find_index(out, no, "v_cache_out")};
  const ek_tensor_info *tok = find_info(in, ni, "tokens"), *logits = find_info(out, no, "logits");
  if (!tok || tok->rank != 2 || tok->dtype != EK_I64 || tok->shape[1] != tokens_len)
    return ek::fail(EK_ERR_MANIFEST, dir + ": method '" + method + "' needs an int64 'tokens' input of shape [1, " +
                                         std::to_string(tokens_len) + "]");
  if (!find_info(in, ni, "start_pos"))
    return ek::fail(EK_ERR_MANIFEST, dir + ": method '" + method + "' has no 'start_pos' input");
  if (!logits || logits->rank != 3 || logits->dtype != EK_F32 || logits->shape[2] <= 0)
    return ek::fail(EK_ERR_MANIFEST, dir + ": method '" + method + "' has no float32 'logits' output [1, n, vocab]");
  m->vocab = logits->shape[2];
  if (!m->in_place) {
    const ek_tensor_info *kc = find_info(in, ni, "k_cache");
    if (!kc || !find_info(in, ni, "v_cache") || kc->dtype != EK_F32 || where.k < 0 || where.v < 0)
      return ek::fail(EK_ERR_MANIFEST, dir + ": method '" + method + "' lacks the float32 k_cache/v_cache inputs "
                                           "and outputs of an explicit-cache LLM");
    m->cache_shape.assign(kc->shape, kc->shape + kc->rank);
    for (int64_t d : m->cache_shape)
      if (d <= 0) return ek::fail(EK_ERR_MANIFEST, dir + ": the k_cache input has a non-concrete shape");
  }
  return EK_OK;
}

ek_status open_llm(const char *artifact_dir, const ek_options *opts, ek_llm **out) {
  if (!artifact_dir || !out) return ek::fail(EK_ERR_ARGUMENT, "ek_llm_open: artifact_dir and out must not be NULL");
  *out = nullptr;
  std::string dir = artifact_dir, text, err;
  ek::Json man;
  if (!ek::read_text_file(dir + "/manifest.json", text, err)) return ek::fail(EK_ERR_IO, err);
  if (!ek::parse_json(text, man, err)) return ek::fail(EK_ERR_MANIFEST, dir + "/manifest.json: " + err);
  const ek::Json *kind = man.get("kind");
  if (!kind || kind->kind != ek::Json::String || kind->str != "edgekit-llm")
    return ek::fail(EK_ERR_MANIFEST, dir + " is not an LLM artifact (manifest kind '" +
                                         (kind && kind->kind == ek::Json::String ? kind->str : std::string("none")) +
                                         "', want 'edgekit-llm'); open it with ek_open");
  if (man.get("first"))
    return ek::fail(EK_ERR_MANIFEST, dir + " is a FiRST (layer-skipping) artifact: its per-layer methods and "
                                         "routers are run by edgekit.generate (Python), not by ek_llm");
  std::unique_ptr<ek_llm> m(new (std::nothrow) ek_llm());
  if (!m) return ek::fail(EK_ERR_NOMEM, "ek_llm_open: out of memory");
  const ek::Json *options = man.get("options"), *model = man.get("model");
  const ek::Json *cfg = model ? model->get("config") : nullptr, *cache = man.get("kv_cache");
  const ek::Json *tokfile = man.get("tokenizer");
  m->prefill_len = int_field(options, "prefill_len");
  m->max_seq_len = int_field(cfg, "max_seq_len");
  m->in_place = cache && cache->kind == ek::Json::String && cache->str == "in_place";
  if (m->prefill_len <= 0 || m->max_seq_len <= 0 || !tokfile || tokfile->kind != ek::Json::String || !safe_relative(tokfile->str))
    return ek::fail(EK_ERR_MANIFEST, dir + "/manifest.json: an LLM manifest needs options.prefill_len, "
                                           "model.config.max_seq_len and a relative 'tokenizer' file");
  // ek_open verifies the manifest (schema, sha256 of every file incl. tokenizer.json) and loads the model.
  if (ek_status s = ek_open(artifact_dir, opts, &m->art)) return s;
  if (!m->tok.load(dir + "/" + tokfile->str, err)) return ek::fail(EK_ERR_MANIFEST, err);
  if (ek_status s = check_method(m.get(), dir, "prefill", m->prefill_len, m->prefill_out)) return s;
  int64_t vocab = m->vocab;
  if (ek_status s = check_method(m.get(), dir, "decode", 1, m->decode_out)) return s;
  if (m->vocab != vocab || int64_t(m->tok.vocab_size()) > m->vocab)
    return ek::fail(EK_ERR_MANIFEST, dir + ": prefill and decode logits and the tokenizer disagree on the vocabulary "
                                           "size (" + std::to_string(vocab) + ", " + std::to_string(m->vocab) + ", " +
                                           std::to_string(m->tok.vocab_size()) + ")");
  m->eos = m->tok.token_to_id("<|endoftext|>");
  if (m->in_place) {  // zero the shared cache once: the runtime does not promise zeroed buffers
    int ni = 0, no = 0;
    const ek_tensor_info *in = nullptr, *outs = nullptr;
    if (ek_method_signature(m->art, "reset", &ni, &in, &no, &outs) != EK_OK || ni != 1 || in[0].dtype != EK_I64)
      return ek::fail(EK_ERR_NO_METHOD, dir + ": an in-place-cache LLM needs a 'reset' method (int64 [1] input)");
    int64_t zero = 0;
    ek_tensor t{in[0].name, EK_I64, 1, {1}, &zero, sizeof zero};
    std::vector<ek_tensor> o(size_t(no > 0 ? no : 1));
    if (ek_status s = ek_run(m->art, "reset", &t, 1, o.data(), no)) return s;
  }
  *out = m.release();
  return EK_OK;
}

// One prefill or decode call: `tokens` (1 x len) at `start`; returns the logits (1 x len x vocab).
ek_status step(ek_llm *m, const char *method, const ek_llm::Outputs &where, std::vector<int64_t> &tokens,
               int64_t start, const float **logits) {
  ek_tensor in[4] = {};
  in[0] = ek_tensor{"tokens", EK_I64, 2, {1, int64_t(tokens.size())}, tokens.data(), tokens.size() * 8};
  in[1] = ek_tensor{"start_pos", EK_I64, 1, {1}, &start, sizeof start};
  int n_in = 2;
  if (!m->in_place) {
    for (int c = 0; c < 2; c++) {
      std::vector<float> &buf = c ? m->v : m->k;
      in[2 + c] = ek_tensor{c ? "v_cache" : "k_cache", EK_F32, int32_t(m->cache_shape.size()), {},
                            buf.data(), buf.size() * sizeof(float)};
      for (size_t d = 0; d < m->cache_shape.size(); d++) in[2 + c].shape[d] = m->cache_shape[d];
    }
    n_in = 4;
  }
  std::vector<ek_tensor> out(size_t(where.count));
  if (ek_status s = ek_run(m->art, method, in, n_in, out.data(), where.count)) return s;
  const ek_tensor &lg = out[size_t(where.logits)];
  size_t want = tokens.size() * size_t(m->vocab) * sizeof(float);
  if (lg.dtype != EK_F32 || lg.nbytes != want)
    return ek::fail(EK_ERR_RUN, std::string(method) + " returned logits of " + std::to_string(lg.nbytes) +
                                    " bytes, expected " + std::to_string(want));
  if (!m->in_place) {  // keep the returned caches: the next ek_run invalidates the runtime's buffers
    for (int c = 0; c < 2; c++) {
      std::vector<float> &buf = c ? m->v : m->k;
      const ek_tensor &o = out[size_t(c ? where.v : where.k)];
      if (o.nbytes != buf.size() * sizeof(float))
        return ek::fail(EK_ERR_RUN, std::string(method) + " returned a KV cache of the wrong size");
      std::memcpy(buf.data(), o.data, o.nbytes);
    }
  }
  *logits = static_cast<const float *>(lg.data);
  return EK_OK;
}

ek_status generate(ek_llm *m, const char *prompt, const ek_sampling *s, char **text_out, ek_llm_stats *stats) {
  if (!m || !prompt || !text_out) return ek::fail(EK_ERR_ARGUMENT, "ek_llm_generate: m, prompt and text_out must not be NULL");
  *text_out = nullptr;
  ek_sampling sp = s ? *s : ek_sampling{0.8f, 40, 0, 64};  // NULL: edgekit generate's defaults
  if (sp.max_new_tokens < 1) return ek::fail(EK_ERR_ARGUMENT, "max_new_tokens must be >= 1, got " + std::to_string(sp.max_new_tokens));
  if (sp.top_k < 0) return ek::fail(EK_ERR_ARGUMENT, "top_k must be >= 0 (0 = no cut), got " + std::to_string(sp.top_k));
  if (!(sp.temperature >= 0)) return ek::fail(EK_ERR_ARGUMENT, "temperature must be >= 0 (0 = greedy)");
  std::vector<int64_t> ids;
  std::string err;
  if (!m->tok.encode(prompt, ids, err)) return ek::fail(EK_ERR_ARGUMENT, "prompt: " + err);
  if (ids.empty()) return ek::fail(EK_ERR_ARGUMENT, "the prompt encodes to no tokens; pass a non-empty prompt");
  if (int64_t(ids.size()) + sp.max_new_tokens > m->max_seq_len)
    return ek::fail(EK_ERR_ARGUMENT, "prompt (" + std::to_string(ids.size()) + " tokens) + max_new_tokens (" +
                                         std::to_string(sp.max_new_tokens) + ") exceeds the model's context of " +
                                         std::to_string(m->max_seq_len) + "; shorten the prompt or lower max_new_tokens");
  if (!m->in_place) {  // a fresh explicit cache per prompt
    size_t n = 1;
    for (int64_t d : m->cache_shape) n *= size_t(d);
    m->k.assign(n, 0.f);
    m->v.assign(n, 0.f);
  }
  ek::Sampler sampler(sp.temperature, sp.top_k, sp.seed);
  const float *logits = nullptr;
  auto t0 = Clock::now();
  std::vector<int64_t> chunk;
  for (size_t start = 0; start < ids.size(); start += size_t(m->prefill_len)) {
    size_t n = std::min(ids.size() - start, size_t(m->prefill_len));
    chunk.assign(size_t(m->prefill_len), 0);  // the padding is masked until decode overwrites it
    std::copy(ids.begin() + long(start), ids.begin() + long(start + n), chunk.begin());
    if (ek_status st = step(m, "prefill", m->prefill_out, chunk, int64_t(start), &logits)) return st;
    logits += (n - 1) * size_t(m->vocab);
  }
  double prefill_s = seconds_since(t0);
  int64_t token = sampler.sample(logits, size_t(m->vocab)), pos = int64_t(ids.size());
  double ttft_s = seconds_since(t0);
  std::vector<int64_t> out_ids, one(1);
  auto t1 = Clock::now();
  while (token != m->eos) {
    out_ids.push_back(token);
    if (int(out_ids.size()) >= sp.max_new_tokens) break;
    one[0] = token;
    if (ek_status st = step(m, "decode", m->decode_out, one, pos, &logits)) return st;
    token = sampler.sample(logits, size_t(m->vocab));
    pos++;
  }
  double decode_s = seconds_since(t1);
  std::string text = m->tok.decode(out_ids);
  char *buf = static_cast<char *>(std::malloc(text.size() + 1));
  if (!buf) return ek::fail(EK_ERR_NOMEM, "ek_llm_generate: out of memory");
  std::memcpy(buf, text.c_str(), text.size() + 1);
  *text_out = buf;
  if (stats) {
    stats->ttft_ms = ttft_s * 1e3;
    stats->prefill_tok_s = prefill_s > 0 ? double(ids.size()) / prefill_s : 0;
    stats->decode_tok_s = decode_s > 0 ? double(out_ids.size()) / decode_s : 0;
    stats->prompt_tokens = int(ids.size());
    stats->new_tokens = int(out_ids.size());
  }
  return EK_OK;
}

}  // namespace

extern "C" {

EK_API ek_status ek_llm_open(const char *artifact_dir, const ek_options *opts, ek_llm **out) {
  try {
    return open_llm(artifact_dir, opts, out);
  } catch (const std::bad_alloc &) {
    return ek::fail(EK_ERR_NOMEM, "ek_llm_open: out of memory");
  } catch (const std::exception &e) {
    return ek::fail(EK_ERR_LOAD, std::string("ek_llm_open: ") + e.what());
  } catch (...) {
    return ek::fail(EK_ERR_LOAD, "ek_llm_open: unknown error");
  }
}

EK_API ek_status ek_llm_generate(ek_llm *m, const char *prompt, const ek_sampling *s, char **text_out,
                                 ek_llm_stats *stats) {
  try {
    return generate(m, prompt, s, text_out, stats);
  } catch (const std::bad_alloc &) {
    return ek::fail(EK_ERR_NOMEM, "ek_llm_generate: out of memory");
  } catch (const std::exception &e) {
    return ek::fail(EK_ERR_RUN, std::string("ek_llm_generate: ") + e.what());
  } catch (...) {
    return ek::fail(EK_ERR_RUN, "ek_llm_generate: unknown error");
  }
}

EK_API void ek_llm_close(ek_llm *m) { delete m; }  // ek_free (api.cpp) frees text_out: std::free

}  // extern "C"
