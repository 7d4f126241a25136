// ExecuTorch runtime kernels for edgekit's compressed linear ops (libedgekit_executorch_ops.so).
//
//   edgekit::lut_linear.out, edgekit::shift_linear.out, edgekit::sparse_lut_linear.out     (exact, ek_linear)
//   edgekit::lut_linear_q8.out, edgekit::shift_linear_q8.out, edgekit::sparse_lut_linear_q8.out
//                                                                   (int8 activations, opt-in, ek_linear_q8)
//   edgekit::attention.out: causal attention over an in-place KV cache (ek_attention; at the end)
//   (Tensor x, Tensor data, Tensor tables, Tensor scale, Tensor bias, int bits, int group_size,
//    int n, int k, *, Tensor(a!) out)
//
// `data`/`tables`/`scale` are the packed arrays of ek_matrix_copy (stored in the .pte at export);
// the kernel wraps them without copying (once: wrapped weights are cached, below) and calls ek_linear
// (ek_linear_q8 for the _q8 ops: the same arrays, the int8 tables are derived from them by
// ek_matrix_wrap; 2:4 data also holds the int8 corrections). An empty `scale` / `bias` means none.
// The AOT definitions (torch.library) are in kernels/executorch_ops.py. Load this library once
// (ctypes.CDLL) before loading a program that uses the ops; its registry is libexecutorch.so's.
#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>

#include <atomic>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "edgekit_kernels.h"

// ExecuTorch's threadpool (libexecutorch_threadpool.so, the pool XNNPACK runs on) and pthreadpool's C API;
// the wheel ships no header for them (native_runtime/src/backend_executorch.cpp declares them the same way).
typedef struct pthreadpool* pthreadpool_t;
extern "C" void pthreadpool_parallelize_1d(pthreadpool_t, void (*)(void*, size_t), void*, size_t, uint32_t);
extern "C" size_t pthreadpool_get_threads_count(pthreadpool_t);
namespace executorch::extension::threadpool {
pthreadpool_t get_pthreadpool();
}  // namespace executorch::extension::threadpool

namespace {

// The last failed check's message: ExecuTorch only logs it and returns a generic error code, so the Python
// and C runtimes read it here (edgekit_ops_take_error) to report it with the fix. Per thread: an op's
// checks run on the thread that executes the method, which takes the message right after, so two
// sessions failing at once on two threads each get their own.
thread_local char last_error[512];

void record_error(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
}

// ET_KERNEL_CHECK_MSG that also records the message (cond evaluated once: some have side effects)
#define EK_CHECK(ctx, cond, error, retval, ...)                         \
    do {                                                                \
        const bool ek_ok_ = (cond);                                     \
        if (!ek_ok_) record_error(__VA_ARGS__);                         \
        ET_KERNEL_CHECK_MSG(ctx, ek_ok_, error, retval, __VA_ARGS__);   \
    } while (0)

using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;

// Where decode GEMVs (m == 1) run: kEdgekitPool (default: the kernels' pool with the session's threads,
// like prefill), kCalling (the calling thread) or kExecutorchPool (row blocks on ExecuTorch's threadpool,
// whose workers sleep between calls: a wake-up per GEMV). edgekit_ops_set_decode_threads() switches it
// (benchmarks/kernels_decode.py measures them side by side).
enum { kEdgekitPool = 0, kCalling = 1, kExecutorchPool = 2 };
std::atomic<int> decode_mode{kEdgekitPool};

struct PoolTask {
    void (*fn)(void*, int);
    void* arg;
};
void pool_task(void* task, size_t i) {
    auto* t = static_cast<PoolTask*>(task);
    t->fn(t->arg, static_cast<int>(i));
}
void executorch_runner(void* pool, void (*fn)(void*, int), void* arg, int parts) {
    PoolTask t{fn, arg};
    pthreadpool_parallelize_1d(static_cast<pthreadpool_t>(pool), pool_task, &t, static_cast<size_t>(parts), 0);
}

// Wrapped weights, reused across calls: ek_matrix_wrap builds the row and block maps and the int8 tables
// each time (~3 us for a weight with one table, ~60 us for 5120x768 with a table per 16 rows; a decode
// step calls 49 ops). Keyed by the constant arrays' addresses and the shape; a hit also compares the
// table values the entry was built from, so a program loaded later at the same addresses never reuses
// stale int8 tables (data and row scales are read where they are, not derived; so are the 2:4 weights'
// int8 corrections, stored in their data). Entries are shared_ptr: one evicted while another thread
// multiplies with it lives until that product ends.
struct Wrapped {
    int format, n, k, bits, group_size;
    const void *data, *tables, *scale;
    std::vector<float> table_values;
    std::shared_ptr<ek_matrix> w;
    uint64_t last_use;
};
constexpr size_t kMaxWrapped = 1024;
std::mutex cache_mu;
std::vector<Wrapped> cache;
uint64_t cache_clock = 0, cache_hits = 0, cache_misses = 0;

std::shared_ptr<ek_matrix> wrapped(int format, int n, int k, int bits, int group_size, const uint32_t* data,
                                   const float* tables, size_t table_floats, const float* scale) {
    std::lock_guard<std::mutex> lock(cache_mu);
    for (Wrapped& e : cache)
        if (e.data == data && e.tables == tables && e.scale == scale && e.format == format && e.n == n &&
            e.k == k && e.bits == bits && e.group_size == group_size && e.table_values.size() == table_floats &&
            std::memcmp(e.table_values.data(), tables, table_floats * sizeof(float)) == 0) {
            e.last_use = ++cache_clock;
            cache_hits++;
            return e.w;
        }
    cache_misses++;
    std::shared_ptr<ek_matrix> w(ek_matrix_wrap(format, n, k, bits, group_size, data, tables, scale), ek_matrix_free);
    if (!w) return w;
    if (cache.size() >= kMaxWrapped) {  // evict the least recently used
        size_t oldest = 0;
        for (size_t i = 1; i < cache.size(); i++)
            if (cache[i].last_use < cache[oldest].last_use) oldest = i;
        cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(oldest));
    }
    cache.push_back({format, n, k, bits, group_size, data, tables, scale,
                     std::vector<float>(tables, tables + table_floats), w, ++cache_clock});
    return w;
}

