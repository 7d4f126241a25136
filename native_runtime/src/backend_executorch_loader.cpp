// Finds and loads the ExecuTorch backend plugin (libedgekit_runtime_executorch.so) on first use, so the core
// library loads (and runs .tflite) where the executorch libraries are absent.
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "internal.hpp"

namespace ek {

namespace {
std::string own_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&ek_version), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
  }
  return ".";
}
}  // namespace

ek_status open_executorch(const BackendConfig &cfg, std::unique_ptr<Backend> &out) {
  static std::once_flag once;
  static BackendFactory factory = nullptr;
  static std::string load_error;
  std::call_once(once, [] {
    const char *env = std::getenv("EDGEKIT_RUNTIME_ET_PLUGIN");
    std::string path = env && *env ? env : own_dir() + "/libedgekit_runtime_executorch.so";
    void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      load_error = "cannot load the ExecuTorch backend " + path + ": " + (e ? e : "unknown error") +
                   " (build it with `make native` where the executorch package is installed; its libexecutorch.so "
                   "must be found at run time)";
      return;
    }
    factory = reinterpret_cast<BackendFactory>(dlsym(h, EK_EXECUTORCH_FACTORY));
    if (!factory) load_error = path + " has no " EK_EXECUTORCH_FACTORY;
  });
  if (!factory) return fail(EK_ERR_BACKEND_UNAVAILABLE, load_error);
  Backend *b = nullptr;
  ek_status s = factory(&cfg, &b);
  if (s == EK_OK) out.reset(b);
  return s;
}

}  // namespace ek
