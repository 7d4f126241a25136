// ExecuTorch backend (plugin library libedgekit_runtime_executorch.so): runs a .pte through the executorch
// wheel's libexecutorch.so with the XNNPACK delegate and the optimized portable kernels, plus edgekit's
// compressed-weight kernels (libedgekit_executorch_ops.so) when the program calls edgekit:: ops.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <executorch/extension/module/module.h>
#include <executorch/runtime/platform/runtime.h>

#include "internal.hpp"

// libexecutorch_threadpool.so exports these; the wheel ships no header for them.
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool *get_threadpool();
}  // namespace executorch::extension::threadpool

namespace ek {
namespace {

namespace et = executorch::runtime;
using executorch::aten::ScalarType;
using executorch::extension::Module;

bool to_scalar(ek_dtype t, ScalarType &s) {
  switch (t) {
    case EK_F32: s = ScalarType::Float; return true;
    case EK_F16: s = ScalarType::Half; return true;
    case EK_I64: s = ScalarType::Long; return true;
    case EK_I32: s = ScalarType::Int; return true;
    case EK_I8: s = ScalarType::Char; return true;
    case EK_U8: s = ScalarType::Byte; return true;
    case EK_BOOL: s = ScalarType::Bool; return true;
    case EK_F64: s = ScalarType::Double; return true;
    case EK_I16: s = ScalarType::Short; return true;
  }
  return false;
}

bool from_scalar(ScalarType s, ek_dtype &t) {
  switch (s) {
    case ScalarType::Float: t = EK_F32; return true;
    case ScalarType::Half: t = EK_F16; return true;
    case ScalarType::Long: t = EK_I64; return true;
    case ScalarType::Int: t = EK_I32; return true;
    case ScalarType::Char: t = EK_I8; return true;
    case ScalarType::Byte: t = EK_U8; return true;
    case ScalarType::Bool: t = EK_BOOL; return true;
    case ScalarType::Double: t = EK_F64; return true;
    case ScalarType::Short: t = EK_I16; return true;
    default: return false;
  }
}

std::string err_str(et::Error e) { return std::string(et::to_string(e)); }

// Whether the program mentions edgekit:: ops (a byte search over the mapped file, no copy).
bool mentions_edgekit_ops(const std::string &path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool found = false;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    void *p = mmap(nullptr, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      found = memmem(p, (size_t)st.st_size, "edgekit::", 9) != nullptr;
      munmap(p, (size_t)st.st_size);
    }
  }
  close(fd);
  return found;
}

ek_status set_kernel_threads(void *ops_handle, int threads) {
  if (threads <= 0) return EK_OK;
  auto set = reinterpret_cast<void (*)(int)>(dlsym(ops_handle, "ek_set_default_threads"));
  if (set) set(threads);
  return EK_OK;
}

// Registers edgekit's kernels once per process (their static initialisers register into libexecutorch.so).
// The library is opened by its path: opening the same file again (e.g. from Python's ctypes) is harmless,
// registering the same op from a second file would abort.
// threads > 0 sizes the kernels' own pool (ek_set_default_threads, found through the ops library's
// dependency on libedgekit_kernels.so), which runs their GEMVs like ExecuTorch's pool runs XNNPACK's.
// libedgekit_executorch_ops.so once loaded (never closed: its ops stay registered); read by failing runs
std::atomic<void *> ops_handle{nullptr};

ek_status load_edgekit_ops(const std::string &configured, int threads) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (void *loaded = ops_handle.load()) return set_kernel_threads(loaded, threads);
  std::string path = configured.empty() ? std::string(EK_DEFAULT_OPS_LIB) : configured;
  if (path.empty() || access(path.c_str(), R_OK) != 0)
    return fail(EK_ERR_BACKEND_UNAVAILABLE,
                "the program calls edgekit:: kernels but their library " + (path.empty() ? std::string("(none configured)") : path) +
                    " is missing (run `make native` in the edgekit checkout, or set EDGEKIT_ET_OPS_LIB)");
  // The kernels library prefixes its own error/free functions (ek_kernels_last_error, ek_matrix_free), so
  // nothing it exports clashes with this library's C API in an app's global symbol scope.
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *e = dlerror();
    return fail(EK_ERR_BACKEND_UNAVAILABLE, "cannot load " + path + ": " + (e ? e : "unknown error"));
  }
  ops_handle.store(handle);
  return set_kernel_threads(handle, threads);
}

