/* Stress check of the kernels' pool (kernels/src/pool.c), built by tests/kernels/test_pool.py with
 * ThreadSanitizer when the compiler has it: 3 callers at once, 20000 jobs each, 1-9 parts, spin times
 * changing on the way; every part of every job must run exactly once. Prints "ok". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include "pool.h"
typedef struct { int parts; atomic_int hits[64]; } job;
static void fn(void *a, int i) { job *j = a; atomic_fetch_add(&j->hits[i], 1); }
static void *caller(void *seed) {
    unsigned s = (unsigned)(long)seed;
    for (int it = 0; it < 20000; it++) {
        job j; j.parts = 1 + rand_r(&s) % 9;
        for (int i = 0; i < 64; i++) atomic_init(&j.hits[i], 0);
        if (it % 1000 == 999) ek_pool_set_spin((rand_r(&s) % 3) * 100000);
        ek_pool_run(fn, &j, j.parts);
        for (int i = 0; i < 64; i++) {
            int want = i < j.parts;
            if (atomic_load(&j.hits[i]) != want) { printf("FAIL it %d part %d hits %d parts %d\n", it, i, atomic_load(&j.hits[i]), j.parts); exit(1); }
        }
    }
    return NULL;
}
int main(void) {
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, caller, (void *)(i + 1));
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    puts("ok");
    return 0;
}
