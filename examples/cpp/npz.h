// Reads NumPy .npz archives as edgekit writes reference_io.npz (np.savez_compressed: a zip of .npy files,
// deflated, zip64 local headers) and plain np.savez ones (stored). No zlib: inflate is in npz.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace npz {

struct Array {
  std::string descr;           // NumPy dtype string, e.g. "<f4", "<i8", "|b1"
  std::vector<int64_t> shape;  // C order
  std::vector<uint8_t> data;   // raw little-endian elements
  size_t count() const;        // number of elements
};

// name (without ".npy") -> array. Throws std::runtime_error naming the file and the problem.
std::map<std::string, Array> load(const std::string &path);

// Exposed for tests of the pieces.
std::vector<uint8_t> inflate(const uint8_t *in, size_t n, size_t expected_size);
Array parse_npy(const std::vector<uint8_t> &bytes);
uint32_t crc32(const uint8_t *p, size_t n);

}  // namespace npz