// This thread's last failed edgekit:: op check ("" if none, or no edgekit ops loaded), taken (cleared).
std::string edgekit_op_error() {
  void *handle = ops_handle.load();
  if (!handle) return "";
  auto take = reinterpret_cast<const char *(*)()>(dlsym(handle, "edgekit_ops_take_error"));
  const char *msg = take ? take() : nullptr;
  return msg ? msg : "";
}

// the session's threads: the configured count, else the size of ExecuTorch's pool (its default: all cores)
int threads_of(const BackendConfig &cfg) {
  if (cfg.threads > 0) return cfg.threads;
  auto *pool = executorch::extension::threadpool::get_threadpool();
  return pool ? static_cast<int>(pool->get_thread_count()) : 1;
}

class ExecuTorchBackend : public Backend {
 public:
  ek_status open(const BackendConfig &cfg) {
    path_ = cfg.model_path;
    std::vector<const MethodSig *> mine;
    for (const MethodSig &m : *cfg.methods)
      if (m.file == cfg.file) mine.push_back(&m);
    if (mentions_edgekit_ops(path_))
      if (ek_status s = load_edgekit_ops(cfg.executorch_ops_lib, threads_of(cfg))) return s;
    // Methods of one program share activation and mutable-buffer arenas: required by LLM programs exported
    // with share_mutable_buffers (one KV cache for prefill/decode/reset); harmless for single-method ones.
    module_.reset(new Module(path_, Module::LoadMode::Mmap, nullptr, nullptr, nullptr, mine.size() > 1));
    // InternalConsistency runs the flatbuffer verifier over the whole program: a corrupted file is an error
    // here instead of an out-of-bounds read later.
    et::Error e = module_->load(et::Program::Verification::InternalConsistency);
    if (e != et::Error::Ok)
      return fail(EK_ERR_LOAD, path_ + " is not a loadable ExecuTorch program (" + err_str(e) +
                                   "): the file is corrupted, truncated or from an incompatible executorch");
    auto names = module_->method_names();
    if (!names.ok()) return fail(EK_ERR_LOAD, path_ + ": cannot list methods (" + err_str(names.error()) + ")");
    for (const MethodSig *m : mine) {
      if (!names->count(m->name))
        return fail(EK_ERR_LOAD, path_ + " has no method '" + m->name + "' that manifest.json lists");
      auto meta = module_->method_meta(m->name);
      if (!meta.ok()) return fail(EK_ERR_LOAD, path_ + ": method '" + m->name + "' metadata (" + err_str(meta.error()) + ")");
      if (meta->num_inputs() != m->inputs.size())
        return fail(EK_ERR_MANIFEST, path_ + ": method '" + m->name + "' takes " + std::to_string(meta->num_inputs()) +
                                         " inputs; manifest.json lists " + std::to_string(m->inputs.size()));
      for (size_t i = 0; i < m->inputs.size(); ++i) {
        auto tag = meta->input_tag(i);
        if (!tag.ok() || *tag != et::Tag::Tensor)
          return fail(EK_ERR_LOAD, path_ + ": input " + std::to_string(i) + " of '" + m->name + "' is not a tensor");
        auto info = meta->input_tensor_meta(i);
        ScalarType want;
        to_scalar(m->inputs[i].dtype, want);
        if (!info.ok() || info->scalar_type() != want)
          return fail(EK_ERR_MANIFEST, path_ + ": input '" + m->inputs[i].name + "' of '" + m->name +
                                           "' has another dtype in the program than manifest.json's " +
                                           ek_dtype_name(m->inputs[i].dtype));
      }
      e = module_->load_method(m->name);
      if (e != et::Error::Ok)
        return fail(EK_ERR_LOAD, path_ + ": cannot load method '" + m->name + "' (" + err_str(e) +
                                     "; an OperatorMissing error means a kernel library is not loaded)");
    }
    return EK_OK;
  }

