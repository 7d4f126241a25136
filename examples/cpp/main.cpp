// edgekit_app: runs any exported edgekit artifact through the C API (edgekit_runtime.h only).
//
//   edgekit_app ARTIFACT_DIR [--runs N] [--threads N] [--min-cosine C]
//       runs reference_io.npz's inputs, compares every output with the stored reference
//       (cosine, max abs diff), prints the median latency of N runs
//   edgekit_app LLM_ARTIFACT_DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--seed S]
//       generates text with `edgekit generate`'s defaults (temperature 0.8, top-k 40, seed 0; 0 = greedy):
//       prompt + text on stdout, as `edgekit generate` prints it, and the same text for the same flags
//
// Exit status: 0 ok, 1 a runtime error (the C API's status and message are printed), 2 bad usage,
// 3 an output below --min-cosine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "edgekit_runtime.h"
#include "npz.h"

namespace {

struct Args {
  std::string dir, prompt = "The for statement", method;
  int runs = 20, threads = 0, max_new_tokens = 64, top_k = 40;  // sampling defaults: `edgekit generate`'s
  float temperature = 0.8f;
  unsigned long long seed = 0;
  double min_cosine = -1;  // < 0: report only
};

int usage(const char *why) {
  std::fprintf(stderr,
               "%s\nusage: edgekit_app ARTIFACT_DIR [--runs N] [--threads N] [--method NAME] [--min-cosine C]\n"
               "       edgekit_app LLM_ARTIFACT_DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] "
               "[--top-k K] [--seed S] [--threads N]\n",
               why);
  return 2;
}

int api_error(const char *what, ek_status s) {
  std::fprintf(stderr, "error: %s: %s: %s\n", what, ek_status_name(s), ek_last_error());
  return 1;
}

bool dtype_of(const std::string &descr, ek_dtype &t) {
  static const std::map<std::string, ek_dtype> m = {
      {"<f4", EK_F32}, {"<f2", EK_F16}, {"<f8", EK_F64}, {"<i8", EK_I64}, {"<i4", EK_I32},
      {"<i2", EK_I16}, {"|i1", EK_I8},  {"|u1", EK_U8},  {"|b1", EK_BOOL}};
  auto it = m.find(descr);
  if (it == m.end()) return false;
  t = it->second;
  return true;
}

double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1F, f = h & 0x3FF;
  double v = e == 0 ? std::ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : std::ldexp(f + 1024, e - 25);
  return h & 0x8000 ? -v : v;
}

// Any element type -> double, for the comparison.
std::vector<double> to_double(ek_dtype t, const void *data, size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; i++) {
    switch (t) {
      case EK_F32: v[i] = static_cast<const float *>(data)[i]; break;
      case EK_F64: v[i] = static_cast<const double *>(data)[i]; break;
      case EK_F16: v[i] = half_to_double(static_cast<const uint16_t *>(data)[i]); break;
      case EK_I64: v[i] = double(static_cast<const int64_t *>(data)[i]); break;
      case EK_I32: v[i] = static_cast<const int32_t *>(data)[i]; break;
      case EK_I16: v[i] = static_cast<const int16_t *>(data)[i]; break;
      case EK_I8: v[i] = static_cast<const int8_t *>(data)[i]; break;
      case EK_U8: case EK_BOOL: v[i] = static_cast<const uint8_t *>(data)[i]; break;
    }
  }
  return v;
}