Tensor& run(int format, bool q8, KernelRuntimeContext& ctx, const Tensor& x, const Tensor& data, const Tensor& tables,
            const Tensor& scale, const Tensor& bias, int64_t bits, int64_t group_size, int64_t n, int64_t k,
            Tensor& out) {
    EK_CHECK(ctx, x.scalar_type() == ScalarType::Float && x.dim() >= 1 && x.size(x.dim() - 1) == k,
             InvalidArgument, out, "edgekit linear: x must be float32 with %lld columns", (long long)k);
    EK_CHECK(ctx, data.scalar_type() == ScalarType::Int && tables.scalar_type() == ScalarType::Float,
             InvalidArgument, out, "edgekit linear: data must be int32 and tables float32");
    SizesType sizes[executorch::runtime::kTensorDimensionLimit];
    for (ssize_t d = 0; d + 1 < x.dim(); d++) sizes[d] = x.size(d);
    sizes[x.dim() - 1] = static_cast<SizesType>(n);
    EK_CHECK(ctx, executorch::runtime::resize_tensor(out, {sizes, static_cast<size_t>(x.dim())}) == Error::Ok,
             InvalidArgument, out, "edgekit linear: cannot resize the output");
    // arrays stored by an edgekit with another packed layout (3-bit before the 3.0-bit one) would be
    // read as garbage: their size differs from this library's (ek_packed_words)
    const int64_t words = ek_packed_words(format, (int)n, (int)k, (int)bits);
    EK_CHECK(ctx, words >= 0 && data.numel() == words, InvalidArgument, out,
             "edgekit linear: re-export this .pte with this edgekit: packed data of %lld words, the "
             "%lld-bit layout for %lld x %lld has %lld (older 3-bit or 2:4 layout?)",
             (long long)data.numel(), (long long)bits, (long long)n, (long long)k, (long long)words);
    const float* sc = scale.numel() ? scale.const_data_ptr<float>() : nullptr;
    const float* bi = bias.numel() ? bias.const_data_ptr<float>() : nullptr;
    const std::shared_ptr<ek_matrix> held =
        wrapped(format, (int)n, (int)k, (int)bits, (int)group_size,
                reinterpret_cast<const uint32_t*>(data.const_data_ptr<int32_t>()), tables.const_data_ptr<float>(),
                static_cast<size_t>(tables.numel()), sc);
    EK_CHECK(ctx, held != nullptr, InvalidArgument, out, "edgekit linear: %s", ek_kernels_last_error());
    const ek_matrix* w = held.get();
    const int m = static_cast<int>(x.numel() / k);
    // Decode (m == 1) and prefill both use the kernels' pool by default (threads = 0: the session's count).
    // Its workers spin a while between jobs, so the 49 GEMVs of a llama_100m step each cost no wake-up
    // (docs/kernels.md, "Decode threads").
    const int mode = m == 1 ? decode_mode.load(std::memory_order_relaxed) : kEdgekitPool;
    pthreadpool_t pool = mode == kExecutorchPool ? executorch::extension::threadpool::get_pthreadpool() : nullptr;
    int rc;
    if (pool) {
        rc = ek_linear_on(w, x.const_data_ptr<float>(), m, bi, out.mutable_data_ptr<float>(),
                          static_cast<int>(pthreadpool_get_threads_count(pool)), EK_ISA_AUTO, q8, executorch_runner, pool);
    } else {
        rc = (q8 ? ek_linear_q8 : ek_linear)(w, x.const_data_ptr<float>(), m, bi, out.mutable_data_ptr<float>(),
                                             mode == kCalling ? 1 : 0, EK_ISA_AUTO);
    }
    EK_CHECK(ctx, rc == EK_OK, Internal, out, "edgekit linear: %s", ek_kernels_last_error());
    return out;
}

