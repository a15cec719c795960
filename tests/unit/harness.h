/*
** harness.h — a tiny unit-test harness: CHECK records failures and goes on;
** TEST_MAIN runs the listed test functions and prints "N passed, N failed".
*/
#ifndef KILN_TEST_HARNESS_H
#define KILN_TEST_HARNESS_H

#include <stdio.h>

extern int kt_failures;
extern const char *kt_current;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            kt_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__,     \
                    kt_current, #cond);                                              \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        if (!(cond)) {                                                               \
            kt_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s: ", __FILE__, __LINE__,     \
                    kt_current, #cond);                                              \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

typedef void (*kt_fn)(void);
typedef struct kt_case {
    const char *name;
    kt_fn fn;
} kt_case;

int kt_run(const kt_case *cases, int n);

#define TEST_MAIN(...)                                                               \
    int main(void) {                                                                 \
        static const kt_case cases[] = {__VA_ARGS__};                                \
        return kt_run(cases, (int)(sizeof cases / sizeof cases[0]));                 \
    }
#define T(fn) {#fn, fn}

#endif
