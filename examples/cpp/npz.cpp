// .npz = zip of .npy (see npz.h). The zip side reads the central directory (sizes there are exact even
// when numpy's zip64 local headers say 0xFFFFFFFF); inflate follows RFC 1951 in the style of zlib's
// puff.c (canonical Huffman tables as counts + symbols); every length and distance is bounds-checked.
#include "npz.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace npz {
namespace {

[[noreturn]] void fail(const std::string &why) { throw std::runtime_error(why); }

uint32_t u16(const uint8_t *p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t u32(const uint8_t *p) { return u16(p) | u16(p + 2) << 16; }
uint64_t u64(const uint8_t *p) { return uint64_t(u32(p)) | uint64_t(u32(p + 4)) << 32; }

struct Bits {
  const uint8_t *in;
  size_t n, pos = 0;
  uint32_t buf = 0;
  int cnt = 0;
  int get(int need) {
    uint32_t v = buf;
    while (cnt < need) {
      if (pos >= n) fail("deflate stream ends early");
      v |= uint32_t(in[pos++]) << cnt;
      cnt += 8;
    }
    buf = v >> need;
    cnt -= need;
    return int(v & ((1u << need) - 1));
  }
};

struct Huffman {
  short count[16];
  short symbol[288];
};

// Builds the table from code lengths; returns 0 complete, < 0 over-subscribed, > 0 incomplete.
int build(Huffman &h, const short *length, int n) {
  std::memset(h.count, 0, sizeof h.count);
  for (int s = 0; s < n; s++) h.count[length[s]]++;
  if (h.count[0] == n) return 0;
  int left = 1;
  for (int len = 1; len < 16; len++) {
    left <<= 1;
    left -= h.count[len];
    if (left < 0) return left;
  }
  short offs[16];
  offs[1] = 0;
  for (int len = 1; len < 15; len++) offs[len + 1] = short(offs[len] + h.count[len]);
  for (int s = 0; s < n; s++)
    if (length[s]) h.symbol[offs[length[s]]++] = short(s);
  return left;
}

int decode(Bits &b, const Huffman &h) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len < 16; len++) {
    code |= b.get(1);
    int count = h.count[len];
    if (code - count < first) return h.symbol[index + (code - first)];
    index += count;
    first += count;
    first <<= 1;
    code <<= 1;
  }
  fail("bad Huffman code in deflate stream");
}

