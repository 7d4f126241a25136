// LiteRT backend: runs a .tflite through the CompiledModel C API of libLiteRt.so (the ai-edge-litert wheel).
// The wheel ships no headers, so the few functions used are declared here and resolved with dlsym.
// Checked against ai-edge-litert 2.3.0 (LiteRT C API, symbol version VERS_1.0): LiteRT 2.x takes the
// environment first in LiteRtCreateModelFromFile and LiteRtCreateManagedTensorBufferFromRequirements, and
// LiteRtRankedTensorType is 72 bytes (layout at offset 4, dimensions at offset 8, ABI-stable).
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "internal.hpp"
#include "tflite_verify.hpp"

namespace ek {
namespace {

typedef int LiteRtStatus;  // kLiteRtStatusOk = 0
typedef void *LiteRtEnvironment;
typedef void *LiteRtModel;
typedef void *LiteRtOptions;
typedef void *LiteRtCompiledModel;
typedef void *LiteRtSignature;
typedef void *LiteRtTensor;
typedef void *LiteRtTensorBuffer;
typedef void *LiteRtTensorBufferRequirements;
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;
constexpr int kCpu = 1;  // kLiteRtHwAcceleratorCpu

struct RankedTensorType {  // LiteRtRankedTensorType
  int32_t element_type;
  uint32_t rank_bits;      // rank : 7, has_strides : 1
  int32_t dims[8];
  uint32_t strides[8];
};
static_assert(sizeof(RankedTensorType) == 72, "LiteRtRankedTensorType is 72 bytes");

// LiteRtElementType (== TfLiteType)
bool dtype_of(int32_t et, ek_dtype &t) {
  switch (et) {
    case 1: t = EK_F32; return true;
    case 2: t = EK_I32; return true;
    case 3: t = EK_U8; return true;
    case 4: t = EK_I64; return true;
    case 6: t = EK_BOOL; return true;
    case 7: t = EK_I16; return true;
    case 9: t = EK_I8; return true;
    case 10: t = EK_F16; return true;
    case 11: t = EK_F64; return true;
    default: return false;
  }
}

struct Api {
  LiteRtStatus (*CreateEnvironment)(int, const void *, LiteRtEnvironment *);
  void (*DestroyEnvironment)(LiteRtEnvironment);
  LiteRtStatus (*CreateModelFromFile)(LiteRtEnvironment, const char *, LiteRtModel *);
  void (*DestroyModel)(LiteRtModel);
  LiteRtStatus (*GetNumModelSignatures)(LiteRtModel, LiteRtParamIndex *);
  LiteRtStatus (*GetModelSignature)(LiteRtModel, LiteRtParamIndex, LiteRtSignature *);
  LiteRtStatus (*GetSignatureKey)(LiteRtSignature, const char **);
  LiteRtStatus (*GetNumSignatureInputs)(LiteRtSignature, LiteRtParamIndex *);
  LiteRtStatus (*GetNumSignatureOutputs)(LiteRtSignature, LiteRtParamIndex *);
  LiteRtStatus (*GetSignatureInputTensorByIndex)(LiteRtSignature, LiteRtParamIndex, LiteRtTensor *);
  LiteRtStatus (*GetSignatureOutputTensorByIndex)(LiteRtSignature, LiteRtParamIndex, LiteRtTensor *);
  LiteRtStatus (*GetRankedTensorType)(LiteRtTensor, RankedTensorType *);
  LiteRtStatus (*CreateOptions)(LiteRtOptions *);
  void (*DestroyOptions)(LiteRtOptions);
  LiteRtStatus (*SetOptionsHardwareAccelerators)(LiteRtOptions, LiteRtHwAcceleratorSet);
  LiteRtStatus (*CreateCompiledModel)(LiteRtEnvironment, LiteRtModel, LiteRtOptions, LiteRtCompiledModel *);
  void (*DestroyCompiledModel)(LiteRtCompiledModel);
  LiteRtStatus (*RunCompiledModel)(LiteRtCompiledModel, LiteRtParamIndex, size_t, LiteRtTensorBuffer *, size_t,
                                   LiteRtTensorBuffer *);
  LiteRtStatus (*GetInputRequirements)(LiteRtCompiledModel, LiteRtParamIndex, LiteRtParamIndex,
                                       LiteRtTensorBufferRequirements *);
  LiteRtStatus (*GetOutputRequirements)(LiteRtCompiledModel, LiteRtParamIndex, LiteRtParamIndex,
                                        LiteRtTensorBufferRequirements *);
  LiteRtStatus (*CreateManagedTensorBufferFromRequirements)(LiteRtEnvironment, const RankedTensorType *,
                                                            LiteRtTensorBufferRequirements, LiteRtTensorBuffer *);
  LiteRtStatus (*GetTensorBufferPackedSize)(LiteRtTensorBuffer, size_t *);
  LiteRtStatus (*LockTensorBuffer)(LiteRtTensorBuffer, void **, int);  // mode: 0 read, 1 write
  LiteRtStatus (*UnlockTensorBuffer)(LiteRtTensorBuffer);
  void (*DestroyTensorBuffer)(LiteRtTensorBuffer);
};

// libLiteRt.so: $EDGEKIT_LITERT_LIB, else the path found at build time (the venv's ai_edge_litert), else the
// dynamic loader's search path.
const Api *api(std::string &error) {
  static std::once_flag once;
  static Api a;
  static bool ok = false;
  static std::string err;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char *env = std::getenv("EDGEKIT_LITERT_LIB")) candidates.push_back(env);
    if (*EK_DEFAULT_LITERT_LIB) candidates.push_back(EK_DEFAULT_LITERT_LIB);
    candidates.push_back("libLiteRt.so");
    void *h = nullptr;
    std::string tried;
    for (const auto &c : candidates) {
      if ((h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
      const char *e = dlerror();
      tried += (tried.empty() ? "" : "; ") + c + ": " + (e ? e : "?");
    }
    if (!h) {
      err = "cannot load libLiteRt.so (" + tried + "); install ai-edge-litert==2.3.0 and rebuild with `make native`, "
            "or set EDGEKIT_LITERT_LIB";
      return;
    }
#define EK_SYM(field, name)                                                   \
  if (!(*reinterpret_cast<void **>(&a.field) = dlsym(h, name))) {            \
    err = std::string("libLiteRt.so has no ") + name + " (checked against ai-edge-litert 2.3.0)"; \
    return;                                                                   \
  }
    EK_SYM(CreateEnvironment, "LiteRtCreateEnvironment")
    EK_SYM(DestroyEnvironment, "LiteRtDestroyEnvironment")
    EK_SYM(CreateModelFromFile, "LiteRtCreateModelFromFile")
    EK_SYM(DestroyModel, "LiteRtDestroyModel")
    EK_SYM(GetNumModelSignatures, "LiteRtGetNumModelSignatures")
    EK_SYM(GetModelSignature, "LiteRtGetModelSignature")
    EK_SYM(GetSignatureKey, "LiteRtGetSignatureKey")
    EK_SYM(GetNumSignatureInputs, "LiteRtGetNumSignatureInputs")
    EK_SYM(GetNumSignatureOutputs, "LiteRtGetNumSignatureOutputs")
    EK_SYM(GetSignatureInputTensorByIndex, "LiteRtGetSignatureInputTensorByIndex")
    EK_SYM(GetSignatureOutputTensorByIndex, "LiteRtGetSignatureOutputTensorByIndex")
    EK_SYM(GetRankedTensorType, "LiteRtGetRankedTensorType")
    EK_SYM(CreateOptions, "LiteRtCreateOptions")
    EK_SYM(DestroyOptions, "LiteRtDestroyOptions")
    EK_SYM(SetOptionsHardwareAccelerators, "LiteRtSetOptionsHardwareAccelerators")
    EK_SYM(CreateCompiledModel, "LiteRtCreateCompiledModel")
    EK_SYM(DestroyCompiledModel, "LiteRtDestroyCompiledModel")
    EK_SYM(RunCompiledModel, "LiteRtRunCompiledModel")
    EK_SYM(GetInputRequirements, "LiteRtGetCompiledModelInputBufferRequirements")
    EK_SYM(GetOutputRequirements, "LiteRtGetCompiledModelOutputBufferRequirements")
    EK_SYM(CreateManagedTensorBufferFromRequirements, "LiteRtCreateManagedTensorBufferFromRequirements")
    EK_SYM(GetTensorBufferPackedSize, "LiteRtGetTensorBufferPackedSize")
    EK_SYM(LockTensorBuffer, "LiteRtLockTensorBuffer")
    EK_SYM(UnlockTensorBuffer, "LiteRtUnlockTensorBuffer")
    EK_SYM(DestroyTensorBuffer, "LiteRtDestroyTensorBuffer")
#undef EK_SYM
    ok = true;
  });
  error = err;
  return ok ? &a : nullptr;
}

// 64-byte aligned host memory (LiteRT requires LITERT_HOST_MEMORY_BUFFER_ALIGNMENT for host buffers).
struct Aligned {
  void *p = nullptr;
  size_t n = 0;
  Aligned() = default;
  Aligned(const Aligned &) = delete;
  Aligned(Aligned &&o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  ~Aligned() { std::free(p); }
  bool reserve(size_t bytes) {
    if (p && n >= bytes) return true;
    std::free(p);
    n = (bytes + 63) / 64 * 64;
    p = std::aligned_alloc(64, n ? n : 64);
    return p != nullptr;
  }
};

struct Port {  // one signature input or output
  RankedTensorType type;
  ek_dtype dtype;
  size_t count = 1;  // elements
  Aligned mem;
  LiteRtTensorBuffer buf = nullptr;
};

struct Sig {
  LiteRtParamIndex index;
  std::vector<Port> ins, outs;
};

class LiteRtBackend : public Backend {
 public:
  ~LiteRtBackend() override {
    if (!a_) return;
    for (auto &kv : sigs_)
      for (auto *ports : {&kv.second.ins, &kv.second.outs})
        for (Port &p : *ports)
          if (p.buf) a_->DestroyTensorBuffer(p.buf);
    if (compiled_) a_->DestroyCompiledModel(compiled_);
    if (model_) a_->DestroyModel(model_);
    if (env_) a_->DestroyEnvironment(env_);
  }

