/*
** conformance_report.c — the conformance summary and report.
*/
#include "conformance_report.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/mem.h"

typedef struct op_stat {
    char name[64];
    int count[CASE_RESULT_COUNT];
} op_stat;

typedef struct name_list {
    char **names;
    int n, cap;
} name_list;

void conf_free_cases(conf_case *cases, int n) {
    for (int i = 0; i < n; i++) {
        kiln_free(cases[i].name);
        kiln_free(cases[i].ops);
        kiln_free(cases[i].reason);
    }
    kiln_free(cases);
}

static void free_names(name_list *l) {
    for (int i = 0; i < l->n; i++) kiln_free(l->names[i]);
    kiln_free(l->names);
}

/* Reads one name per line; '#' starts a comment. */
static bool read_names(const char *path, name_list *l) {
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n")] = 0;
        if (!*s) continue;
        char *d = kiln_strdup(s);
        if (!d || !kiln_grow((void **)&l->names, &l->cap, l->n + 1, sizeof(char *))) {
            kiln_free(d);
            break;
        }
        l->names[l->n++] = d;
    }
    fclose(f);
    return true;
}

static bool in_list(const name_list *l, const char *name, size_t len) {
    for (int i = 0; i < l->n; i++)
        if (strlen(l->names[i]) == len && !strncmp(l->names[i], name, len)) return true;
    return false;
}

/* True when every op of the case is in the core list. */
static bool all_core(const conf_case *c, const name_list *core) {
    if (!c->ops || !c->ops[0]) return false;
    const char *p = c->ops;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (!in_list(core, p, len)) return false;
        p += len + (p[len] == ',');
    }
    return true;
}

static op_stat *stat_for(op_stat *stats, int *n, const char *name, size_t len) {
    for (int i = 0; i < *n; i++)
        if (strlen(stats[i].name) == len && !strncmp(stats[i].name, name, len)) return &stats[i];
    op_stat *s = &stats[(*n)++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%.*s", (int)len, name);
    return s;
}

/* Counts each case once per distinct op it uses. */
static int per_op(const conf_case *cases, int n, op_stat *stats, int max) {
    int ns = 0;
    for (int i = 0; i < n; i++) {
        const char *p = cases[i].ops ? cases[i].ops : "";
        op_stat *seen[256];
        int nseen = 0;
        if (!*p) p = "(not loadable)";
        while (*p && ns < max - 1) {
            size_t len = strcspn(p, ",");
            op_stat *s = stat_for(stats, &ns, p, len);
            bool dup = false;
            for (int k = 0; k < nseen; k++) dup |= seen[k] == s;
            if (!dup && nseen < 256) {
                seen[nseen++] = s;
                s->count[cases[i].result]++;
            }
            p += len + (p[len] == ',');
        }
    }
    return ns;
}

static int cmp_stat(const void *a, const void *b) {
    return strcmp(((const op_stat *)a)->name, ((const op_stat *)b)->name);
}

/* Drops every "DIR/" from a reason, so the report reads the same wherever
** the cases live. */
static void strip_dir(char *s, const char *dir) {
    size_t n = strlen(dir);
    char *p;
    while (n && (p = strstr(s, dir)) && p[n] == '/') memmove(p, p + n + 1, strlen(p + n + 1) + 1);
}

static void write_report(const conf_report_args *a, const conf_case *cases, int n, const int *tot,
                         int core_pass, int core_total, const op_stat *stats, int ns) {
    FILE *f = fopen(a->report, "w");
    if (!f) {
        fprintf(stderr, "kiln: %s: cannot write the report\n", a->report);
        return;
    }
    fprintf(f, "# kiln conformance report (target %s)\n\n", a->target);
    fprintf(f, "ONNX backend node tests: %d cases.\n\n", n);
    fprintf(f, "| result | cases |\n|---|---|\n");
    for (int r = 0; r < CASE_RESULT_COUNT; r++) fprintf(f, "| %s | %d |\n", cli_case_result_name(r), tot[r]);
    if (core_total)
        fprintf(f, "\nCases whose ops are all in the core op list: %d of %d pass.\n", core_pass, core_total);
    fprintf(f, "\n## Per op\n\nA case counts once for each distinct op of its model.\n\n");
    fprintf(f, "| op | cases | pass | fail | unsupported | error | crash | timeout |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < ns; i++) {
        const int *c = stats[i].count;
        fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", stats[i].name,
                c[0] + c[1] + c[2] + c[3] + c[4] + c[5], c[0], c[1], c[2], c[3], c[4], c[5]);
    }
    fprintf(f, "\n## Cases that do not pass\n\n| case | result | reason |\n|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        if (cases[i].result == CASE_PASS) continue;
        char reason[300];
        snprintf(reason, sizeof reason, "%s", cases[i].reason ? cases[i].reason : "");
        strip_dir(reason, a->dir);
        for (char *p = reason; *p; p++)
            if (*p == '|') *p = '/';
        fprintf(f, "| %s | %s | %s |\n", cases[i].name, cli_case_result_name(cases[i].result), reason);
    }
    fclose(f);
}