const short LBASE[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                         131, 163, 195, 227, 258};
const short LEXT[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const int DBASE[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                       2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
const short DEXT[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

void codes(Bits &b, std::vector<uint8_t> &out, const Huffman &lens, const Huffman &dists, size_t limit) {
  while (true) {
    int sym = decode(b, lens);
    if (sym < 256) {
      out.push_back(uint8_t(sym));
    } else if (sym == 256) {
      return;
    } else {
      sym -= 257;
      if (sym >= 29) fail("bad length code in deflate stream");
      size_t len = size_t(LBASE[sym] + b.get(LEXT[sym]));
      int ds = decode(b, dists);
      if (ds >= 30) fail("bad distance code in deflate stream");
      size_t dist = size_t(DBASE[ds] + b.get(DEXT[ds]));
      if (dist > out.size()) fail("deflate distance reaches before the start of the data");
      for (size_t k = 0; k < len; k++) out.push_back(out[out.size() - dist]);
    }
    if (out.size() > limit) fail("deflate stream inflates past its declared size");
  }
}

}  // namespace

uint32_t crc32(const uint8_t *p, size_t n) {
  struct Table {
    uint32_t t[256];
    Table() {
      for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
      }
    }
  };
  static const Table table;  // initialised once, thread-safely
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table.t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<uint8_t> inflate(const uint8_t *in, size_t n, size_t expected) {
  std::vector<uint8_t> out;
  out.reserve(expected);
  Bits b{in, n};
  int last;
  do {
    last = b.get(1);
    int type = b.get(2);
    if (type == 0) {  // stored: byte-aligned LEN, NLEN, then LEN raw bytes
      b.buf = 0;
      b.cnt = 0;
      if (b.pos + 4 > n) fail("deflate stored block ends early");
      uint32_t len = u16(in + b.pos), nlen = u16(in + b.pos + 2);
      if (len != (~nlen & 0xFFFF)) fail("deflate stored block length check failed");
      b.pos += 4;
      if (b.pos + len > n) fail("deflate stored block ends early");
      out.insert(out.end(), in + b.pos, in + b.pos + len);
      b.pos += len;
    } else if (type == 1) {  // fixed Huffman codes
      struct Fixed {
        Huffman lens, dists;
        Fixed() {
          short l[288];
          for (int s = 0; s < 288; s++) l[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
          build(lens, l, 288);
          for (int s = 0; s < 30; s++) l[s] = 5;
          build(dists, l, 30);
        }
      };
      static const Fixed fixed;  // initialised once, thread-safely
      codes(b, out, fixed.lens, fixed.dists, expected);
    } else if (type == 2) {  // dynamic Huffman codes
      int nlen = b.get(5) + 257, ndist = b.get(5) + 1, ncode = b.get(4) + 4;
      if (nlen > 286 || ndist > 30) fail("bad deflate block header");
      static const short order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
      short lengths[320] = {0};
      for (int i = 0; i < ncode; i++) lengths[order[i]] = short(b.get(3));
      Huffman lencode, distcode;
      if (build(lencode, lengths, 19) != 0) fail("bad deflate code-length code");
      int index = 0;
      while (index < nlen + ndist) {
        int sym = decode(b, lencode);
        if (sym < 16) {
          lengths[index++] = short(sym);
          continue;
        }
        short len = 0;
        if (sym == 16) {
          if (index == 0) fail("deflate repeat with no previous length");
          len = lengths[index - 1];
          sym = 3 + b.get(2);
        } else if (sym == 17) {
          sym = 3 + b.get(3);
        } else {
          sym = 11 + b.get(7);
        }
        if (index + sym > nlen + ndist) fail("deflate code lengths overflow");
        while (sym--) lengths[index++] = len;
      }
      if (lengths[256] == 0) fail("deflate block has no end code");
      int err = build(lencode, lengths, nlen);
      if (err < 0 || (err > 0 && nlen - lencode.count[0] != 1)) fail("bad deflate literal/length code");
      err = build(distcode, lengths + nlen, ndist);
      if (err < 0 || (err > 0 && ndist - distcode.count[0] != 1)) fail("bad deflate distance code");
      codes(b, out, lencode, distcode, expected);
    } else {
      fail("bad deflate block type");
    }
    if (out.size() > expected) fail("deflate stream inflates past its declared size");
  } while (!last);
  return out;
}

size_t Array::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

Array parse_npy(const std::vector<uint8_t> &b) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) fail("not an .npy array");
  size_t hlen, start;
  if (b[6] == 1) {
    hlen = u16(&b[8]);
    start = 10;
  } else if (b[6] == 2 || b[6] == 3) {
    if (b.size() < 12) fail(".npy header ends early");
    hlen = u32(&b[8]);
    start = 12;
  } else {
    fail(".npy format version " + std::to_string(b[6]) + " is not 1, 2 or 3");
  }
  if (start + hlen > b.size()) fail(".npy header ends early");
  std::string h(b.begin() + long(start), b.begin() + long(start + hlen));
  auto field = [&](const char *key) {
    size_t k = h.find(std::string("'") + key + "'");
    if (k == std::string::npos) fail(std::string(".npy header has no '") + key + "'");
    k = h.find(':', k);
    if (k == std::string::npos) fail(".npy header is malformed");
    k++;
    while (k < h.size() && h[k] == ' ') k++;
    return k;
  };
  Array a;
  size_t k = field("descr");
  if (k >= h.size() || h[k] != '\'') fail(".npy descr is not a string (structured dtypes are not supported)");
  size_t e = h.find('\'', k + 1);
  if (e == std::string::npos) fail(".npy header is malformed");
  a.descr = h.substr(k + 1, e - k - 1);
  if (h.compare(field("fortran_order"), 4, "True") == 0) fail(".npy array is in Fortran order");
  k = field("shape");
  if (k >= h.size() || h[k] != '(') fail(".npy shape is malformed");
  e = h.find(')', k);
  if (e == std::string::npos) fail(".npy shape is malformed");
  std::string dims = h.substr(k + 1, e - k - 1);
  for (size_t p = 0; p < dims.size();) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) p++;
    if (p >= dims.size()) break;
    size_t q = p;
    while (q < dims.size() && dims[q] >= '0' && dims[q] <= '9') q++;
    if (q == p) fail(".npy shape is malformed");
    a.shape.push_back(std::stoll(dims.substr(p, q - p)));
    p = q;
  }
  if (a.descr.size() < 3 || a.descr[0] == '>') fail(".npy dtype '" + a.descr + "' is not little-endian");
  size_t item = size_t(std::stoi(a.descr.substr(2)));
  size_t need = a.count() * item, off = start + hlen;
  if (b.size() - off != need)
    fail(".npy data has " + std::to_string(b.size() - off) + " bytes, its header says " + std::to_string(need));
  a.data.assign(b.begin() + long(off), b.end());
  return a;
}

