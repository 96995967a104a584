/* The variadic exec functions. glibc's own execl* call its internal
 * __execve, which a preloaded library cannot interpose, so the agent would
 * not see the image being replaced and would lose its unwritten events.
 * These build argv on the stack and call execv/execvp/execve through the
 * PLT, which resolves to the agent's Rust hooks (they flush first).
 * A Rust cdylib exports only Rust symbols, so the exported execl* are
 * naked Rust functions that jump here with the arguments untouched. */
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define COLLECT_ARGV(last, argv, envp_out)                                 \
    size_t n = 1;                                                          \
    va_list ap;                                                            \
    va_start(ap, last);                                                    \
    while (va_arg(ap, const char *) != NULL) n++;                          \
    va_end(ap);                                                            \
    const char *argv[n + 1];                                               \
    argv[0] = last;                                                        \
    va_start(ap, last);                                                    \
    for (size_t i = 1; i <= n; i++) argv[i] = va_arg(ap, const char *);    \
    envp_out;                                                              \
    va_end(ap);

int vmmap_agent_execl(const char *path, const char *arg, ...) {
    COLLECT_ARGV(arg, argv, (void)0)
    return execv(path, (char *const *)argv);
}

int vmmap_agent_execlp(const char *file, const char *arg, ...) {
    COLLECT_ARGV(arg, argv, (void)0)
    return execvp(file, (char *const *)argv);
}

int vmmap_agent_execle(const char *path, const char *arg, ...) {
    char *const *envp;
    COLLECT_ARGV(arg, argv, envp = va_arg(ap, char *const *))
    return execve(path, (char *const *)argv, envp);
}
