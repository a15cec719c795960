/*
** measure_child.c — the forked child of a measurement: sets its limits,
** JIT-compiles the candidates, and for each one runs the gate and the
** timing, reporting through the pipe. It never returns: it exits with
** _exit, so nothing of the parent's (stdio buffers, atexit handlers) runs
** twice.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "measure_internal.h"
#include "runtime/krt_pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define TM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TM_ASAN 1
#endif
#endif

typedef struct tm_child {
    const tm_job *job;
    int fd;
    kiln_ctx *ctx;
    cg_module **mods; /* per candidate (several may share one) */
    cg_module *shared;
    double compile_ms;
} tm_child;

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void send_msg(int fd, int kind, int index, const tune_result *r) {
    tm_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.index = index;
    if (r) m.r = *r;
    const char *p = (const char *)&m;
    size_t left = sizeof m;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3);
        p += w, left -= (size_t)w;
    }
}

static void send_status(tm_child *c, int i, tune_status st, const char *fmt, const char *arg) {
    tune_result r;
    memset(&r, 0, sizeof r);
    r.status = st;
    r.compile_ms = c->compile_ms;
    snprintf(r.msg, sizeof r.msg, fmt, arg);
    send_msg(c->fd, TM_RESULT, i, &r);
}

/* The address-space limit counts what the child inherited: the limit is
** the current size plus the allowance. ASan reserves terabytes of shadow
** memory, so sanitizer builds go without it. */
static void set_limits(const tune_measure_opts *o, int n) {
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    double cpu = (o->compile_timeout_s + o->timeout_s) * n * (o->threads > 0 ? o->threads : 1) + 5;
    rl.rlim_cur = (rlim_t)cpu;
    rl.rlim_max = (rlim_t)cpu + 5;
    setrlimit(RLIMIT_CPU, &rl);
#ifndef TM_ASAN
    if (o->mem_limit) {
        long pages = 0, pg = sysconf(_SC_PAGESIZE);
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%ld", &pages) != 1) pages = 0;
            fclose(f);
        }
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)(pg > 0 ? pg : 4096) + (rlim_t)o->mem_limit;
        setrlimit(RLIMIT_AS, &rl);
    }
#endif
}

/* ---- faults ---- */

static int g_fault_fd = -1;
static tm_msg g_fault_msg;

/* Reports the signal and the faulting address (for SIGILL and SIGFPE, the
** instruction's), then returns: with SA_RESETHAND the instruction faults
** again and the default action ends the child with the same signal. Only
** async-signal-safe work: a preformatted message and write(). */
static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    static const char hex[] = "0123456789abcdef";
    uintptr_t a = (uintptr_t)si->si_addr;
    char *p = g_fault_msg.r.msg;
    if (sig == SIGSEGV && si->si_code == SI_KERNEL) { /* a general protection fault: no address */
        static const char gp[] = "at an address outside the address space";
        memcpy(p, gp, sizeof gp);
    } else {
        memcpy(p, "at address 0x", 13);
        p += 13;
        for (int k = (int)sizeof a * 8 - 4; k >= 0; k -= 4) *p++ = hex[(a >> k) & 15];
        *p = 0;
    }
    g_fault_msg.kind = TM_FAULT;
    g_fault_msg.index = sig;
    g_fault_msg.r.signal = sig;
    if (write(g_fault_fd, &g_fault_msg, sizeof g_fault_msg) < 0) g_fault_fd = -1;
}

static void catch_faults(int fd) {
    static char alt[1 << 16];
    stack_t ss = {alt, 0, sizeof alt};
    sigaltstack(&ss, NULL);
    g_fault_fd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigaction(faults[i], &sa, NULL);
}

static void setup(tm_child *c) {
    const tm_job *job = c->job;
    static const int sigs[] = {SIGABRT, SIGTERM, SIGINT, SIGPIPE, SIGXCPU};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    catch_faults(c->fd);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    set_limits(job->o, job->hi - job->lo);
    for (int i = 0; i < job->ref->n_inputs; i++) tm_buf_protect(&job->ref->inputs[i]);
    krt_pool *pool = job->o->threads > 1 ? krt_pool_new(job->o->threads) : NULL;
    if (job->o->threads > 1 && !pool) {
        for (int i = job->lo; i < job->hi; i++)
            if (!job->done[i]) send_status(c, i, TUNE_STATUS_OOM, "%s", "the thread pool could not start");
        send_msg(c->fd, TM_DONE, -1, NULL);
        _exit(0);
    }
    krt_pool_set_current(pool);
}

