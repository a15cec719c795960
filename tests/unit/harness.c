#include "harness.h"

int kt_failures = 0;
const char *kt_current = "";

int kt_run(const kt_case *cases, int n) {
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        int before = kt_failures;
        kt_current = cases[i].name;
        cases[i].fn();
        if (kt_failures == before) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAIL %s\n", cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
