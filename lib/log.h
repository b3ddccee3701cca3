/*
 * Logging: one line per event on stderr, as text or JSON (RR_LOG_FORMAT /
 * --log-format), filtered by level (--log-level). Each line is written with
 * one write() so lines from worker threads never interleave.
 */
#ifndef RR_LOG_H
#define RR_LOG_H

#include <stdbool.h>

enum rr_log_level { RR_LOG_DEBUG, RR_LOG_INFO, RR_LOG_WARN, RR_LOG_ERROR };

/* Sets the program name, format ("text" or "json") and minimum level
 * ("debug", "info", "warn", "error"). Returns -1 on an unknown value. */
int rr_log_setup(const char *prog, const char *format, const char *level);
bool rr_log_enabled(enum rr_log_level level);

void rr_log(enum rr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rr_debug(...) rr_log(RR_LOG_DEBUG, __VA_ARGS__)
#define rr_info(...) rr_log(RR_LOG_INFO, __VA_ARGS__)
#define rr_warn(...) rr_log(RR_LOG_WARN, __VA_ARGS__)
#define rr_error(...) rr_log(RR_LOG_ERROR, __VA_ARGS__)

#endif