  ek_status run(const MethodSig &m, const ek_tensor *inputs, ek_tensor *outputs, int n_outputs) override {
    const size_t n = m.inputs.size();
    std::vector<std::vector<executorch::aten::SizesType>> sizes(n);
    std::vector<std::vector<executorch::aten::DimOrderType>> orders(n);
    std::vector<std::vector<executorch::aten::StridesType>> strides(n);
    std::vector<std::unique_ptr<executorch::aten::TensorImpl>> impls;
    std::vector<et::EValue> values;
    values.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const ek_tensor &t = inputs[i];
      ScalarType st;
      to_scalar(t.dtype, st);
      for (int d = 0; d < t.rank; ++d) {
        if (t.shape[d] > INT32_MAX) return fail(EK_ERR_INPUT, "input '" + m.inputs[i].name + "': dimension too large");
        sizes[i].push_back((executorch::aten::SizesType)t.shape[d]);
        orders[i].push_back((executorch::aten::DimOrderType)d);
      }
      strides[i].assign(t.rank, 1);
      for (int d = t.rank - 2; d >= 0; --d) strides[i][d] = strides[i][d + 1] * sizes[i][d + 1];
      impls.emplace_back(new executorch::aten::TensorImpl(st, t.rank, sizes[i].data(), t.data, orders[i].data(),
                                                         strides[i].data()));
      values.emplace_back(executorch::aten::Tensor(impls.back().get()));
    }
    auto result = module_->execute(m.name, values);
    if (!result.ok()) {
      // a failed edgekit:: op check says why (ExecuTorch only logs it): e.g. arrays packed by an edgekit with
      // another layout, which only re-exporting fixes (EK_ERR_LOAD: the backend refuses this program)
      const std::string op = edgekit_op_error();
      if (!op.empty())
        return fail(op.find("re-export") != std::string::npos ? EK_ERR_LOAD : EK_ERR_RUN,
                    "method '" + m.name + "' failed (" + err_str(result.error()) + "): " + op);
      return fail(result.error() == et::Error::InvalidArgument ? EK_ERR_INPUT : EK_ERR_RUN,
                  "method '" + m.name + "' failed (" + err_str(result.error()) + ")");
    }
    outs_ = std::move(*result);
    if ((size_t)n_outputs > outs_.size())
      return fail(EK_ERR_RUN, "method '" + m.name + "' returned " + std::to_string(outs_.size()) + " outputs");
    scalars_.assign(outs_.size(), 0);
    for (int i = 0; i < n_outputs; ++i) {
      ek_tensor &o = outputs[i];
      std::memset(&o, 0, sizeof o);
      o.name = i < (int)m.outputs.size() ? m.outputs[i].name.c_str() : nullptr;
      const et::EValue &v = outs_[i];
      if (v.isTensor()) {
        const auto &t = v.toTensor();
        if (!from_scalar(t.scalar_type(), o.dtype) || t.dim() > EK_MAX_RANK)
          return fail(EK_ERR_RUN, "output " + std::to_string(i) + " of '" + m.name + "' has an unsupported dtype or rank");
        o.rank = (int32_t)t.dim();
        for (int d = 0; d < o.rank; ++d) o.shape[d] = t.size(d);
        o.data = const_cast<void *>(t.const_data_ptr());
        o.nbytes = t.nbytes();
      } else if (v.isInt() || v.isDouble() || v.isBool()) {  // scalar outputs: a rank-0 tensor
        int64_t *slot = &scalars_[i];
        if (v.isInt()) { *slot = v.toInt(); o.dtype = EK_I64; o.nbytes = 8; }
        else if (v.isDouble()) { double d = v.toDouble(); std::memcpy(slot, &d, 8); o.dtype = EK_F64; o.nbytes = 8; }
        else { *reinterpret_cast<uint8_t *>(slot) = v.toBool(); o.dtype = EK_BOOL; o.nbytes = 1; }
        o.data = slot;
      } else {
        return fail(EK_ERR_RUN, "output " + std::to_string(i) + " of '" + m.name + "' is not a tensor or scalar");
      }
    }
    return EK_OK;
  }

 private:
  std::string path_;
  std::unique_ptr<Module> module_;
  std::vector<et::EValue> outs_;   // keeps the output tensors' metadata alive until the next run
  std::vector<int64_t> scalars_;
};

}  // namespace
}  // namespace ek

extern "C" EK_API ek_status ek_executorch_backend_create(const ek::BackendConfig *cfg, ek::Backend **out) {
  using namespace ek;
  try {
    static std::once_flag init;
    std::call_once(init, [] { executorch::runtime::runtime_init(); });
    if (cfg->threads > 0) {  // the pool cannot be resized safely while a program uses it: only when it differs
      auto *pool = executorch::extension::threadpool::get_threadpool();
      if (pool && pool->get_thread_count() != (size_t)cfg->threads) pool->_unsafe_reset_threadpool((uint32_t)cfg->threads);
    }
    std::unique_ptr<ExecuTorchBackend> b(new ExecuTorchBackend());
    if (ek_status s = b->open(*cfg)) return s;
    *out = b.release();
    return EK_OK;
  } catch (const std::bad_alloc &) {
    return fail(EK_ERR_NOMEM, "out of memory while loading " + cfg->model_path);
  } catch (const std::exception &e) {
    return fail(EK_ERR_LOAD, cfg->model_path + ": " + e.what());
  } catch (...) {
    return fail(EK_ERR_LOAD, cfg->model_path + ": unknown exception");
  }
}
