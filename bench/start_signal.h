/* start_signal.h: lets a tool attach to a benchmark before its timed part.
 *
 * With BENCH_WAIT_START set in the environment, wait_for_start() prints
 * "READY pid=PID" and waits for SIGUSR1 (sigwait: the main thread sleeps in
 * a system call, where an attaching tool finds it); without it, it returns
 * at once. bench/attach.sh attaches vmmap or heaptrack -p to the waiting
 * process, then sends the signal, so that the program's own wall time is
 * that of its work under the tool, the attach left out.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void wait_for_start(void) {
    if (!getenv("BENCH_WAIT_START"))
        return;
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    /* Blocked in every thread made later too: a late SIGUSR1 is ignored. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    printf("READY pid=%d\n", (int)getpid());
    fflush(stdout);
    sigwait(&set, &sig);
}