std::map<std::string, Array> load(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + path);
  std::vector<uint8_t> z((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string &why) { fail(path + ": " + why); };
  if (z.size() < 22) bad("not a zip archive (too short)");
  // End of central directory: the last "PK\5\6" within 64 KiB + 22 bytes of the end.
  size_t eocd = std::string::npos;
  for (size_t i = z.size() - 22 + 1; i-- > 0 && z.size() - i <= 65557;)
    if (u32(&z[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) bad("not a zip archive (no end of central directory)");
  uint64_t entries = u16(&z[eocd + 10]), cd = u32(&z[eocd + 16]);
  if (cd == 0xFFFFFFFFu || entries == 0xFFFF) {  // zip64: locator right before the EOCD
    if (eocd < 20 || u32(&z[eocd - 20]) != 0x07064b50) bad("zip64 locator missing");
    uint64_t rec = u64(&z[eocd - 20 + 8]);
    if (rec + 56 > z.size() || u32(&z[rec]) != 0x06064b50) bad("zip64 end record missing");
    entries = u64(&z[rec + 32]);
    cd = u64(&z[rec + 48]);
  }
  std::map<std::string, Array> out;
  size_t p = size_t(cd);
  for (uint64_t e = 0; e < entries; e++) {
    if (p + 46 > z.size() || u32(&z[p]) != 0x02014b50) bad("central directory entry is malformed");
    uint32_t method = u16(&z[p + 10]), crc = u32(&z[p + 16]);
    uint64_t csize = u32(&z[p + 20]), usize = u32(&z[p + 24]);
    size_t nlen = u16(&z[p + 28]), xlen = u16(&z[p + 30]), clen = u16(&z[p + 32]);
    uint64_t local = u32(&z[p + 42]);
    if (p + 46 + nlen + xlen + clen > z.size()) bad("central directory entry is malformed");
    std::string name(z.begin() + long(p + 46), z.begin() + long(p + 46 + nlen));
    // zip64 extra field (id 1): the 0xFFFFFFFF sizes/offset follow in this order
    for (size_t x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen;) {
      uint32_t id = u16(&z[x]), sz = u16(&z[x + 2]);
      size_t q = x + 4, end = q + sz;
      if (end > p + 46 + nlen + xlen) break;
      if (id == 1) {
        if (usize == 0xFFFFFFFFu && q + 8 <= end) { usize = u64(&z[q]); q += 8; }
        if (csize == 0xFFFFFFFFu && q + 8 <= end) { csize = u64(&z[q]); q += 8; }
        if (local == 0xFFFFFFFFu && q + 8 <= end) { local = u64(&z[q]); q += 8; }
      }
      x = end;
    }
    p += 46 + nlen + xlen + clen;
    if (local + 30 > z.size() || u32(&z[local]) != 0x04034b50) bad("local header of " + name + " is malformed");
    uint64_t data = local + 30 + u16(&z[local + 26]) + u16(&z[local + 28]);
    if (data + csize > z.size()) bad(name + " runs past the end of the archive");
    std::vector<uint8_t> raw;
    if (method == 0) {
      if (csize != usize) bad(name + ": stored entry with different sizes");
      raw.assign(z.begin() + long(data), z.begin() + long(data + csize));
    } else if (method == 8) {
      try {
        raw = inflate(&z[data], size_t(csize), size_t(usize));
      } catch (const std::exception &ex) {
        bad(name + ": " + ex.what());
      }
    } else {
      bad(name + ": compression method " + std::to_string(method) + " (only stored and deflate are read)");
    }
    if (raw.size() != usize) bad(name + ": inflated to " + std::to_string(raw.size()) + " bytes, expected " +
                                 std::to_string(usize));
    if (crc32(raw.data(), raw.size()) != crc) bad(name + ": CRC-32 mismatch");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    try {
      out[name] = parse_npy(raw);
    } catch (const std::exception &ex) {
      bad(name + ": " + ex.what());
    }
  }
  return out;
}

}  // namespace npz
