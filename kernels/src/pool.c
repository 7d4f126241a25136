#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pool.h"

#define EK_MAX_WORKERS 64
#define EK_MAX_PARTS 0xFFFF

/* A job is `parts` independent parts that the caller and the workers claim one at a time (a shared
 * ticket), so the caller never waits for a worker that has not started: on a loaded machine, where a
 * worker may not get a core for a whole time slice, the caller just runs the parts itself.
 *
 * Idle workers spin for spin_ns before they sleep on a condition variable: a decode step calls the
 * pool every 10-100 us, and waking a sleeping thread costs about that much on its own. After the
 * first few us they spin with sched_yield, which gives the core to any other runnable thread. */
static atomic_long spin_ns = 200000;
#define EK_PAUSE_NS 5000

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_start = PTHREAD_COND_INITIALIZER, cv_done = PTHREAD_COND_INITIALIZER;
static int nworkers;
static _Atomic uint64_t job_now;  /* job number, bumped (release) after the fields below are set */
/* (job number << 32) | (parts << 16) | next unclaimed part: one word, so that a claim (a CAS on it) is
 * always checked against its own job's part count, never the next job's (being set up meanwhile) */
static _Atomic uint64_t ticket;
static atomic_int done;       /* parts finished */
static void (*fn_now)(void *, int);
static void *arg_now;

void ek_pool_set_spin(long ns) { atomic_store_explicit(&spin_ns, ns < 0 ? 0 : ns, memory_order_relaxed); }
long ek_pool_spin(void) { return atomic_load_explicit(&spin_ns, memory_order_relaxed); }

/* EDGEKIT_POOL_SPIN_US (read when the first worker starts): e.g. 0 where idle workers must not hold a
 * core; a value that is not a number of microseconds is reported and ignored */
static void spin_from_env(void) {
    const char *v = getenv("EDGEKIT_POOL_SPIN_US");
    if (!v || !*v) return;
    char *end;
    const long us = strtol(v, &end, 10);
    if (*end || us < 0 || us > 1000000)
        fprintf(stderr, "edgekit kernels: EDGEKIT_POOL_SPIN_US=%s is not a number of microseconds in "
                        "0..1000000; keeping %ld us\n", v, ek_pool_spin() / 1000);
    else
        ek_pool_set_spin(us * 1000);
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* spin (pause, then sched_yield) for at most spin_ns until ready(v) holds; returns whether it did */
static int spin_until(int (*ready)(uint64_t), uint64_t v) {
    const long start = now_ns(), limit = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    for (int i = 0;; i++) {
        if (ready(v)) return 1;
        if ((i & 15) == 15) {
            const long waited = now_ns() - start;
            if (waited > limit) return ready(v);
            if (waited > EK_PAUSE_NS) { sched_yield(); continue; }
        }
        cpu_relax();
    }
}
static int new_job(uint64_t seen) { return atomic_load_explicit(&job_now, memory_order_acquire) != seen; }
static int all_done(uint64_t parts) { return (uint64_t)atomic_load_explicit(&done, memory_order_acquire) >= parts; }

/* claim and run parts of job `job` until none is left (or the job is over) */
static void run_parts_of(uint64_t job) {
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    for (;;) {
        const int part = (int)(t & EK_MAX_PARTS), parts = (int)(t >> 16 & EK_MAX_PARTS);
        if (t >> 32 != job || part >= parts) return;
        if (!atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire))
            continue;  /* t now holds the current ticket */
        /* the job cannot end before this part is done, so its fields are still this job's */
        fn_now(arg_now, part);
        if (atomic_fetch_add_explicit(&done, 1, memory_order_acq_rel) + 1 == parts) {
            pthread_mutex_lock(&mu);  /* the caller may be asleep on cv_done */
            pthread_cond_signal(&cv_done);
            pthread_mutex_unlock(&mu);
        }
        t = atomic_load_explicit(&ticket, memory_order_acquire);
    }
}

static void *worker(void *unused) {
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(new_job, seen)) {
            pthread_mutex_lock(&mu);
            while (!new_job(seen)) pthread_cond_wait(&cv_start, &mu);
            pthread_mutex_unlock(&mu);
        }
        seen = atomic_load_explicit(&job_now, memory_order_acquire);
        run_parts_of(seen);
    }
    return unused;
}

void ek_pool_run(void (*fn)(void *, int), void *arg, int parts) {
    if (parts > EK_MAX_PARTS) parts = EK_MAX_PARTS;
    if (parts <= 1) { fn(arg, 0); return; }
    pthread_mutex_lock(&run_lock);
    if (nworkers == 0) spin_from_env();
    const int want = parts - 1 < EK_MAX_WORKERS ? parts - 1 : EK_MAX_WORKERS;
    while (nworkers < want) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&t, &at, worker, NULL) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break;  /* the caller runs what no worker claims */
        nworkers++;
    }
    const uint64_t job = atomic_load_explicit(&job_now, memory_order_relaxed) + 1;
    fn_now = fn; arg_now = arg;
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    atomic_store_explicit(&ticket, job << 32 | (uint64_t)parts << 16, memory_order_release);
    pthread_mutex_lock(&mu);  /* under mu: a worker between its last check and cond_wait cannot miss it */
    atomic_store_explicit(&job_now, job, memory_order_release);
    pthread_cond_broadcast(&cv_start);
    pthread_mutex_unlock(&mu);
    run_parts_of(job);
    if (!spin_until(all_done, (uint64_t)parts)) {  /* parts still running on workers */
        pthread_mutex_lock(&mu);
        while (!all_done((uint64_t)parts)) pthread_cond_wait(&cv_done, &mu);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_unlock(&run_lock);
}
