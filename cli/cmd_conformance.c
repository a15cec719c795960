/*
** cmd_conformance.c — `kiln conformance DIR`: runs every ONNX node-test case
** under DIR in its own child process (a crash or hang costs one case), then
** prints and writes a summary per op; checks a list of cases expected to pass.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "case.h"
#include "cli.h"
#include "cli_util.h"
#include "conformance_report.h"
#include "frontend/onnx.h"
#include "ir/mem.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_HAS_ASAN 1
#endif
#endif
#ifndef KILN_HAS_ASAN
#define KILN_HAS_ASAN 0
#endif

typedef struct conf_opts {
    const char *dir, *report, *expect, *write_passing, *core_ops, *filter, *target;
    int timeout_s, jobs;
} conf_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln conformance DIR [--target ref|cpu] [--report FILE] [--expect FILE] [--write-passing FILE]\n"
            "                        [--core-ops FILE] [--filter TEXT] [--timeout S] [--jobs N]\n");
    return 2;
}

static int parse_opts(int argc, char **argv, conf_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 60;
    o->target = "ref";
    o->jobs = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--report") && has) o->report = argv[++i];
        else if (!strcmp(a, "--expect") && has) o->expect = argv[++i];
        else if (!strcmp(a, "--write-passing") && has) o->write_passing = argv[++i];
        else if (!strcmp(a, "--core-ops") && has) o->core_ops = argv[++i];
        else if (!strcmp(a, "--filter") && has) o->filter = argv[++i];
        else if (!strcmp(a, "--target") && has) o->target = argv[++i];
        else if (!strcmp(a, "--timeout") && has) o->timeout_s = atoi(argv[++i]);
        else if (!strcmp(a, "--jobs") && has) o->jobs = atoi(argv[++i]);
        else if (a[0] != '-' && !o->dir) o->dir = a;
        else return usage();
    }
    if (o->jobs < 1) o->jobs = 1;
    return o->dir ? 0 : usage();
}

/* The child: writes "OPS a,b,c" then the case's log to `log`, exits with the result. */
static void child_main(const char *case_dir, const char *target, FILE *log, int timeout_s) {
#if !defined(__SANITIZE_ADDRESS__) && !KILN_HAS_ASAN
    /* a runaway case must not take the machine's memory (ASan needs the
    ** address space for its shadow, so it goes without) */
    struct rlimit rl = {(rlim_t)8 << 30, (rlim_t)8 << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    alarm((unsigned)timeout_s);
    kiln_ctx *ctx = NULL;
    gir_graph *g = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.onnx", case_dir);
    fprintf(log, "OPS ");
    if (!kiln_ctx_new(&ctx) && !onnx_load_file(ctx, path, &g)) {
        for (int i = 0; i < g->n_nodes; i++) fprintf(log, "%s%s", i ? "," : "", g->nodes[i]->op_type);
    }
    fprintf(log, "\n");
    fflush(log);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
    cli_case_result r = cli_run_case(case_dir, target, 1e-3, 1e-7, log);
    fflush(log);
    _exit((int)r);
}

typedef struct running {
    pid_t pid;
    int index;
    FILE *log;
} running;

static cli_case_result result_of(int status) {
    if (WIFEXITED(status) && WEXITSTATUS(status) < CASE_CRASH) return (cli_case_result)WEXITSTATUS(status);
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGALRM)) return CASE_TIMEOUT;
    return CASE_CRASH;
}

static void collect(conf_case *c, FILE *log, int status) {
    c->result = result_of(status);
    rewind(log);
    char line[4096];
    if (fgets(line, sizeof line, log) && !strncmp(line, "OPS ", 4)) {
        line[strcspn(line, "\n")] = 0;
        c->ops = kiln_strdup(line + 4);
    }
    if (fgets(line, sizeof line, log)) {
        line[strcspn(line, "\n")] = 0;
        c->reason = kiln_strdup(line);
    }
    if (c->result == CASE_CRASH && !c->reason) c->reason = kiln_strdup("the process crashed");
    if (c->result == CASE_TIMEOUT && !c->reason) c->reason = kiln_strdup("timed out");
    fclose(log);
}

static int start_case(const conf_opts *o, conf_case *c, running *slot, int index) {
    FILE *log = tmpfile();
    if (!log) return -1;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", o->dir, c->name);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fclose(log);
        return -1;
    }
    if (pid == 0) child_main(dir, o->target, log, o->timeout_s);
    slot->pid = pid;
    slot->index = index;
    slot->log = log;
    return 0;
}

/* Runs all cases with up to o->jobs children at a time. */
static int run_all(const conf_opts *o, conf_case *cases, int n) {
    running *slots = kiln_calloc((size_t)o->jobs, sizeof(running));
    if (!slots) return -1;
    int next = 0, live = 0, done = 0;
    while (done < n) {
        while (live < o->jobs && next < n) {
            int s = 0;
            while (slots[s].pid) s++;
            if (start_case(o, &cases[next], &slots[s], next) != 0) {
                cases[next].result = CASE_ERROR;
                cases[next].reason = kiln_strdup("could not start a child process");
                done++;
            } else {
                live++;
            }
            next++;
        }
        if (!live) continue;
        int status;
        pid_t pid = wait(&status);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        for (int s = 0; s < o->jobs; s++) {
            if (slots[s].pid != pid) continue;
            collect(&cases[slots[s].index], slots[s].log, status);
            slots[s].pid = 0;
            live--;
            done++;
            if (done % 200 == 0) fprintf(stderr, "  %d / %d cases\n", done, n);
        }
    }
    kiln_free(slots);
    return 0;
}

static int list_cases(const conf_opts *o, conf_case **out) {
    char **names = NULL;
    int n = cli_list_dirs(o->dir, "test_", &names);
    if (n < 0) return -1;
    conf_case *cases = kiln_calloc((size_t)n + 1, sizeof(conf_case));
    if (!cases) {
        cli_free_list(names, n);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (o->filter && !strstr(names[i], o->filter)) {
            kiln_free(names[i]);
            continue;
        }
        cases[k++].name = names[i];
    }
    kiln_free(names);
    *out = cases;
    return k;
}

int cmd_conformance(int argc, char **argv) {
    conf_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    conf_case *cases = NULL;
    int n = list_cases(&o, &cases);
    if (n < 0) {
        fprintf(stderr, "kiln: %s: cannot list the folder\n", o.dir);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "kiln: %s: no test_* cases found\n", o.dir);
        return 1;
    }
    double t0 = cli_now_ms();
    if (run_all(&o, cases, n) != 0) {
        fprintf(stderr, "kiln: could not run the cases\n");
        return 1;
    }
    conf_report_args ra = {o.dir, o.target, o.report, o.expect, o.write_passing, o.core_ops,
                           (cli_now_ms() - t0) / 1e3};
    rc = conf_report(&ra, cases, n);
    conf_free_cases(cases, n);
    return rc;
}
