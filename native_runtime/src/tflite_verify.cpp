// A flatbuffer verifier for .tflite files, run before handing a file to LiteRT: LiteRT's C API builds the
// model without verifying it, so a truncated or corrupted file would be read out of bounds. Two passes:
//  1. structure: every table, vtable, string, vector and union reachable from the root lies inside the file
//     (field layouts generated from the TFLite schema, tflite_schema.inc);
//  2. indices: operator opcode indices, tensor indices, buffer indices, signature and subgraph indices are in
//     range, constant buffers match their tensors' sizes, and external buffer ranges lie inside the file.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tflite_verify.hpp"

namespace ek {
namespace {

struct FbField { uint16_t voff; uint8_t kind; uint8_t size; int16_t sub; uint16_t type_voff; };
struct FbTable { const char *name; const FbField *fields; int n; };
struct FbUnionMember { int type; int16_t table; };
struct FbUnion { const char *name; const FbUnionMember *members; int n; };
enum { kScalar = 0, kString, kVecScalar, kVecTable, kVecString, kTable, kUnion };
#include "tflite_schema.inc"

constexpr int kMaxDepth = 64;
constexpr size_t kMaxTables = 1000000;

class Verifier {
 public:
  Verifier(const uint8_t *b, size_t n) : b_(b), n_(n) {}
  std::string err;

  bool in(size_t off, size_t len) const { return off <= n_ && len <= n_ - off; }
  uint8_t u8(size_t o) const { return b_[o]; }
  uint16_t u16(size_t o) const { uint16_t v; std::memcpy(&v, b_ + o, 2); return v; }
  uint32_t u32(size_t o) const { uint32_t v; std::memcpy(&v, b_ + o, 4); return v; }
  int32_t i32(size_t o) const { int32_t v; std::memcpy(&v, b_ + o, 4); return v; }
  uint64_t u64(size_t o) const { uint64_t v; std::memcpy(&v, b_ + o, 8); return v; }

  bool bad(const std::string &why) {
    if (err.empty()) err = why;
    return false;
  }

  // Target of the uoffset stored at `at` (already bounds-checked for 4 bytes), or 0 when out of the file.
  size_t follow(size_t at) const {
    uint64_t t = (uint64_t)at + u32(at);
    return t + 4 <= n_ ? (size_t)t : 0;
  }

  bool table(size_t pos, int t, int depth) {
    if (depth > kMaxDepth) return bad("tables nested too deep");
    if (++tables_ > kMaxTables) return bad("too many tables");
    if (!in(pos, 4)) return bad(std::string(kTables[t].name) + " table outside the file");
    int64_t vt = (int64_t)pos - (int64_t)i32(pos);
    if (vt < 0 || !in((size_t)vt, 4)) return bad(std::string(kTables[t].name) + " vtable outside the file");
    uint16_t vtsize = u16((size_t)vt), tsize = u16((size_t)vt + 2);
    if (vtsize < 4 || (vtsize & 1) || !in((size_t)vt, vtsize) || tsize < 4 || !in(pos, tsize))
      return bad(std::string(kTables[t].name) + " has a malformed vtable");
    const FbTable &T = kTables[t];
    for (int i = 0; i < T.n; ++i) {
      const FbField &f = T.fields[i];
      if ((size_t)f.voff + 2 > vtsize) continue;
      uint16_t fo = u16((size_t)vt + f.voff);
      if (!fo) continue;
      size_t inline_size = f.kind == kScalar ? f.size : 4;
      if ((size_t)fo + inline_size > tsize) return bad(std::string(T.name) + " field lies outside its table");
      if (f.kind == kScalar) continue;
      size_t at = pos + fo, target = follow(at);
      if (!target) return bad(std::string(T.name) + " points outside the file");
      switch (f.kind) {
        case kString:
          if (!string(target)) return false;
          break;
        case kVecScalar:
        case kVecTable:
        case kVecString: {
          uint32_t len = u32(target);
          size_t elem = f.kind == kVecScalar ? f.size : 4;
          if (len > (n_ - target - 4) / elem) return bad(std::string(T.name) + " vector runs past the end of the file");
          if (f.kind == kVecScalar) break;
          for (uint32_t k = 0; k < len; ++k) {
            size_t e = target + 4 + (size_t)k * 4, sub = follow(e);
            if (!sub) return bad(std::string(T.name) + " vector element points outside the file");
            if (f.kind == kVecTable ? !table(sub, f.sub, depth + 1) : !string(sub)) return false;
          }
          break;
        }
        case kTable:
          if (!table(target, f.sub, depth + 1)) return false;
          break;
        case kUnion: {
          int type = 0;
          if ((size_t)f.type_voff + 2 <= vtsize) {
            uint16_t to = u16((size_t)vt + f.type_voff);
            if (to && (size_t)to + 1 <= tsize) type = u8(pos + to);
          }
          if (!type) break;
          const FbUnion &U = kUnions[f.sub];
          for (int k = 0; k < U.n; ++k)
            if (U.members[k].type == type && !table(target, U.members[k].table, depth + 1)) return false;
          break;  // an unknown member type is skipped, as flatbuffers' own verifier does
        }
      }
    }
    return true;
  }

