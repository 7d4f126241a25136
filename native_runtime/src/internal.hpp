// Internal types shared by the C API (api.cpp), the manifest reader and the backends.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "edgekit_runtime.h"

namespace ek {

// Sets the calling thread's ek_last_error() message and returns `s`.
EK_API ek_status fail(ek_status s, const std::string &message);  // exported for the backend plugin

struct TensorSig {
  std::string name;
  ek_dtype dtype = EK_F32;
  std::vector<int64_t> shape;             // -1: symbolic or unknown
  std::vector<std::string> symbols;       // per axis: the symbol name, "" for concrete/unknown
};

struct MethodSig {
  std::string name;
  std::string file;  // relative to the artifact directory
  std::vector<TensorSig> inputs, outputs;
  std::vector<ek_tensor_info> c_inputs, c_outputs;  // point into the strings above; built once
};

struct Manifest {
  std::string target, model_file, min_runtime_version;
  std::vector<MethodSig> methods;
};

// Backend-side configuration passed to a backend factory.
struct BackendConfig {
  std::string model_path;
  std::string file;  // the manifest's relative name of the model file: this backend runs the methods in it
  int threads = 0;
  const std::vector<MethodSig> *methods = nullptr;
  std::string executorch_ops_lib;  // edgekit's ExecuTorch kernels, "" = none/default lookup
};

// A loaded model file. `inputs` are ordered and checked against the method's signature.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual ek_status run(const MethodSig &m, const ek_tensor *inputs, ek_tensor *outputs, int n_outputs) = 0;
};

// Factory exported (extern "C") by the ExecuTorch plugin library, libedgekit_runtime_executorch.so.
// Sets the message with fail() on error.
using BackendFactory = ek_status (*)(const BackendConfig *cfg, Backend **out);
#define EK_EXECUTORCH_FACTORY "ek_executorch_backend_create"

ek_status open_litert(const BackendConfig &cfg, std::unique_ptr<Backend> &out);
ek_status open_executorch(const BackendConfig &cfg, std::unique_ptr<Backend> &out);

ek_status read_manifest(const std::string &dir, bool verify, Manifest &out);
bool dtype_from_string(const std::string &s, ek_dtype &out);
int compare_versions(const std::string &a, const std::string &b);  // <0, 0, >0 over dotted numbers

}  // namespace ek
