/* The C-host row of benchmarks/native_runtime.py: open an artifact, run `forward` on a constant input,
 * print one JSON line (wall time of the first output, first run, latencies, peak RSS). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "edgekit_runtime.h"

static double now(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s ARTIFACT THREADS MIN_RUNS MIN_SECONDS\n", argv[0]);
    return 2;
  }
  ek_options opts = {atoi(argv[2]), 1};
  int min_runs = atoi(argv[3]);
  double min_seconds = atof(argv[4]);
  ek_artifact *art = NULL;
  ek_status s = ek_open(argv[1], &opts, &art);
  if (s != EK_OK) {
    fprintf(stderr, "%s: %s\n", ek_status_name(s), ek_last_error());
    return 1;
  }
  int n_in = 0, n_out = 0;
  const ek_tensor_info *ins = NULL, *outs = NULL;
  ek_method_signature(art, NULL, &n_in, &ins, &n_out, &outs);
  ek_tensor *in = calloc((size_t)n_in, sizeof *in), *out = calloc((size_t)n_out, sizeof *out);
  for (int i = 0; i < n_in; i++) {
    size_t count = 1;
    in[i].dtype = ins[i].dtype;
    in[i].rank = ins[i].rank;
    for (int d = 0; d < ins[i].rank; d++) count *= (size_t)(in[i].shape[d] = ins[i].shape[d] < 0 ? 1 : ins[i].shape[d]);
    in[i].nbytes = count * ek_dtype_size(ins[i].dtype);
    in[i].data = calloc(1, in[i].nbytes + 1);
  }
  double t = now(CLOCK_MONOTONIC);
  if ((s = ek_run(art, NULL, in, n_in, out, n_out)) != EK_OK) {
    fprintf(stderr, "%s: %s\n", ek_status_name(s), ek_last_error());
    return 1;
  }
  double first = now(CLOCK_MONOTONIC) - t, first_wall = now(CLOCK_REALTIME);
  double warm_end = now(CLOCK_MONOTONIC) + 0.5;
  for (int i = 0; i < 10 || now(CLOCK_MONOTONIC) < warm_end; i++) ek_run(art, NULL, in, n_in, out, n_out);
  size_t cap = 1024, n = 0;
  double *lat = malloc(cap * sizeof *lat), end = now(CLOCK_MONOTONIC) + min_seconds;
  while ((int)n < min_runs || now(CLOCK_MONOTONIC) < end) {
    if (n == cap) lat = realloc(lat, (cap *= 2) * sizeof *lat);
    t = now(CLOCK_MONOTONIC);
    ek_run(art, NULL, in, n_in, out, n_out);
    lat[n++] = now(CLOCK_MONOTONIC) - t;
  }
  qsort(lat, n, sizeof *lat, cmp);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"session\": \"C host\", \"first_output_wall\": %.6f, \"first_run_s\": %.6f, \"latencies_s\": [", first_wall, first);
  for (size_t i = 0; i < n; i++) printf("%s%.7f", i ? ", " : "", lat[i]);
  printf("], \"peak_rss_mb\": %.2f, \"cos_vs_reference\": null, \"torch_loaded\": false}\n", ru.ru_maxrss / 1024.0);
  ek_close(art);
  return 0;
}
