/* memfill.c: the memory benchmarks' target. Maps SIZE MiB of private
 * anonymous memory, fills it with text-like data (words, numbers, some
 * UTF-16 words and random bytes, from a fixed-seed generator, so every run
 * is the same), writes the same bytes to FILE, prints "READY addr=0x..."
 * and waits for SIGTERM.
 *
 * Usage: memfill SIZE_MIB FILE
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wait_sigterm.h"

static uint64_t state = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static const char *words[] = {"alpha", "beta", "gamma", "delta", "error", "memory",
                              "vmmap", "region", "needle", "haystack", "session",
                              "token", "user_id", "Content-Type", "GET /index.html"};

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: memfill SIZE_MIB FILE\n"); return 2; }
    size_t size = strtoull(argv[1], NULL, 10) << 20;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    size_t i = 0;
    while (i + 64 < size) {
        uint64_t r = next();
        switch (r % 8) {
        case 0: case 1: case 2: { /* a few words */
            int n = 1 + (r >> 8) % 6;
            for (int k = 0; k < n && i + 32 < size; k++) {
                const char *w = words[next() % (sizeof words / sizeof *words)];
                size_t l = strlen(w);
                memcpy(p + i, w, l);
                i += l;
                p[i++] = ' ';
            }
            p[i++] = 0;
            break;
        }
        case 3: { /* a number */
            i += snprintf(p + i, 24, "id=%llu", (unsigned long long)(r >> 20)) + 1;
            break;
        }
        case 4: { /* a UTF-16 word */
            const char *w = words[(r >> 8) % (sizeof words / sizeof *words)];
            for (; *w; w++) { p[i++] = *w; p[i++] = 0; }
            i += 2;
            break;
        }
        default: { /* binary: pointers and random bytes */
            int n = 8 + (r >> 8) % 48;
            for (int k = 0; k < n; k++) p[i++] = (char)next();
            break;
        }
        }
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(p, 1, size, f) != size || fclose(f)) { perror(argv[2]); return 1; }
    printf("READY addr=%p\n", (void *)p);
    fflush(stdout);
    wait_sigterm();
    return 0;
}