  ek_status open(const BackendConfig &cfg) {
    std::string err;
    a_ = api(err);
    if (!a_) return fail(EK_ERR_BACKEND_UNAVAILABLE, err);
    path_ = cfg.model_path;
    if (a_->CreateEnvironment(0, nullptr, &env_) != 0) return fail(EK_ERR_LOAD, "LiteRtCreateEnvironment failed");
    // LiteRT does not verify the flatbuffer it loads: verify it here, so a corrupted file is a status, not a crash.
    if (ek_status s = verify_file()) return s;
    if (a_->CreateModelFromFile(env_, path_.c_str(), &model_) != 0 || !model_)
      return fail(EK_ERR_LOAD, path_ + " is not a loadable .tflite model (corrupted, truncated, or not a TFLite flatbuffer)");
    LiteRtOptions opts = nullptr;
    if (a_->CreateOptions(&opts) != 0) return fail(EK_ERR_LOAD, "LiteRtCreateOptions failed");
    a_->SetOptionsHardwareAccelerators(opts, kCpu);
    LiteRtStatus st = a_->CreateCompiledModel(env_, model_, opts, &compiled_);
    a_->DestroyOptions(opts);
    if (st != 0 || !compiled_)
      return fail(EK_ERR_LOAD, path_ + ": LiteRT cannot compile the model (status " + std::to_string(st) +
                                   "; an unsupported or corrupted operator)");
    LiteRtParamIndex nsig = 0;
    if (a_->GetNumModelSignatures(model_, &nsig) != 0 || nsig == 0)
      return fail(EK_ERR_LOAD, path_ + " has no signature (edgekit's TFLite exporter writes one per method)");
    std::vector<const MethodSig *> mine;
    for (const MethodSig &m : *cfg.methods)
      if (m.file == cfg.file) mine.push_back(&m);
    for (const MethodSig *m : mine) {
      LiteRtParamIndex chosen = nsig;
      for (LiteRtParamIndex i = 0; i < nsig; ++i) {  // the signature named like the method, else the only one
        LiteRtSignature s;
        const char *key = nullptr;
        if (a_->GetModelSignature(model_, i, &s) == 0 && a_->GetSignatureKey(s, &key) == 0 && key && m->name == key)
          chosen = i;
      }
      if (chosen == nsig && nsig == 1 && mine.size() == 1) chosen = 0;
      if (chosen == nsig) return fail(EK_ERR_LOAD, path_ + " has no signature named '" + m->name + "'");
      if (ek_status s = bind(*m, chosen)) return s;
    }
    return EK_OK;
  }

