// SHA-256 (FIPS 180-4), streaming, for verifying the files a manifest lists.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ek {

class Sha256 {
 public:
  Sha256();
  void update(const void *data, size_t n);
  std::string hex();  // finalises; call once

 private:
  void block(const uint8_t *p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// Hex digest and size of a regular file; false (with `error`) when it cannot be read.
bool sha256_file(const std::string &path, std::string &hex, uint64_t &bytes, std::string &error);

}  // namespace ek
