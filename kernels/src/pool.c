#include <pthread.h>

#include "pool.h"

#define EK_MAX_WORKERS 64

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_start = PTHREAD_COND_INITIALIZER, cv_done = PTHREAD_COND_INITIALIZER;
static int nworkers, parts_now, pending;
static unsigned long generation;
static void (*fn_now)(void *, int);
static void *arg_now;

static void *worker(void *idp) {
    const int id = (int)(long)idp;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (generation == seen) pthread_cond_wait(&cv_start, &mu);
        seen = generation;
        void (*fn)(void *, int) = fn_now;
        void *arg = arg_now;
        int parts = parts_now;
        pthread_mutex_unlock(&mu);
        if (id >= parts) continue;
        fn(arg, id);
        pthread_mutex_lock(&mu);
        if (--pending == 0) pthread_cond_signal(&cv_done);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

void ek_pool_run(void (*fn)(void *, int), void *arg, int parts) {
    if (parts > EK_MAX_WORKERS + 1) parts = EK_MAX_WORKERS + 1;
    if (parts <= 1) { fn(arg, 0); return; }
    pthread_mutex_lock(&run_lock);
    while (nworkers < parts - 1) {  /* workers are 1..nworkers */
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, worker, (void *)(long)(nworkers + 1)) != 0) { pthread_attr_destroy(&at); break; }
        pthread_attr_destroy(&at);
        nworkers++;
    }
    int extra = parts - 1 < nworkers ? parts - 1 : nworkers;
    pthread_mutex_lock(&mu);
    fn_now = fn; arg_now = arg; parts_now = extra + 1; pending = extra;
    generation++;
    pthread_cond_broadcast(&cv_start);
    pthread_mutex_unlock(&mu);
    fn(arg, 0);
    for (int p = extra + 1; p < parts; p++) fn(arg, p);  /* workers we could not create */
    pthread_mutex_lock(&mu);
    while (pending > 0) pthread_cond_wait(&cv_done, &mu);
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&run_lock);
}