// One out-variant kernel per op: (Tensor x, data, tables, scale, bias, int bits, group_size, n, k, *, out).
#define EK_LINEAR_OP(name, format, q8)                                                                         \
    Tensor& name(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& data, const Tensor& tables,          \
                 const Tensor& scale, const Tensor& bias, int64_t bits, int64_t group_size, int64_t n, int64_t k, \
                 Tensor& out) {                                                                                 \
        return run(format, q8, ctx, x, data, tables, scale, bias, bits, group_size, n, k, out);                 \
    }

EK_LINEAR_OP(lut_linear_out, EK_LUT, false)
EK_LINEAR_OP(shift_linear_out, EK_SHIFT, false)
EK_LINEAR_OP(sparse_lut_linear_out, EK_SPARSE24_LUT, false)
// int8 activations (opt-in, not exact: docs/kernels.md, "int8 activations")
EK_LINEAR_OP(lut_linear_q8_out, EK_LUT, true)
EK_LINEAR_OP(shift_linear_q8_out, EK_SHIFT, true)
EK_LINEAR_OP(sparse_lut_linear_q8_out, EK_SPARSE24_LUT, true)

// edgekit::attention.out(Tensor q, Tensor k_cache, Tensor v_cache, Tensor start_pos, int t, *, Tensor(a!) out):
// causal attention over the in-place KV cache, reading only positions 0 .. start + t - 1 (ek_attention;
// q (kv, rep * t, hd), caches (kv, S, hd)). On the calling thread: it reads only the positions in use.
Tensor& attention_out(KernelRuntimeContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                      const Tensor& start_pos, int64_t t, Tensor& out) {
    EK_CHECK(ctx, q.scalar_type() == ScalarType::Float && k.scalar_type() == ScalarType::Float &&
             v.scalar_type() == ScalarType::Float && q.dim() == 3 && k.dim() == 3 && v.dim() == 3 &&
             k.size(0) == q.size(0) && k.size(2) == q.size(2) && v.size(0) == k.size(0) &&
             v.size(1) == k.size(1) && v.size(2) == k.size(2),
             InvalidArgument, out, "edgekit attention: q (kv, rows, hd) and caches (kv, S, hd) float32");
    EK_CHECK(ctx, start_pos.scalar_type() == ScalarType::Long && start_pos.numel() == 1, InvalidArgument,
             out, "edgekit attention: start_pos must be one int64");
    EK_CHECK(ctx, executorch::runtime::resize_tensor(out, q.sizes()) == Error::Ok, InvalidArgument, out,
             "edgekit attention: cannot resize the output");
    int rc = ek_attention(q.const_data_ptr<float>(), k.const_data_ptr<float>(), v.const_data_ptr<float>(),
                          (int)q.size(0), (int)q.size(1), (int)t, (int)k.size(1), (int)q.size(2),
                          (int)start_pos.const_data_ptr<int64_t>()[0], out.mutable_data_ptr<float>(), EK_ISA_AUTO);
    EK_CHECK(ctx, rc == EK_OK, InvalidArgument, out, "edgekit attention: %s", ek_kernels_last_error());
    return out;
}

}  // namespace

// Where decode GEMVs run: 0 = the kernels' pool (default; ek_set_default_threads), 1 = the calling thread,
// 2 = ExecuTorch's threadpool (its thread count, the session's).
extern "C" __attribute__((visibility("default"))) void edgekit_ops_set_decode_threads(int mode) {
    decode_mode.store(mode == kCalling || mode == kExecutorchPool ? mode : kEdgekitPool, std::memory_order_relaxed);
}

// Wrapped-weight cache counters: out[0] hits, out[1] misses, out[2] entries (tests, benchmarks).
extern "C" __attribute__((visibility("default"))) void edgekit_ops_cache_stats(int64_t out[3]) {
    std::lock_guard<std::mutex> lock(cache_mu);
    out[0] = static_cast<int64_t>(cache_hits);
    out[1] = static_cast<int64_t>(cache_misses);
    out[2] = static_cast<int64_t>(cache.size());
}

// The message of this thread's last failed check since its previous call ("" if none), then forgets it.
extern "C" __attribute__((visibility("default"))) const char* edgekit_ops_take_error() {
    static thread_local char taken[sizeof last_error];
    std::snprintf(taken, sizeof taken, "%s", last_error);
    last_error[0] = '\0';
    return taken;
}

EXECUTORCH_LIBRARY(edgekit, "lut_linear.out", lut_linear_out);
EXECUTORCH_LIBRARY(edgekit, "shift_linear.out", shift_linear_out);
EXECUTORCH_LIBRARY(edgekit, "sparse_lut_linear.out", sparse_lut_linear_out);
EXECUTORCH_LIBRARY(edgekit, "lut_linear_q8.out", lut_linear_q8_out);
EXECUTORCH_LIBRARY(edgekit, "shift_linear_q8.out", shift_linear_q8_out);
EXECUTORCH_LIBRARY(edgekit, "sparse_lut_linear_q8.out", sparse_lut_linear_q8_out);
EXECUTORCH_LIBRARY(edgekit, "attention.out", attention_out);
