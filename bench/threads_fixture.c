/* threads_fixture MAPS IDLE BUSY
 *
 * A process with threads, for bench/snapshot.sh: MAPS extra anonymous
 * one-page mappings (read-write and written, or read-only, alternating so
 * that no two merge), IDLE threads blocked in pause() and BUSY threads
 * spinning in user space without system calls (so /proc/PID/task/TID/syscall
 * only says "running" for them). Prints "READY <pid> <maps made>" once every
 * thread runs, then waits; exits on a signal, or by itself after 2 hours.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_int started;

static void *idle(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    for (;;)
        pause();
    return NULL;
}

static void *busy(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MAPS IDLE BUSY\n", argv[0]);
        return 2;
    }
    long maps = atol(argv[1]);
    int nidle = atoi(argv[2]), nbusy = atoi(argv[3]);
    long pg = sysconf(_SC_PAGESIZE), made = 0;
    alarm(7200);
    for (long i = 0; i < maps; i++) {
        int rw = i % 2 == 0;
        char *p = mmap(NULL, pg, rw ? PROT_READ | PROT_WRITE : PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        if (rw)
            p[0] = 1;
        made++;
    }
    /* From malloc: a program that imports no allocator gives vmmap attach
     * (bench/attach.sh) no slot to hook, and is refused. */
    pthread_t *t = malloc(sizeof *t * (size_t)(nidle + nbusy + 1));
    if (!t)
        return 1;
    for (int i = 0; i < nidle; i++)
        if (pthread_create(&t[i], NULL, idle, NULL)) {
            perror("pthread_create");
            return 1;
        }
    for (int i = 0; i < nbusy; i++)
        if (pthread_create(&t[nidle + i], NULL, busy, NULL)) {
            perror("pthread_create");
            return 1;
        }
    while (atomic_load(&started) < nidle + nbusy)
        usleep(1000);
    printf("READY %d %ld\n", getpid(), made);
    fflush(stdout);
    for (;;)
        pause();
}
