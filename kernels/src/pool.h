/* A persistent pthread pool: ek_pool_run(fn, arg, parts) runs fn(arg, i) once for every i in [0, parts),
 * the parts claimed one at a time by the caller and by spinning or parked workers (created on first need,
 * kept for reuse); it returns when all are done. One job at a time. */
#ifndef EK_POOL_H
#define EK_POOL_H
void ek_pool_run(void (*fn)(void *, int), void *arg, int parts);
/* how long idle workers (and a caller waiting for them) spin before they sleep, in ns (default 200 us) */
void ek_pool_set_spin(long ns);
long ek_pool_spin(void);
#endif