  ek_status run(const MethodSig &m, const ek_tensor *inputs, ek_tensor *outputs, int n_outputs) override {
    Sig &s = sigs_.at(m.name);
    std::vector<LiteRtTensorBuffer> ins, outs;
    for (size_t i = 0; i < s.ins.size(); ++i) {
      Port &p = s.ins[i];
      const ek_tensor &t = inputs[i];
      size_t count = t.nbytes / ek_dtype_size(t.dtype);
      if (count != p.count)
        return fail(EK_ERR_INPUT, "input '" + m.inputs[i].name + "' has " + std::to_string(count) +
                                      " elements; the .tflite model takes " + std::to_string(p.count));
      void *dst = nullptr;
      if (a_->LockTensorBuffer(p.buf, &dst, 1) != 0 || !dst)
        return fail(EK_ERR_RUN, "cannot map the buffer of input '" + m.inputs[i].name + "'");
      bool ok = true;
      if (p.dtype == t.dtype) std::memcpy(dst, t.data, t.nbytes);
      else if (p.dtype == EK_I32 && t.dtype == EK_I64) {  // litert-torch narrows int64 inputs to int32
        const int64_t *src = static_cast<const int64_t *>(t.data);
        for (size_t k = 0; k < count && ok; ++k) {
          ok = src[k] >= INT32_MIN && src[k] <= INT32_MAX;
          static_cast<int32_t *>(dst)[k] = (int32_t)src[k];
        }
      } else {
        a_->UnlockTensorBuffer(p.buf);
        return fail(EK_ERR_INPUT, "input '" + m.inputs[i].name + "' is " + ek_dtype_name(t.dtype) +
                                      "; the .tflite model takes " + ek_dtype_name(p.dtype));
      }
      a_->UnlockTensorBuffer(p.buf);
      if (!ok) return fail(EK_ERR_INPUT, "input '" + m.inputs[i].name + "' holds a value outside int32 (the model takes int32)");
      ins.push_back(p.buf);
    }
    for (Port &p : s.outs) outs.push_back(p.buf);
    LiteRtStatus st = a_->RunCompiledModel(compiled_, s.index, ins.size(), ins.data(), outs.size(), outs.data());
    if (st != 0) return fail(EK_ERR_RUN, "LiteRT run of '" + m.name + "' failed (status " + std::to_string(st) + ")");
    for (int i = 0; i < n_outputs && i < (int)s.outs.size(); ++i) {
      Port &p = s.outs[i];
      void *src = nullptr;
      if (a_->LockTensorBuffer(p.buf, &src, 0) != 0 || !src)
        return fail(EK_ERR_RUN, "cannot map the buffer of output '" + m.outputs[i].name + "'");
      std::memcpy(p.mem.p, src, p.count * ek_dtype_size(p.dtype));  // stays valid until the next run
      a_->UnlockTensorBuffer(p.buf);
      ek_tensor &o = outputs[i];
      std::memset(&o, 0, sizeof o);
      o.name = m.outputs[i].name.c_str();
      o.dtype = p.dtype;
      o.rank = (int32_t)(p.type.rank_bits & 0x7F);
      for (int d = 0; d < o.rank; ++d) o.shape[d] = p.type.dims[d];
      o.data = p.mem.p;
      o.nbytes = p.count * ek_dtype_size(p.dtype);
    }
    return EK_OK;
  }

