/* sharefill.c: the sharing benchmark's target. Makes SIZE MiB resident:
 * half private anonymous memory, half a memfd mapped MAP_SHARED (shmem,
 * whose pages pagemap marks as shareable, so exact sharing must look each
 * one up in kpagecount), every page written. Forks a child that maps the
 * same memfd and touches every other page of it, so half the shared pages
 * really are shared. Prints "READY child=PID" and waits for SIGTERM (the
 * child dies with it).
 *
 * Usage: sharefill SIZE_MIB
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 8192;
    size_t half = mib / 2 * 1024 * 1024, page = 4096;
    char *anon = mmap(NULL, half, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = memfd_create("sharefill", 0);
    if (anon == MAP_FAILED || fd < 0 || ftruncate(fd, half) != 0)
        return 1;
    char *shm = mmap(NULL, half, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < half; i += page) {
        anon[i] = 1;
        shm[i] = 1;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        for (size_t i = 0; i < half; i += 2 * page)
            shm[i] = 2;
        for (;;)
            pause();
    }
    sleep(1);
    printf("READY child=%d\n", (int)child);
    fflush(stdout);
    for (;;)
        pause();
}