  bool string(size_t pos) {
    uint32_t len = u32(pos);
    if ((uint64_t)len + 1 > n_ - pos - 4) return bad("a string runs past the end of the file");
    return true;
  }

  // Accessors for the index pass; valid only after table() accepted the structure.
  size_t field(size_t tpos, uint16_t voff) const {
    size_t vt = (size_t)((int64_t)tpos - (int64_t)i32(tpos));
    if ((size_t)voff + 2 > u16(vt)) return 0;
    uint16_t fo = u16(vt + voff);
    return fo ? tpos + fo : 0;
  }
  uint64_t scalar(size_t tpos, uint16_t voff, int size, uint64_t dflt = 0) const {
    size_t at = field(tpos, voff);
    if (!at) return dflt;
    switch (size) {
      case 1: return u8(at);
      case 4: return u32(at);
      default: return u64(at);
    }
  }
  // A vector field: start of its elements and length (0 when absent).
  uint32_t vec(size_t tpos, uint16_t voff, size_t &start) const {
    size_t at = field(tpos, voff);
    if (!at) { start = 0; return 0; }
    size_t v = follow(at);
    start = v + 4;
    return u32(v);
  }
  size_t sub(size_t elem_at) const { return follow(elem_at); }
  size_t subtable(size_t tpos, uint16_t voff) const {
    size_t at = field(tpos, voff);
    return at ? follow(at) : 0;
  }

  size_t size() const { return n_; }

