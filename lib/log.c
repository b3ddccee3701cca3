/*
 * Logging, see log.h. Kept deliberately small: no buffering, no rotation
 * (run under a supervisor that captures stderr).
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "roomrelay";
static bool log_json;
static enum rr_log_level log_min = RR_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rr_log_setup(const char *prog, const char *format, const char *level)
{
    if (prog)
        log_prog = prog;
    if (format) {
        if (strcmp(format, "text") == 0)
            log_json = false;
        else if (strcmp(format, "json") == 0)
            log_json = true;
        else
            return -1;
    }
    if (level) {
        for (int i = 0; i <= RR_LOG_ERROR; i++) {
            if (strcmp(level, level_names[i]) == 0) {
                log_min = (enum rr_log_level)i;
                return 0;
            }
        }
        return -1;
    }
    return 0;
}

bool rr_log_enabled(enum rr_log_level level)
{
    return level >= log_min;
}

/* Appends s to out as the inside of a JSON string; returns the new length. */
static size_t json_escape(char *out, size_t off, size_t cap, const char *s)
{
    for (; *s && off + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[off++] = '\\';
            out[off++] = (char)c;
        } else if (c < 0x20) {
            off += (size_t)snprintf(out + off, cap - off, "\\u%04x", c);
        } else {
            out[off++] = (char)c;
        }
    }
    return off;
}

void rr_log(enum rr_log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    char line[4096];
    size_t off;
    if (log_json) {
        off = (size_t)snprintf(line, sizeof(line),
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":\"", ts,
                               level_names[level], log_prog);
        off = json_escape(line, off, sizeof(line) - 3, msg);
        line[off++] = '"';
        line[off++] = '}';
    } else {
        off = (size_t)snprintf(line, sizeof(line), "%s %s %s: %s", ts, level_names[level], log_prog,
                               msg);
        if (off > sizeof(line) - 2)
            off = sizeof(line) - 2;
    }
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}
