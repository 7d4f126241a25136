// The C API: handles, thread-local errors, input checks; backends do the running.
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>

#include "internal.hpp"

namespace {
thread_local std::string g_last_error;
}

namespace ek {
ek_status fail(ek_status s, const std::string &message) {
  try { g_last_error = message; } catch (...) { }  // out of memory: keep the old message
  return s;
}
}  // namespace ek

struct ek_artifact {
  std::string dir;
  ek::Manifest manifest;
  std::map<std::string, std::unique_ptr<ek::Backend>> backends;  // one per model file
};

using namespace ek;

namespace {

const char *const kStatusNames[] = {"EK_OK", "EK_ERR_ARGUMENT", "EK_ERR_IO", "EK_ERR_MANIFEST", "EK_ERR_CHECKSUM",
                                    "EK_ERR_VERSION", "EK_ERR_BACKEND_UNAVAILABLE", "EK_ERR_LOAD", "EK_ERR_NO_METHOD",
                                    "EK_ERR_INPUT", "EK_ERR_RUN", "EK_ERR_NOMEM"};
const char *const kDtypeNames[] = {"float32", "float16", "int64", "int32", "int8", "uint8", "bool", "float64", "int16"};
const size_t kDtypeSizes[] = {4, 2, 8, 4, 1, 1, 1, 8, 2};

const MethodSig *find_method(const ek_artifact *a, const char *name) {
  const auto &ms = a->manifest.methods;
  if (!name) {
    if (ms.size() == 1) return &ms[0];
    name = "forward";
  }
  for (const auto &m : ms)
    if (m.name == name) return &m;
  return nullptr;
}

std::string method_list(const ek_artifact *a) {
  std::string s;
  for (const auto &m : a->manifest.methods) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

std::string shape_str(const int64_t *shape, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + "]";
}

// Orders `inputs` by the signature and checks dtype, rank, concrete and symbolic dims, and byte size.
ek_status order_inputs(const MethodSig &m, const ek_tensor *inputs, int n, std::vector<ek_tensor> &ordered) {
  if (n != (int)m.inputs.size())
    return fail(EK_ERR_INPUT, "method '" + m.name + "' takes " + std::to_string(m.inputs.size()) + " input(s), given " +
                                  std::to_string(n));
  if (n && !inputs) return fail(EK_ERR_ARGUMENT, "inputs is NULL");
  ordered.assign(n, ek_tensor{});
  std::vector<bool> seen(n, false);
  for (int i = 0; i < n; ++i) {
    int slot = i;
    if (inputs[i].name) {
      slot = -1;
      for (int k = 0; k < n; ++k)
        if (m.inputs[k].name == inputs[i].name) slot = k;
      if (slot < 0) {
        std::string names;
        for (const auto &t : m.inputs) names += (names.empty() ? "" : ", ") + t.name;
        return fail(EK_ERR_INPUT, std::string("unknown input '") + inputs[i].name + "'; method '" + m.name +
                                      "' takes: " + names);
      }
    }
    if (seen[slot]) return fail(EK_ERR_INPUT, "input '" + m.inputs[slot].name + "' given twice");
    seen[slot] = true;
    ordered[slot] = inputs[i];
  }
  std::map<std::string, int64_t> bound;  // a symbolic dimension has one size across the call
  for (int k = 0; k < n; ++k) {
    const TensorSig &sig = m.inputs[k];
    const ek_tensor &t = ordered[k];
    const std::string who = "input '" + sig.name + "'";
    if ((unsigned)t.dtype > EK_I16) return fail(EK_ERR_INPUT, who + ": unknown dtype value " + std::to_string(t.dtype));
    if (t.dtype != sig.dtype)
      return fail(EK_ERR_INPUT, who + " must be " + kDtypeNames[sig.dtype] + ", given " + kDtypeNames[t.dtype]);
    if (t.rank != (int32_t)sig.shape.size())
      return fail(EK_ERR_INPUT, who + " must have rank " + std::to_string(sig.shape.size()) + ", given " +
                                    std::to_string(t.rank));
    size_t count = 1;
    for (int d = 0; d < t.rank; ++d) {
      if (t.shape[d] < 0) return fail(EK_ERR_INPUT, who + ": negative dimension");
      if (sig.shape[d] >= 0 && t.shape[d] != sig.shape[d])
        return fail(EK_ERR_INPUT, who + " must have shape " + shape_str(sig.shape.data(), (int)sig.shape.size()) +
                                      ", given " + shape_str(t.shape, t.rank) + " (dimension " + std::to_string(d) +
                                      " must be " + std::to_string(sig.shape[d]) + ")");
      if (!sig.symbols[d].empty()) {
        auto it = bound.emplace(sig.symbols[d], t.shape[d]).first;
        if (it->second != t.shape[d])
          return fail(EK_ERR_INPUT, who + ": dimension " + std::to_string(d) + " '" + sig.symbols[d] + "' is " +
                                        std::to_string(t.shape[d]) + " here but " + std::to_string(it->second) +
                                        " elsewhere in this call");
      }
      if (t.shape[d] && count > SIZE_MAX / (size_t)t.shape[d]) return fail(EK_ERR_INPUT, who + ": shape too large");
      count *= (size_t)t.shape[d];
    }
    if (count > SIZE_MAX / kDtypeSizes[t.dtype]) return fail(EK_ERR_INPUT, who + ": shape too large");
    if (t.nbytes != count * kDtypeSizes[t.dtype])
      return fail(EK_ERR_INPUT, who + " with shape " + shape_str(t.shape, t.rank) + " needs " +
                                    std::to_string(count * kDtypeSizes[t.dtype]) + " bytes, given nbytes=" +
                                    std::to_string(t.nbytes));
    if (count && !t.data) return fail(EK_ERR_INPUT, who + ": data is NULL");
  }
  return EK_OK;
}

}  // namespace

extern "C" {

const char *ek_version(void) { return EK_RUNTIME_VERSION; }

const char *ek_status_name(ek_status s) {
  return (unsigned)s <= EK_ERR_NOMEM ? kStatusNames[s] : "EK_ERR_UNKNOWN";
}

const char *ek_last_error(void) { return g_last_error.c_str(); }

size_t ek_dtype_size(ek_dtype t) { return (unsigned)t <= EK_I16 ? kDtypeSizes[t] : 0; }

const char *ek_dtype_name(ek_dtype t) { return (unsigned)t <= EK_I16 ? kDtypeNames[t] : "unknown"; }

ek_status ek_open(const char *artifact_dir, const ek_options *opts, ek_artifact **out) {
  if (!out) return fail(EK_ERR_ARGUMENT, "out is NULL");
  *out = nullptr;
  if (!artifact_dir || !*artifact_dir) return fail(EK_ERR_ARGUMENT, "artifact_dir is NULL or empty");
  if (opts && opts->threads < 0) return fail(EK_ERR_ARGUMENT, "threads must be >= 0 (0 = all cores)");
  try {
    std::unique_ptr<ek_artifact> a(new ek_artifact());
    a->dir = artifact_dir;
    while (a->dir.size() > 1 && a->dir.back() == '/') a->dir.pop_back();
    bool verify = opts ? opts->verify_checksums != 0 : true;
    if (ek_status s = read_manifest(a->dir, verify, a->manifest)) return s;
    const std::string &target = a->manifest.target;
    if (target != "executorch" && target != "tflite")
      return fail(EK_ERR_BACKEND_UNAVAILABLE, a->dir + " targets '" + target +
                                                  "'; this runtime runs executorch (.pte) and tflite (.tflite)");
    for (const auto &m : a->manifest.methods) {
      if (a->backends.count(m.file)) continue;
      BackendConfig cfg;
      cfg.model_path = a->dir + "/" + m.file;
      cfg.file = m.file;
      cfg.threads = opts ? opts->threads : 0;
      cfg.methods = &a->manifest.methods;
      if (const char *ops = std::getenv("EDGEKIT_ET_OPS_LIB")) cfg.executorch_ops_lib = ops;
      std::unique_ptr<Backend> b;
      ek_status s = target == "executorch" ? open_executorch(cfg, b) : open_litert(cfg, b);
      if (s) return s;
      a->backends[m.file] = std::move(b);
    }
    *out = a.release();
    return EK_OK;
  } catch (const std::bad_alloc &) {
    return fail(EK_ERR_NOMEM, "out of memory while opening the artifact");
  } catch (const std::exception &e) {
    return fail(EK_ERR_LOAD, std::string("cannot open the artifact: ") + e.what());
  } catch (...) {
    return fail(EK_ERR_LOAD, "cannot open the artifact: unknown exception");
  }
}

void ek_close(ek_artifact *a) {
  try { delete a; } catch (...) { }
}

const char *ek_target(const ek_artifact *a) { return a ? a->manifest.target.c_str() : nullptr; }

int ek_method_count(const ek_artifact *a) { return a ? (int)a->manifest.methods.size() : 0; }

const char *ek_method_name(const ek_artifact *a, int i) {
  if (!a || i < 0 || i >= (int)a->manifest.methods.size()) return nullptr;
  return a->manifest.methods[i].name.c_str();
}

ek_status ek_method_signature(const ek_artifact *a, const char *method, int *n_inputs, const ek_tensor_info **inputs,
                              int *n_outputs, const ek_tensor_info **outputs) {
  if (!a) return fail(EK_ERR_ARGUMENT, "artifact is NULL");
  const MethodSig *m = find_method(a, method);
  if (!m) return fail(EK_ERR_NO_METHOD, std::string("no method '") + (method ? method : "forward") + "'; the artifact has: " + method_list(a));
  if (n_inputs) *n_inputs = (int)m->c_inputs.size();
  if (inputs) *inputs = m->c_inputs.data();
  if (n_outputs) *n_outputs = (int)m->c_outputs.size();
  if (outputs) *outputs = m->c_outputs.data();
  return EK_OK;
}

ek_status ek_run(ek_artifact *a, const char *method, const ek_tensor *inputs, int n_inputs, ek_tensor *outputs,
                 int n_outputs) {
  if (!a) return fail(EK_ERR_ARGUMENT, "artifact is NULL");
  if (n_outputs < 0 || (n_outputs && !outputs)) return fail(EK_ERR_ARGUMENT, "outputs is NULL or n_outputs < 0");
  try {
    const MethodSig *m = find_method(a, method);
    if (!m) return fail(EK_ERR_NO_METHOD, std::string("no method '") + (method ? method : "forward") + "'; the artifact has: " + method_list(a));
    if (n_outputs > (int)m->outputs.size())
      return fail(EK_ERR_ARGUMENT, "method '" + m->name + "' has " + std::to_string(m->outputs.size()) +
                                       " output(s); n_outputs is " + std::to_string(n_outputs));
    std::vector<ek_tensor> ordered;
    if (ek_status s = order_inputs(*m, inputs, n_inputs, ordered)) return s;
    return a->backends.at(m->file)->run(*m, ordered.data(), outputs, n_outputs);
  } catch (const std::bad_alloc &) {
    return fail(EK_ERR_NOMEM, "out of memory while running");
  } catch (const std::exception &e) {
    return fail(EK_ERR_RUN, std::string("run failed: ") + e.what());
  } catch (...) {
    return fail(EK_ERR_RUN, "run failed: unknown exception");
  }
}

void ek_free(void *p) { std::free(p); }

}  // extern "C"
