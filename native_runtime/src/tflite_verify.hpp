#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ek {
// Whether `data` is a structurally sound .tflite whose indices are in range; `error` says why not.
bool verify_tflite(const uint8_t *data, size_t size, std::string &error);
}  // namespace ek