 private:
  ek_status port(LiteRtTensor t, bool input, LiteRtParamIndex sig, LiteRtParamIndex i, const std::string &who,
                 Port &p) {
    if (a_->GetRankedTensorType(t, &p.type) != 0) return fail(EK_ERR_LOAD, path_ + ": " + who + " has no ranked type");
    int rank = (int)(p.type.rank_bits & 0x7F);
    if (rank > EK_MAX_RANK || !dtype_of(p.type.element_type, p.dtype))
      return fail(EK_ERR_LOAD, path_ + ": " + who + " has an unsupported element type or rank");
    for (int d = 0; d < rank; ++d) {
      if (p.type.dims[d] < 0)
        return fail(EK_ERR_LOAD, path_ + ": " + who + " has a dynamic dimension; the native runtime runs static .tflite shapes");
      p.count *= (size_t)p.type.dims[d];
    }
    size_t bytes = p.count * ek_dtype_size(p.dtype), packed = 0;
    LiteRtTensorBufferRequirements req = nullptr;
    LiteRtStatus st = input ? a_->GetInputRequirements(compiled_, sig, i, &req) : a_->GetOutputRequirements(compiled_, sig, i, &req);
    if (st != 0 || a_->CreateManagedTensorBufferFromRequirements(env_, &p.type, req, &p.buf) != 0 || !p.buf)
      return fail(EK_ERR_LOAD, path_ + ": cannot create a tensor buffer for " + who);
    if (a_->GetTensorBufferPackedSize(p.buf, &packed) != 0 || packed != bytes)
      return fail(EK_ERR_LOAD, path_ + ": " + who + " buffer holds " + std::to_string(packed) + " bytes, expected " +
                                   std::to_string(bytes));
    if (!input && !p.mem.reserve(bytes)) return fail(EK_ERR_NOMEM, "cannot allocate a " + std::to_string(bytes) + "-byte buffer");
    return EK_OK;
  }

