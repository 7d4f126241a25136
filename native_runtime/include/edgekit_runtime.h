/* edgekit_runtime: run an edgekit artifact directory (manifest.json + model file) from C or C++.
 *
 * One opaque handle per opened artifact. Every call returns a status; on failure ek_last_error()
 * holds a message for the calling thread. Nothing in this library aborts, exits or throws across
 * the C boundary: a bad artifact, a missing backend or a wrong input shape is a status.
 *
 * Backends: ExecuTorch (.pte; XNNPACK delegate and edgekit's compressed-weight kernels when built)
 * and LiteRT (.tflite, through the C API of libLiteRt.so, loaded at run time).
 *
 * Thread safety: different artifacts may be used from different threads at once; one artifact is
 * used by one thread at a time (ek_run on the same handle must be serialised by the caller).
 */
#ifndef EDGEKIT_RUNTIME_H
#define EDGEKIT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EK_API __declspec(dllexport)
#else
#define EK_API __attribute__((visibility("default")))
#endif

#define EK_RUNTIME_VERSION "0.1.0" /* == edgekit's package version; manifests may require a minimum */
#define EK_MAX_RANK 8

typedef enum {
  EK_OK = 0,
  EK_ERR_ARGUMENT,            /* NULL handle/pointer, bad option value */
  EK_ERR_IO,                  /* a file cannot be opened or read */
  EK_ERR_MANIFEST,            /* manifest.json missing, not JSON, wrong schema or missing fields */
  EK_ERR_CHECKSUM,            /* a listed file's sha256 or size differs from the manifest */
  EK_ERR_VERSION,             /* the manifest's min_runtime_version is newer than this library */
  EK_ERR_BACKEND_UNAVAILABLE, /* the artifact's target has no backend here (e.g. libLiteRt.so not found) */
  EK_ERR_LOAD,                /* the backend refused the model file (corrupt or unsupported program) */
  EK_ERR_NO_METHOD,           /* no method of that name */
  EK_ERR_INPUT,               /* input count, name, dtype, rank, shape or byte size mismatch */
  EK_ERR_RUN,                 /* the backend failed while executing */
  EK_ERR_NOMEM                /* allocation failed */
} ek_status;

/* Element types (appended values only; never renumbered). */
typedef enum { EK_F32 = 0, EK_F16, EK_I64, EK_I32, EK_I8, EK_U8, EK_BOOL, EK_F64, EK_I16 } ek_dtype;

typedef struct ek_artifact ek_artifact; /* opaque */

/* NULL options = defaults: threads 0 (all cores), verify_checksums 1. */
typedef struct {
  int threads;          /* ExecuTorch: XNNPACK thread pool size and, for programs with edgekit:: ops, the
                           kernels' pool (process-wide; 0 = its default, all cores);
                           LiteRT: its default (libLiteRt 2.3.0's C API exports no CPU-options setter) */
  int verify_checksums; /* 1: check the sha256 and size of every file listed in the manifest on open */
} ek_options;

/* A tensor passed in (caller-owned data) or handed out (runtime-owned data). */
typedef struct {
  const char *name; /* inputs: matched by name; NULL = positional (i-th signature input) */
  ek_dtype dtype;
  int32_t rank;
  int64_t shape[EK_MAX_RANK];
  void *data;
  size_t nbytes;
} ek_tensor;

/* A signature entry from the manifest; shape[i] = -1 for a symbolic or unknown dimension. */
typedef struct {
  const char *name;
  ek_dtype dtype;
  int32_t rank;
  int64_t shape[EK_MAX_RANK];
} ek_tensor_info;

EK_API const char *ek_version(void);            /* EK_RUNTIME_VERSION */
EK_API const char *ek_status_name(ek_status s); /* "EK_OK", "EK_ERR_CHECKSUM", ... */
EK_API const char *ek_last_error(void);         /* message of the last failed call on this thread ("" if none) */
EK_API size_t ek_dtype_size(ek_dtype t);        /* bytes per element; 0 for an unknown value */
EK_API const char *ek_dtype_name(ek_dtype t);   /* numpy spelling: "float32", "int64", ... */

/* Opens an artifact directory: reads and verifies manifest.json, then loads the model file. */
EK_API ek_status ek_open(const char *artifact_dir, const ek_options *opts, ek_artifact **out);
EK_API void ek_close(ek_artifact *a); /* NULL is a no-op */

EK_API const char *ek_target(const ek_artifact *a); /* "executorch" | "tflite" */
EK_API int ek_method_count(const ek_artifact *a);
EK_API const char *ek_method_name(const ek_artifact *a, int i); /* NULL when out of range */
/* The arrays stay valid until ek_close. */
EK_API ek_status ek_method_signature(const ek_artifact *a, const char *method, int *n_inputs,
                                     const ek_tensor_info **inputs, int *n_outputs,
                                     const ek_tensor_info **outputs);

/* Runs `method` (NULL = the only method, or "forward"). Inputs are matched by name (or position when
 * name is NULL) and checked against the signature (dtype, rank, concrete dims, nbytes). `outputs` is
 * an array of n_outputs structs the runtime fills: data points into runtime-owned memory, valid until
 * the next ek_run on the same artifact or ek_close. n_outputs may be smaller than the method's count
 * (the first n_outputs are filled). */
EK_API ek_status ek_run(ek_artifact *a, const char *method, const ek_tensor *inputs, int n_inputs,
                        ek_tensor *outputs, int n_outputs);

/* LLM helper (implemented in src/llm*.cpp) */
typedef struct ek_llm ek_llm;
typedef struct {
  float temperature; /* 0 = greedy */
  int top_k;         /* 0 = no top-k cut */
  uint64_t seed;
  int max_new_tokens;
} ek_sampling;
typedef struct {
  double ttft_ms, prefill_tok_s, decode_tok_s;
  int prompt_tokens, new_tokens;
} ek_llm_stats;
EK_API ek_status ek_llm_open(const char *artifact_dir, const ek_options *opts, ek_llm **out);
EK_API ek_status ek_llm_generate(ek_llm *m, const char *prompt, const ek_sampling *s, char **text_out,
                                 ek_llm_stats *stats);
EK_API void ek_llm_close(ek_llm *m);
EK_API void ek_free(void *p); /* frees memory this library handed out (e.g. text_out) */

#ifdef __cplusplus
}
#endif
#endif /* EDGEKIT_RUNTIME_H */