/* All the candidates in one module; when that fails, one module each, so
** that a candidate the backend refuses costs only itself. */
static void compile_all(tm_child *c) {
    const tm_job *job = c->job;
    lir_func *fs[TM_MAX_BATCH];
    int n = 0;
    static char names[TM_MAX_BATCH][24];
    for (int i = job->lo; i < job->hi && n < TM_MAX_BATCH; i++) {
        if (job->done[i]) continue;
        snprintf(names[n], sizeof names[n], "kiln_cand%d", i);
        job->fs[i]->name = names[n];
        fs[n++] = job->fs[i];
    }
    double t0 = now_ns();
    if (n > 1 && !cg_llvm_jit(c->ctx, fs, n, &job->o->cg, &c->shared)) {
        c->compile_ms = (now_ns() - t0) / 1e6;
        for (int i = job->lo; i < job->hi; i++) c->mods[i - job->lo] = job->done[i] ? NULL : c->shared;
        return;
    }
    for (int i = job->lo; i < job->hi; i++) {
        if (job->done[i]) continue;
        double t1 = now_ns();
        if (cg_llvm_jit(c->ctx, &job->fs[i], 1, &job->o->cg, &c->mods[i - job->lo])) {
            c->mods[i - job->lo] = NULL;
            send_status(c, i, TUNE_STATUS_COMPILE_ERROR, "%s", kiln_errmsg(c->ctx));
        }
        c->compile_ms = (now_ns() - t1) / 1e6;
    }
}

/* The arguments: candidate constants (packed weights), else the reference's
** inputs; outputs in fresh guarded buffers (or the reference's, for the
** reference run). False when an output does not fit the memory limit. */
static bool bind_args(tm_child *c, const lir_func *lf, void **args, tm_buf *outs, char *why, size_t size) {
    const tune_reference *ref = c->job->ref;
    for (int a = 0; a < lf->n_args; a++) {
        const lir_buffer *b = lf->args[a];
        if (a < lf->n_inputs) {
            args[a] = b->constant && b->constant->data ? b->constant->data : ref->inputs[a].data;
            continue;
        }
        int k = a - lf->n_inputs;
        if (c->job->reference_run) {
            args[a] = ref->expected[k].data;
        } else if (!tm_buf_map(&outs[k], b->dtype, b->size, false)) {
            snprintf(why, size, "output %s (%lld elements of %s) does not fit the memory limit", b->name,
                     (long long)b->size, kiln_dtype_name(b->dtype));
            return false;
        } else {
            args[a] = outs[k].data;
        }
    }
    return true;
}

/* One run on poisoned outputs, compared with the reference. */
static bool gate_run(tm_child *c, const lir_func *lf, cg_kernel_fn fn, void **args, tm_buf *outs, bool second,
                     char *why, size_t size) {
    const tune_reference *ref = c->job->ref;
    int no = lf->n_args - lf->n_inputs;
    for (int k = 0; k < no; k++) tm_poison(outs[k].dtype, outs[k].data, outs[k].n, second);
    fn(args);
    for (int k = 0; k < no; k++) {
        const char *name = lf->args[lf->n_inputs + k]->name;
        if (!tm_buf_canary_ok(&outs[k])) {
            snprintf(why, size, "wrote past the end of output %s", name);
            return false;
        }
        char m[200];
        if (!tune_gate_compare(outs[k].dtype, outs[k].data, ref->expected[k].data, outs[k].n, m, sizeof m)) {
            snprintf(why, size, "output %s: %s", name, m);
            return false;
        }
    }
    return true;
}