  ek_status bind(const MethodSig &m, LiteRtParamIndex index) {
    LiteRtSignature s;
    LiteRtParamIndex nin = 0, nout = 0;
    if (a_->GetModelSignature(model_, index, &s) != 0 || a_->GetNumSignatureInputs(s, &nin) != 0 ||
        a_->GetNumSignatureOutputs(s, &nout) != 0)
      return fail(EK_ERR_LOAD, path_ + ": cannot read signature " + std::to_string(index));
    if (nin != m.inputs.size() || nout != m.outputs.size())
      return fail(EK_ERR_MANIFEST, path_ + ": method '" + m.name + "' has " + std::to_string(nin) + " inputs and " +
                                       std::to_string(nout) + " outputs in the model; manifest.json lists " +
                                       std::to_string(m.inputs.size()) + " and " + std::to_string(m.outputs.size()));
    Sig &sig = sigs_[m.name];
    sig.index = index;
    sig.ins.resize(nin);
    sig.outs.resize(nout);
    // Inputs and outputs are bound by position: litert-torch names them args_0.., output_0.. in manifest order.
    for (LiteRtParamIndex i = 0; i < nin; ++i) {
      LiteRtTensor t;
      if (a_->GetSignatureInputTensorByIndex(s, i, &t) != 0) return fail(EK_ERR_LOAD, path_ + ": bad signature input");
      if (ek_status st = port(t, true, index, i, "input '" + m.inputs[i].name + "'", sig.ins[i])) return st;
      ek_dtype want = m.inputs[i].dtype, got = sig.ins[i].dtype;
      if (want != got && !(want == EK_I64 && got == EK_I32))
        return fail(EK_ERR_LOAD, path_ + ": input '" + m.inputs[i].name + "' is " + ek_dtype_name(got) +
                                     " in the model and " + ek_dtype_name(want) +
                                     " in manifest.json (quantized I/O is not supported by the native runtime)");
    }
    for (LiteRtParamIndex i = 0; i < nout; ++i) {
      LiteRtTensor t;
      if (a_->GetSignatureOutputTensorByIndex(s, i, &t) != 0) return fail(EK_ERR_LOAD, path_ + ": bad signature output");
      if (ek_status st = port(t, false, index, i, "output '" + m.outputs[i].name + "'", sig.outs[i])) return st;
    }
    return EK_OK;
  }

  ek_status verify_file() {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(EK_ERR_IO, "cannot open " + path_);
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      return fail(EK_ERR_LOAD, path_ + " is empty: not a .tflite model");
    }
    void *p = mmap(nullptr, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return fail(EK_ERR_IO, "cannot map " + path_);
    std::string why;
    bool ok = verify_tflite(static_cast<const uint8_t *>(p), (size_t)st.st_size, why);
    munmap(p, (size_t)st.st_size);
    if (!ok) return fail(EK_ERR_LOAD, path_ + " is not a valid .tflite model (" + why + "): the file is corrupted or truncated");
    return EK_OK;
  }

  const Api *a_ = nullptr;
  std::string path_;
  LiteRtEnvironment env_ = nullptr;
  LiteRtModel model_ = nullptr;
  LiteRtCompiledModel compiled_ = nullptr;
  std::map<std::string, Sig> sigs_;
};

}  // namespace

ek_status open_litert(const BackendConfig &cfg, std::unique_ptr<Backend> &out) {
  std::unique_ptr<LiteRtBackend> b(new LiteRtBackend());
  if (ek_status s = b->open(cfg)) return s;
  out = std::move(b);
  return EK_OK;
}

}  // namespace ek
