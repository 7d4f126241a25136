// Next-token sampling as edgekit.generate.sample does it, with NumPy's random stream:
// np.random.default_rng(seed) (SeedSequence -> PCG64) and Generator.choice(n, p=p), so a seeded
// native run picks the same tokens as the Python one on the same logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ek {

class Pcg64 {  // numpy.random.PCG64 seeded as default_rng(seed)
 public:
  explicit Pcg64(uint64_t seed);
  uint64_t next_u64();
  double next_double();  // Generator.random(): 53 random bits in [0, 1)

 private:
  unsigned __int128 state_, inc_;
};

class Sampler {
 public:
  Sampler(float temperature, int top_k, uint64_t seed) : temperature_(temperature), top_k_(top_k), rng_(seed) {}
  // temperature <= 0: argmax (first maximum); else softmax(logits / T) over the top_k largest (ties kept).
  int64_t sample(const float *logits, size_t n);

 private:
  float temperature_;
  int top_k_;
  Pcg64 rng_;
  std::vector<double> z_, p_;
};

double pairwise_sum(const double *a, size_t n);  // NumPy's float64 sum order

}  // namespace ek
