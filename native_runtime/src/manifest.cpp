// manifest.json: schema check, sha256 + size of every listed file, min_runtime_version, methods.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "internal.hpp"
#include "json.hpp"
#include "sha256.hpp"

namespace ek {

namespace {

constexpr int kSchemaVersion = 1;  // edgekit/artifact.py SCHEMA_VERSION
constexpr size_t kMaxManifestBytes = 64u << 20;

struct DtypeName { const char *name; ek_dtype t; };
const DtypeName kDtypes[] = {{"float32", EK_F32}, {"float16", EK_F16}, {"int64", EK_I64}, {"int32", EK_I32},
                             {"int8", EK_I8},     {"uint8", EK_U8},    {"bool", EK_BOOL}, {"float64", EK_F64},
                             {"int16", EK_I16}};

ek_status bad(const std::string &path, const std::string &why) {
  return fail(EK_ERR_MANIFEST, path + ": " + why + " (re-export the artifact with `edgekit export`)");
}

// Rejects absolute paths and ".." so a manifest cannot point outside its directory.
bool safe_relative(const std::string &p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return false;
  std::stringstream ss(p);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (part == "..") return false;
  return true;
}

ek_status tensor_sig(const std::string &where, const Json &j, TensorSig &t) {
  const Json *name = j.get("name"), *shape = j.get("shape"), *dtype = j.get("dtype");
  if (!name || name->kind != Json::String) return bad(where, "a tensor has no string \"name\"");
  t.name = name->str;
  if (!dtype || dtype->kind != Json::String || !dtype_from_string(dtype->str, t.dtype))
    return bad(where, "tensor '" + t.name + "' has dtype " + (dtype && dtype->kind == Json::String ? "'" + dtype->str + "'" : "missing") +
                          "; valid: float32, float16, int64, int32, int8, uint8, bool, float64, int16");
  if (!shape || shape->kind != Json::Array) return bad(where, "tensor '" + t.name + "' has no \"shape\" list");
  if (shape->arr.size() > EK_MAX_RANK)
    return bad(where, "tensor '" + t.name + "' has rank " + std::to_string(shape->arr.size()) + " > " + std::to_string(EK_MAX_RANK));
  for (const Json &d : shape->arr) {
    if (d.is_int() && d.num >= 0) { t.shape.push_back((int64_t)d.num); t.symbols.emplace_back(); }
    else if (d.kind == Json::String) {
      // "7" is a concrete size written as a string by older exporters (inputspec.normalize_dim)
      char *end = nullptr;
      long long v = std::strtoll(d.str.c_str(), &end, 10);
      if (!d.str.empty() && end && !*end && v >= 0) { t.shape.push_back(v); t.symbols.emplace_back(); }
      else { t.shape.push_back(-1); t.symbols.push_back(d.str); }
    } else if (d.kind == Json::Null || (d.is_int() && d.num < 0)) { t.shape.push_back(-1); t.symbols.emplace_back(); }
    else return bad(where, "tensor '" + t.name + "' has a shape entry that is not an int, a name or null");
  }
  return EK_OK;
}

ek_status method_sig(const std::string &where, const std::string &name, const Json &j, const std::string &default_file,
                     MethodSig &m) {
  m.name = name;
  const Json *file = j.get("file");
  m.file = file && file->kind == Json::String ? file->str : default_file;
  const Json *ins = j.get("inputs"), *outs = j.get("outputs");
  if (!ins || ins->kind != Json::Array || !outs || outs->kind != Json::Array)
    return bad(where, "method '" + name + "' needs \"inputs\" and \"outputs\" lists");
  for (const Json &t : ins->arr) {
    m.inputs.emplace_back();
    if (ek_status s = tensor_sig(where, t, m.inputs.back())) return s;
  }
  for (const Json &t : outs->arr) {
    m.outputs.emplace_back();
    if (ek_status s = tensor_sig(where, t, m.outputs.back())) return s;
  }
  return EK_OK;
}

void build_c_infos(MethodSig &m) {
  auto fill = [](const std::vector<TensorSig> &src, std::vector<ek_tensor_info> &dst) {
    dst.clear();
    for (const TensorSig &t : src) {
      ek_tensor_info info{};
      info.name = t.name.c_str();
      info.dtype = t.dtype;
      info.rank = (int32_t)t.shape.size();
      for (size_t i = 0; i < t.shape.size(); ++i) info.shape[i] = t.shape[i];
      dst.push_back(info);
    }
  };
  fill(m.inputs, m.c_inputs);
  fill(m.outputs, m.c_outputs);
}

}  // namespace

bool dtype_from_string(const std::string &s, ek_dtype &out) {
  for (const auto &d : kDtypes)
    if (s == d.name) { out = d.t; return true; }
  return false;
}

int compare_versions(const std::string &a, const std::string &b) {
  std::stringstream sa(a), sb(b);
  std::string pa, pb;
  while (true) {
    bool ha = (bool)std::getline(sa, pa, '.'), hb = (bool)std::getline(sb, pb, '.');
    if (!ha && !hb) return 0;
    long va = ha ? std::strtol(pa.c_str(), nullptr, 10) : 0, vb = hb ? std::strtol(pb.c_str(), nullptr, 10) : 0;
    if (va != vb) return va < vb ? -1 : 1;
  }
}

ek_status read_manifest(const std::string &dir, bool verify, Manifest &out) {
  const std::string path = dir + "/manifest.json";
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(EK_ERR_IO, dir + " is not a directory: pass the artifact directory that `edgekit export` wrote");
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(EK_ERR_MANIFEST, dir + " is not an edgekit artifact: no readable manifest.json");
  std::string text;
  if (stat(path.c_str(), &st) == 0 && (size_t)st.st_size > kMaxManifestBytes)
    return bad(path, "larger than 64 MiB");
  text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  Json root;
  std::string err;
  if (!parse_json(text, root, err)) return bad(path, "not valid JSON: " + err);
  if (root.kind != Json::Object) return bad(path, "the top level is not an object");

  const Json *schema = root.get("schema_version");
  if (!schema || !schema->is_int() || (int)schema->num != kSchemaVersion)
    return fail(EK_ERR_VERSION, path + ": schema_version " +
                                    (schema && schema->is_int() ? std::to_string((long long)schema->num) : "missing") +
                                    "; this runtime reads " + std::to_string(kSchemaVersion) +
                                    " (re-export the model with a matching edgekit)");
  if (const Json *mrv = root.get("min_runtime_version")) {
    if (mrv->kind != Json::String) return bad(path, "min_runtime_version is not a string");
    out.min_runtime_version = mrv->str;
    if (compare_versions(mrv->str, EK_RUNTIME_VERSION) > 0)
      return fail(EK_ERR_VERSION, path + " needs edgekit_runtime >= " + mrv->str + "; this is " EK_RUNTIME_VERSION
                                         " (update the runtime library, or re-export with this edgekit version)");
  }
  const Json *target = root.get("target"), *model_file = root.get("model_file"), *files = root.get("files");
  if (!target || target->kind != Json::String) return bad(path, "no \"target\"");
  if (!model_file || model_file->kind != Json::String || !safe_relative(model_file->str))
    return bad(path, "no valid \"model_file\"");
  if (!files || files->kind != Json::Array) return bad(path, "no \"files\" list");
  out.target = target->str;
  out.model_file = model_file->str;

  bool model_listed = false;
  for (const Json &e : files->arr) {
    const Json *p = e.get("path"), *sha = e.get("sha256"), *bytes = e.get("bytes");
    if (!p || p->kind != Json::String || !safe_relative(p->str)) return bad(path, "a \"files\" entry has no valid path");
    if (p->str == out.model_file) model_listed = true;
    if (!verify) continue;
    const std::string fp = dir + "/" + p->str;
    if (stat(fp.c_str(), &st) != 0) return fail(EK_ERR_IO, fp + " is listed in manifest.json but missing");
    if (S_ISDIR(st.st_mode)) continue;  // bundles (.mlpackage) are not run by this library
    if (!sha || sha->kind != Json::String) return bad(path, "entry '" + p->str + "' has no sha256");
    std::string hex;
    uint64_t size = 0;
    if (!sha256_file(fp, hex, size, err)) return fail(EK_ERR_IO, fp + ": " + err);
    if (bytes && bytes->is_int() && (uint64_t)bytes->num != size)
      return fail(EK_ERR_CHECKSUM, fp + " has " + std::to_string(size) + " bytes; manifest.json lists " +
                                       std::to_string((long long)bytes->num) + " (the file is truncated or replaced; re-export or re-copy the artifact)");
    if (hex != sha->str)
      return fail(EK_ERR_CHECKSUM, fp + " has sha256 " + hex + "; manifest.json lists " + sha->str +
                                       " (the file is corrupted or replaced; re-export or re-copy the artifact)");
  }
  if (!model_listed) return bad(path, "model_file '" + out.model_file + "' is not in \"files\"");

  // Methods: `methods` (name -> {file, inputs, outputs}) or, in older manifests, one `signature` = forward.
  const Json *methods = root.get("methods");
  if (methods && methods->kind == Json::Object && !methods->obj.empty()) {
    for (const auto &kv : methods->obj) {
      out.methods.emplace_back();
      if (ek_status s = method_sig(path, kv.first, kv.second, out.model_file, out.methods.back())) return s;
    }
    const Json *kv_cache = root.get("kv_cache");
    bool has_reset = false;
    for (const auto &m : out.methods) has_reset |= m.name == "reset";
    if (kv_cache && kv_cache->kind == Json::String && kv_cache->str == "in_place" && !has_reset) {
      MethodSig r;  // edgekit/artifact.py RESET_SIGNATURE: manifests before `methods` named it implicitly
      r.name = "reset";
      r.file = out.model_file;
      r.inputs.push_back({"token", EK_I64, {1}, {""}});
      r.outputs.push_back({"token_out", EK_I64, {1}, {""}});
      out.methods.push_back(r);
    }
  } else {
    const Json *sig = root.get("signature");
    if (!sig || sig->kind != Json::Object) return bad(path, "neither \"methods\" nor \"signature\"");
    out.methods.emplace_back();
    if (ek_status s = method_sig(path, "forward", *sig, out.model_file, out.methods.back())) return s;
  }
  for (auto &m : out.methods) {
    if (!safe_relative(m.file)) return bad(path, "method '" + m.name + "' has an invalid file");
    build_c_infos(m);
  }
  return EK_OK;
}

}  // namespace ek