static int check_expected(const conf_report_args *a, const conf_case *cases, int n) {
    name_list exp;
    if (!read_names(a->expect, &exp)) {
        fprintf(stderr, "kiln: %s: cannot read the expected list\n", a->expect);
        return 1;
    }
    int bad = 0;
    for (int e = 0; e < exp.n; e++) {
        const conf_case *c = NULL;
        for (int i = 0; i < n; i++)
            if (!strcmp(cases[i].name, exp.names[e])) c = &cases[i];
        if (c && c->result == CASE_PASS) continue;
        bad++;
        printf("REGRESSION %s: %s%s%s\n", exp.names[e], c ? cli_case_result_name(c->result) : "missing",
               c && c->reason ? ": " : "", c && c->reason ? c->reason : "");
    }
    printf("expected-pass list: %d of %d still pass\n", exp.n - bad, exp.n);
    free_names(&exp);
    return bad ? 1 : 0;
}

static void write_passing(const char *path, const conf_case *cases, int n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kiln: %s: cannot write\n", path);
        return;
    }
    fprintf(f, "# ONNX node-test cases that pass on the reference interpreter (kiln conformance).\n");
    for (int i = 0; i < n; i++)
        if (cases[i].result == CASE_PASS) fprintf(f, "%s\n", cases[i].name);
    fclose(f);
}

int conf_report(const conf_report_args *a, conf_case *cases, int n) {
    int tot[CASE_RESULT_COUNT] = {0};
    for (int i = 0; i < n; i++) tot[cases[i].result]++;
    int core_pass = 0, core_total = 0;
    name_list core = {0};
    if (a->core_ops && !read_names(a->core_ops, &core))
        fprintf(stderr, "kiln: %s: cannot read the core op list\n", a->core_ops);
    for (int i = 0; i < n && core.n; i++) {
        if (!all_core(&cases[i], &core)) continue;
        core_total++;
        core_pass += cases[i].result == CASE_PASS;
    }
    free_names(&core);
    op_stat *stats = kiln_calloc(4096, sizeof(op_stat));
    int ns = stats ? per_op(cases, n, stats, 4096) : 0;
    if (ns) qsort(stats, (size_t)ns, sizeof(op_stat), cmp_stat);
    printf("conformance (target %s): %d cases in %.1f s: %d passed, %d failed, %d unsupported, %d errors, %d crashed, %d timed out\n",
           a->target, n, a->seconds, tot[CASE_PASS], tot[CASE_FAIL], tot[CASE_UNSUPPORTED], tot[CASE_ERROR],
           tot[CASE_CRASH], tot[CASE_TIMEOUT]);
    if (core_total) printf("core-op cases: %d of %d pass\n", core_pass, core_total);
    if (a->report) write_report(a, cases, n, tot, core_pass, core_total, stats, ns);
    if (a->write_passing) write_passing(a->write_passing, cases, n);
    kiln_free(stats);
    int rc = a->expect ? check_expected(a, cases, n) : 0;
    if (tot[CASE_CRASH]) {
        printf("crashed cases:\n");
        for (int i = 0; i < n; i++)
            if (cases[i].result == CASE_CRASH) printf("  %s\n", cases[i].name);
    }
    return rc;
}
