/*
 * Crash reports (docs/architecture.md, "Crash reports"). Only async-signal-safe calls in the
 * handler: write(2) and backtrace_symbols_fd, which writes without allocating. backtrace()
 * loads libgcc on its first call (an allocation), so sp_crash_install calls it once up front.
 */
#include "crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SP_CRASH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_CRASH_SANITIZED 1
#endif
#endif

#ifdef SP_CRASH_SANITIZED
void sp_crash_install(void) {}
#else

#define SP_CRASH_STACK (64 * 1024)
#define SP_CRASH_FRAMES 64

static const int sp_crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

static void sp_crash_puts(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Unsigned `v` in base 10 or 16 into `buf` (at least 24 bytes), NUL-terminated. */
static const char *sp_crash_num(char *buf, uintptr_t v, unsigned base)
{
    char *p = buf + 23;
    *p = 0;
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (base == 16) {
        *--p = 'x';
        *--p = '0';
    }
    return p;
}

static void sp_crash_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    char b[24];
    sp_crash_puts("shipper: fatal signal ");
    sp_crash_puts(sp_crash_num(b, (uintptr_t)sig, 10));
    sp_crash_puts(" (");
    sp_crash_puts(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    sp_crash_puts(")");
    if (si->si_code <= 0) { /* sent: kill(2), raise(3), abort(3) */
        sp_crash_puts(" sent by pid ");
        sp_crash_puts(sp_crash_num(b, (uintptr_t)si->si_pid, 10));
    } else {
        sp_crash_puts(" at address ");
        sp_crash_puts(sp_crash_num(b, (uintptr_t)si->si_addr, 16));
    }
    sp_crash_puts(" in pid ");
    sp_crash_puts(sp_crash_num(b, (uintptr_t)getpid(), 10));
    sp_crash_puts(" thread ");
    sp_crash_puts(sp_crash_num(b, (uintptr_t)gettid(), 10));
    sp_crash_puts("; backtrace (addr2line -e shipper -f -i OFFSET):\n");
    void *frames[SP_CRASH_FRAMES];
    int n = backtrace(frames, SP_CRASH_FRAMES);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    /* The default action, as if no handler had run: re-raised when the handler returns (the
     * fault repeats) or now (a signal that was sent). */
    signal(sig, SIG_DFL);
    if (si->si_code <= 0) raise(sig);
}

void sp_crash_install(void)
{
    static char stack[SP_CRASH_STACK];
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    void *warm[1];
    backtrace(warm, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sp_crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sp_crash_signals / sizeof sp_crash_signals[0]; i++)
        sigaction(sp_crash_signals[i], &sa, NULL);
}
#endif