std::string shape_str(const int64_t *shape, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int run_llm(const Args &a, const ek_options &opts) {
  ek_llm *m = nullptr;
  if (ek_status s = ek_llm_open(a.dir.c_str(), &opts, &m)) return api_error("ek_llm_open", s);
  ek_sampling sp{a.temperature, a.top_k, a.seed, a.max_new_tokens};
  char *text = nullptr;
  ek_llm_stats st{};
  ek_status s = ek_llm_generate(m, a.prompt.c_str(), &sp, &text, &st);
  if (s) {
    ek_llm_close(m);
    return api_error("ek_llm_generate", s);
  }
  std::printf("%s%s\n", a.prompt.c_str(), text);
  std::string how = a.temperature <= 0 ? std::string("greedy")
                                       : "temperature " + std::to_string(a.temperature).substr(0, 4) + ", top-k " +
                                             std::to_string(a.top_k) + ", seed " + std::to_string(a.seed);
  std::fprintf(stderr, "[%d prompt tokens, %d new tokens: time to first token %.2f ms, prefill %.1f tok/s, "
               "decode %.1f tok/s; %s]\n", st.prompt_tokens, st.new_tokens, st.ttft_ms, st.prefill_tok_s,
               st.decode_tok_s, how.c_str());
  ek_free(text);
  ek_llm_close(m);
  return 0;
}

int run_reference(ek_artifact *art, const Args &a) {
  // The method: --method, else "forward", else the only one.
  std::string method = a.method;
  if (method.empty()) {
    for (int i = 0; i < ek_method_count(art); i++)
      if (std::strcmp(ek_method_name(art, i), "forward") == 0) method = "forward";
    if (method.empty()) method = ek_method_name(art, 0);
  }
  int ni = 0, no = 0;
  const ek_tensor_info *in = nullptr, *out = nullptr;
  if (ek_status s = ek_method_signature(art, method.c_str(), &ni, &in, &no, &out))
    return api_error("ek_method_signature", s);
  std::map<std::string, npz::Array> ref;
  try {
    ref = npz::load(a.dir + "/reference_io.npz");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::vector<ek_tensor> inputs(static_cast<size_t>(ni));
  for (int i = 0; i < ni; i++) {
    auto it = ref.find(std::string("in/") + in[i].name);
    if (it == ref.end()) {
      std::fprintf(stderr, "error: reference_io.npz has no input 'in/%s'\n", in[i].name);
      return 1;
    }
    ek_tensor &t = inputs[size_t(i)];
    if (!dtype_of(it->second.descr, t.dtype) || it->second.shape.size() > EK_MAX_RANK) {
      std::fprintf(stderr, "error: input %s: unsupported dtype %s\n", in[i].name, it->second.descr.c_str());
      return 1;
    }
    t.name = in[i].name;
    t.rank = int32_t(it->second.shape.size());
    std::copy(it->second.shape.begin(), it->second.shape.end(), t.shape);
    t.data = it->second.data.data();
    t.nbytes = it->second.data.size();
  }
  std::vector<ek_tensor> outputs(static_cast<size_t>(no));
  std::vector<double> ms;
  for (int r = 0; r <= a.runs; r++) {  // run 0 warms up and is not timed
    auto t0 = std::chrono::steady_clock::now();
    if (ek_status s = ek_run(art, method.c_str(), inputs.data(), ni, outputs.data(), no))
      return api_error("ek_run", s);
    double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r) ms.push_back(t);
  }
  int rc = 0;
  for (int i = 0; i < no; i++) {
    const ek_tensor &o = outputs[size_t(i)];
    auto it = ref.find(std::string("out/") + out[i].name);
    if (it == ref.end()) {
      std::printf("output %s: shape %s, no reference stored\n", out[i].name, shape_str(o.shape, o.rank).c_str());
      continue;
    }
    ek_dtype rt;
    size_t n = it->second.count();
    if (!dtype_of(it->second.descr, rt) || ek_dtype_size(o.dtype) * n != o.nbytes) {
      std::printf("output %s: shape %s, reference %s has a different size or dtype\n", out[i].name,
                  shape_str(o.shape, o.rank).c_str(), it->second.descr.c_str());
      rc = 3;
      continue;
    }
    std::vector<double> got = to_double(o.dtype, o.data, n), want = to_double(rt, it->second.data.data(), n);
    double dot = 0, ng = 0, nw = 0, maxdiff = 0;
    for (size_t k = 0; k < n; k++) {
      dot += got[k] * want[k];
      ng += got[k] * got[k];
      nw += want[k] * want[k];
      maxdiff = std::max(maxdiff, std::fabs(got[k] - want[k]));
    }
    double cosine = ng == 0 && nw == 0 ? 1.0 : dot / std::sqrt(ng * nw);
    std::printf("output %s: shape %s cosine %.8f max_abs_diff %.3g\n", out[i].name,
                shape_str(o.shape, o.rank).c_str(), cosine, maxdiff);
    if (a.min_cosine >= 0 && !(cosine >= a.min_cosine)) rc = 3;
  }
  std::sort(ms.begin(), ms.end());
  double med = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  std::printf("latency: median %.3f ms over %zu runs (min %.3f, max %.3f), threads %d\n", med, ms.size(),
              ms.front(), ms.back(), a.threads);
  if (rc) std::printf("FAILED: an output is below cosine %.8f or does not match its reference\n", a.min_cosine);
  return rc;
}

}  // namespace

int main(int argc, char **argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    bool has = i + 1 < argc;
    auto num = [&](const char *name) -> const char * {
      if (!has) {
        std::fprintf(stderr, "%s needs a value\n", name);
        std::exit(usage("bad arguments"));
      }
      return argv[++i];
    };
    if (k == "--runs") a.runs = std::atoi(num("--runs"));
    else if (k == "--threads") a.threads = std::atoi(num("--threads"));
    else if (k == "--method") a.method = num("--method");
    else if (k == "--min-cosine") a.min_cosine = std::atof(num("--min-cosine"));
    else if (k == "--prompt") a.prompt = num("--prompt");
    else if (k == "--max-new-tokens") a.max_new_tokens = std::atoi(num("--max-new-tokens"));
    else if (k == "--temperature") a.temperature = float(std::atof(num("--temperature")));
    else if (k == "--top-k") a.top_k = std::atoi(num("--top-k"));
    else if (k == "--seed") a.seed = std::strtoull(num("--seed"), nullptr, 10);
    else if (k == "-h" || k == "--help") return usage("edgekit_app: run an edgekit artifact with the C API");
    else if (!k.empty() && k[0] == '-') return usage(("unknown option " + k).c_str());
    else if (a.dir.empty()) a.dir = k;
    else return usage("one artifact directory only");
  }
  if (a.dir.empty()) return usage("no artifact directory given");
  if (a.runs < 1) return usage("--runs must be >= 1");
  ek_options opts{a.threads, 1};
  ek_artifact *art = nullptr;
  if (ek_status s = ek_open(a.dir.c_str(), &opts, &art)) return api_error("ek_open", s);
  bool llm = false, prefill = false;
  for (int i = 0; i < ek_method_count(art); i++) {
    llm |= std::strcmp(ek_method_name(art, i), "decode") == 0;
    prefill |= std::strcmp(ek_method_name(art, i), "prefill") == 0;
  }
  std::fprintf(stderr, "edgekit_runtime %s: %s (%s, %d method%s)\n", ek_version(), a.dir.c_str(), ek_target(art),
               ek_method_count(art), ek_method_count(art) == 1 ? "" : "s");
  if (llm && prefill) {  // an LLM: the helper opens it itself (tokenizer, cache)
    ek_close(art);
    return run_llm(a, opts);
  }
  int rc = run_reference(art, a);
  ek_close(art);
  return rc;
}
