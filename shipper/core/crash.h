/* Crash reports: a fatal signal prints a backtrace to stderr (docs/architecture.md, "Crash
 * reports"). */
#ifndef SP_CRASH_H
#define SP_CRASH_H

/** Installs the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (on its own stack, so
 * a stack overflow is reported too). The handler writes the signal, the faulting address and
 * the stack (glibc's backtrace_symbols_fd: `binary(+offset)`, for addr2line) to stderr, then
 * the signal's default action runs (exit by that signal, core dump where enabled). Does
 * nothing in sanitizer builds: ASan and UBSan report faults themselves. */
void sp_crash_install(void);

#endif