static bool needs_second_run(const tm_buf *outs, int no) {
    for (int k = 0; k < no; k++) {
        kiln_dtype dt = outs[k].dtype;
        if (dt != KILN_F32 && dt != KILN_F64 && dt != KILN_F16 && dt != KILN_BF16) return true;
    }
    return false;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void time_kernel(const tune_measure_opts *o, cg_kernel_fn fn, void **args, tune_result *r) {
    /* a slow kernel gets fewer runs: the samples stop at 40% of the time
    ** limit, so that a valid but slow candidate is timed, not killed */
    double hard = o->timeout_s * 0.4e9, begin = now_ns();
    for (int w = 0; w < o->warmup && now_ns() - begin < hard / 4; w++) fn(args);
    double t0 = now_ns();
    fn(args);
    double one = now_ns() - t0;
    double want = o->min_sample_ms * 1e6;
    int iters = one >= want ? 1 : (int)fmin(1e7, ceil(want / fmax(one, 1.0)));
    int max_s = o->max_samples > 0 ? o->max_samples : 1, min_s = o->min_samples > 0 ? o->min_samples : 1;
    double *s = malloc(sizeof(double) * (size_t)max_s);
    if (!s) return;
    int n = 0;
    double start = now_ns();
    while (n < max_s && (n < min_s || now_ns() - start < o->budget_ms * 1e6) && !(n && now_ns() - begin > hard)) {
        double a = now_ns();
        for (int k = 0; k < iters; k++) fn(args);
        s[n++] = (now_ns() - a) / iters;
    }
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    r->samples = n;
    r->iters = iters;
    r->min_ns = s[0];
    r->max_ns = s[n - 1];
    r->median_ns = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    r->p10_ns = s[(int)floor(0.1 * (n - 1))];
    r->p90_ns = s[(int)ceil(0.9 * (n - 1))];
    r->spread = r->median_ns > 0 ? (r->p90_ns - r->p10_ns) / r->median_ns : 0;
    free(s);
}

static void run_candidate(tm_child *c, int i) {
    const tm_job *job = c->job;
    const lir_func *lf = job->fs[i];
    cg_module *m = c->mods[i - job->lo];
    cg_kernel_fn fn = m ? cg_module_lookup(m, lf->name) : NULL;
    send_msg(c->fd, TM_START, i, NULL);
    if (!fn) {
        send_status(c, i, TUNE_STATUS_COMPILE_ERROR, "kernel %s is missing from the JIT module", lf->name);
        return;
    }
    void *args[TM_MAX_ARGS];
    tm_buf outs[TM_MAX_ARGS];
    memset(outs, 0, sizeof outs);
    char why[300] = "";
    tune_result r;
    memset(&r, 0, sizeof r);
    r.compile_ms = c->compile_ms;
    if (!bind_args(c, lf, args, outs, why, sizeof why)) {
        for (int k = 0; k < lf->n_args - lf->n_inputs; k++) tm_buf_unmap(&outs[k]);
        send_status(c, i, TUNE_STATUS_OOM, "%s", why);
        return;
    }
    int no = lf->n_args - lf->n_inputs;
    if (job->reference_run) {
        fn(args);
    } else {
        if (job->ref->has_expected) {
            if (!gate_run(c, lf, fn, args, outs, false, why, sizeof why) ||
                (needs_second_run(outs, no) && !gate_run(c, lf, fn, args, outs, true, why, sizeof why))) {
                for (int k = 0; k < no; k++) tm_buf_unmap(&outs[k]);
                send_status(c, i, TUNE_STATUS_WRONG, "%s", why);
                return;
            }
            r.checked = true;
        }
        time_kernel(job->o, fn, args, &r);
    }
    for (int k = 0; k < no; k++) tm_buf_unmap(&outs[k]);
    r.status = TUNE_STATUS_OK;
    send_msg(c->fd, TM_RESULT, i, &r);
}

_Noreturn void tm_child_main(const tm_job *job, int fd) {
    tm_child c = {job, fd, NULL, NULL, NULL, 0};
    cg_module *mods[TM_MAX_BATCH];
    memset(mods, 0, sizeof mods);
    c.mods = mods;
    if (kiln_ctx_new(&c.ctx)) _exit(2);
    setup(&c);
    compile_all(&c);
    tune_result r;
    memset(&r, 0, sizeof r);
    r.compile_ms = c.compile_ms;
    send_msg(fd, TM_COMPILED, -1, &r);
    for (int i = job->lo; i < job->hi; i++)
        if (!job->done[i] && c.mods[i - job->lo]) run_candidate(&c, i);
    send_msg(fd, TM_DONE, -1, NULL);
    _exit(0);
}
