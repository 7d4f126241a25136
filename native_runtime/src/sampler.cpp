// NumPy-compatible random stream and sampling (see sampler.h). The seeding follows
// numpy/random/bit_generator.pyx (SeedSequence, pool of 4 uint32 words) and _pcg64.pyx (PCG64 XSL-RR).
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ek {
namespace {

constexpr uint32_t INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
constexpr uint32_t MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715;
constexpr int POOL = 4;

uint32_t hashmix(uint32_t value, uint32_t &hash_const) {
  value ^= hash_const;
  hash_const *= MULT_A;
  value *= hash_const;
  value ^= value >> 16;
  return value;
}
uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y;
  return r ^ (r >> 16);
}

// SeedSequence(seed).generate_state(4, uint64)
void seed_state(uint64_t seed, uint64_t out[4]) {
  std::vector<uint32_t> entropy;
  if (seed == 0) entropy.push_back(0);
  for (uint64_t s = seed; s; s >>= 32) entropy.push_back(uint32_t(s));
  uint32_t pool[POOL], hc = INIT_A;
  for (int i = 0; i < POOL; i++) pool[i] = hashmix(i < int(entropy.size()) ? entropy[size_t(i)] : 0, hc);
  for (int s = 0; s < POOL; s++)
    for (int d = 0; d < POOL; d++)
      if (s != d) pool[d] = mix(pool[d], hashmix(pool[s], hc));
  for (size_t s = POOL; s < entropy.size(); s++)
    for (int d = 0; d < POOL; d++) pool[d] = mix(pool[d], hashmix(entropy[s], hc));
  uint32_t words[8], hb = INIT_B;
  for (int i = 0; i < 8; i++) {
    uint32_t v = pool[i % POOL] ^ hb;
    hb *= MULT_B;
    v *= hb;
    v ^= v >> 16;
    words[i] = v;
  }
  for (int i = 0; i < 4; i++) out[i] = uint64_t(words[2 * i]) | (uint64_t(words[2 * i + 1]) << 32);
}

const unsigned __int128 PCG_MULT =
    (unsigned __int128)0x2360ED051FC65DA4ULL << 64 | (unsigned __int128)0x4385DF649FCCF645ULL;

}  // namespace

Pcg64::Pcg64(uint64_t seed) {
  uint64_t v[4];
  seed_state(seed, v);
  unsigned __int128 initstate = (unsigned __int128)v[0] << 64 | v[1];
  unsigned __int128 initseq = (unsigned __int128)v[2] << 64 | v[3];
  state_ = 0;
  inc_ = (initseq << 1) | 1;
  state_ = state_ * PCG_MULT + inc_;
  state_ += initstate;
  state_ = state_ * PCG_MULT + inc_;
}

uint64_t Pcg64::next_u64() {
  state_ = state_ * PCG_MULT + inc_;
  uint64_t x = uint64_t(state_ >> 64) ^ uint64_t(state_);
  unsigned rot = unsigned(state_ >> 122);
  return (x >> rot) | (x << ((64 - rot) & 63));
}

double Pcg64::next_double() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double pairwise_sum(const double *a, size_t n) {
  if (n < 8) {
    double r = 0.;
    for (size_t i = 0; i < n; i++) r += a[i];
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[i + size_t(j)];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

int64_t Sampler::sample(const float *logits, size_t n) {
  if (n == 0) return -1;
  if (temperature_ <= 0) {
    size_t best = 0;  // np.argmax: the first maximum; a NaN wins as in NumPy
    for (size_t i = 1; i < n; i++) {
      if (std::isnan(logits[best])) break;
      if (std::isnan(logits[i]) || logits[i] > logits[best]) best = i;
    }
    return int64_t(best);
  }
  // z = logits.astype(float64) / T; top-k keeps z >= the k-th largest; p = exp(z - max) / sum
  z_.resize(n);
  for (size_t i = 0; i < n; i++) z_[i] = double(logits[i]) / double(temperature_);
  if (top_k_ > 0 && size_t(top_k_) < n) {
    p_ = z_;
    std::nth_element(p_.begin(), p_.begin() + (top_k_ - 1), p_.end(), std::greater<double>());
    double cut = p_[size_t(top_k_ - 1)];
    for (double &v : z_)
      if (!(v >= cut)) v = -std::numeric_limits<double>::infinity();
  }
  double mx = *std::max_element(z_.begin(), z_.end());
  p_.resize(n);
  for (size_t i = 0; i < n; i++) p_[i] = std::exp(z_[i] - mx);
  double total = pairwise_sum(p_.data(), n);
  for (double &v : p_) v /= total;
  // Generator.choice(n, p=p): cdf = cumsum(p) / cdf[-1]; searchsorted(cdf, random(), 'right')
  for (size_t i = 1; i < n; i++) p_[i] += p_[i - 1];
  double last = p_[n - 1];
  for (double &v : p_) v /= last;
  double u = rng_.next_double();
  return int64_t(std::upper_bound(p_.begin(), p_.end(), u) - p_.begin());
}

}  // namespace ek