 private:
  const uint8_t *b_;
  size_t n_;
  size_t tables_ = 0;
};

// TfLiteType -> bytes per element (0: not checked: strings, int4, complex, resources, variants)
size_t type_bytes(int t) {
  switch (t) {
    case 0: return 4;   // FLOAT32
    case 1: return 2;   // FLOAT16
    case 2: return 4;   // INT32
    case 3: return 1;   // UINT8
    case 4: return 8;   // INT64
    case 6: return 1;   // BOOL
    case 7: return 2;   // INT16
    case 9: return 1;   // INT8
    case 10: return 8;  // FLOAT64
    default: return 0;
  }
}

bool indices(Verifier &v, size_t model) {
  const uint64_t n = v.size();
  size_t codes_at, subgraphs_at, buffers_at, sigs_at;
  uint32_t n_codes = v.vec(model, 6, codes_at), n_subgraphs = v.vec(model, 8, subgraphs_at);
  uint32_t n_buffers = v.vec(model, 12, buffers_at), n_sigs = v.vec(model, 18, sigs_at);
  if (!n_subgraphs) return v.bad("the model has no subgraph");
  std::vector<size_t> buffer_data(n_buffers, 0);  // bytes of inline data per buffer
  for (uint32_t i = 0; i < n_buffers; ++i) {
    size_t buf = v.sub(buffers_at + 4 * (size_t)i), data;
    buffer_data[i] = v.vec(buf, 4, data);
    uint64_t off = v.scalar(buf, 6, 8), size = v.scalar(buf, 8, 8);
    if (off > 1 && (off > n || size > n - off)) return v.bad("buffer " + std::to_string(i) + " lies outside the file");
  }
  std::vector<uint32_t> tensors_per_subgraph(n_subgraphs);
  for (uint32_t g = 0; g < n_subgraphs; ++g) {
    size_t sg = v.sub(subgraphs_at + 4 * (size_t)g), tensors_at, ops_at, io_at;
    const uint32_t nt = v.vec(sg, 4, tensors_at);
    tensors_per_subgraph[g] = nt;
    const std::string where = "subgraph " + std::to_string(g);
    for (uint32_t t = 0; t < nt; ++t) {
      size_t tensor = v.sub(tensors_at + 4 * (size_t)t), shape_at;
      uint32_t buffer = (uint32_t)v.scalar(tensor, 8, 4);
      if (buffer >= n_buffers && !(buffer == 0 && n_buffers == 0))
        return v.bad(where + ": tensor " + std::to_string(t) + " uses buffer " + std::to_string(buffer) + " of " +
                     std::to_string(n_buffers));
      uint32_t rank = v.vec(tensor, 4, shape_at);
      uint64_t count = 1;
      bool known = true;
      for (uint32_t d = 0; d < rank; ++d) {
        int32_t dim = v.i32(shape_at + 4 * (size_t)d);
        if (dim < -1) return v.bad(where + ": tensor " + std::to_string(t) + " has dimension " + std::to_string(dim));
        if (dim < 0) known = false;
        else if (count && (uint64_t)dim > (uint64_t(1) << 40) / count) return v.bad(where + ": tensor " + std::to_string(t) + " is too large");
        else count *= (uint64_t)dim;
      }
      size_t esize = type_bytes((int)v.scalar(tensor, 6, 1));
      bool sparse = v.field(tensor, 16) != 0;
      if (buffer && buffer < n_buffers && buffer_data[buffer] && known && esize && !sparse &&
          buffer_data[buffer] != count * esize)
        return v.bad(where + ": tensor " + std::to_string(t) + " holds " + std::to_string(buffer_data[buffer]) +
                     " bytes of constant data; its shape needs " + std::to_string(count * esize));
    }
    for (uint16_t slot : {6, 8}) {  // subgraph inputs, outputs
      uint32_t k = v.vec(sg, slot, io_at);
      for (uint32_t i = 0; i < k; ++i)
        if ((uint32_t)v.i32(io_at + 4 * (size_t)i) >= nt) return v.bad(where + ": an input/output tensor index is out of range");
    }
    const uint32_t nops = v.vec(sg, 10, ops_at);
    for (uint32_t o = 0; o < nops; ++o) {
      size_t op = v.sub(ops_at + 4 * (size_t)o);
      uint32_t opcode = (uint32_t)v.scalar(op, 4, 4);
      if (opcode >= n_codes)
        return v.bad(where + ": operator " + std::to_string(o) + " has opcode index " + std::to_string(opcode) +
                     "; the model has " + std::to_string(n_codes) + " operator codes");
      for (uint16_t slot : {6, 8, 20}) {  // inputs, outputs, intermediates; -1 = optional input
        size_t at;
        uint32_t k = v.vec(op, slot, at);
        for (uint32_t i = 0; i < k; ++i) {
          int32_t ti = v.i32(at + 4 * (size_t)i);
          if (ti < -1 || ti >= (int64_t)nt)
            return v.bad(where + ": operator " + std::to_string(o) + " uses tensor " + std::to_string(ti) + " of " +
                         std::to_string(nt));
        }
      }
      uint64_t off = v.scalar(op, 22, 8), size = v.scalar(op, 24, 8);
      if (off > 1 && (off > n || size > n - off)) return v.bad(where + ": custom options lie outside the file");
    }
  }
  for (uint32_t s = 0; s < n_sigs; ++s) {
    size_t sig = v.sub(sigs_at + 4 * (size_t)s);
    uint32_t g = (uint32_t)v.scalar(sig, 12, 4);  // field 4 (field 3 is deprecated)
    if (g >= n_subgraphs) return v.bad("signature " + std::to_string(s) + " names subgraph " + std::to_string(g));
    for (uint16_t slot : {4, 6}) {
      size_t at;
      uint32_t k = v.vec(sig, slot, at);
      for (uint32_t i = 0; i < k; ++i) {
        size_t map = v.sub(at + 4 * (size_t)i);
        if ((uint32_t)v.scalar(map, 6, 4) >= tensors_per_subgraph[g])
          return v.bad("signature " + std::to_string(s) + " maps to a tensor index out of range");
      }
    }
  }
  return true;
}

}  // namespace

bool verify_tflite(const uint8_t *data, size_t size, std::string &error) {
  Verifier v(data, size);
  if (size < 8) {  // a > 2 GiB file is fine: its large buffers follow the flatbuffer (Buffer.offset / size)
    error = "the file is " + std::to_string(size) + " bytes: not a TFLite flatbuffer";
    return false;
  }
  if (std::memcmp(data + 4, "TFL3", 4) != 0) {
    error = "no TFL3 file identifier: not a TFLite flatbuffer";
    return false;
  }
  size_t root = v.follow(0);
  bool ok = root && v.table(root, kModelTable, 0) && indices(v, root);
  if (!ok) error = v.err.empty() ? "malformed flatbuffer" : v.err;
  return ok;
}

}  // namespace ek
