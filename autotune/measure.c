/*
** measure.c — measuring candidates in forked children: the parent lowers
** the candidates, forks a child per batch, watches its messages against the
** deadlines, and turns a child's death into the candidate's status. A
** candidate that crashes or hangs ends its child; the candidates after it
** go on in a new one.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "measure_internal.h"

#define TM_STACK_MARGIN (1 << 20)

void tune_measure_opts_default(tune_measure_opts *o) {
    memset(o, 0, sizeof *o);
    cg_options_default(&o->cg);
    o->threads = 1;
    o->timeout_s = 10;
    o->compile_timeout_s = 30;
    o->mem_limit = (uint64_t)4 << 30;
    o->seed = 1;
    o->warmup = 2;
    o->min_samples = 5;
    o->max_samples = 50;
    o->min_sample_ms = 1;
    o->budget_ms = 200;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_result(tune_result *r, tune_status st, int sig, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_result(tune_result *r, tune_status st, int sig, const char *fmt, ...) {
    memset(r, 0, sizeof *r);
    r->status = st;
    r->signal = sig;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

/* ---- one child ---- */

typedef struct tm_watch {
    pid_t pid;
    int fd;
    bool compiled, killed;
    int current;     /* the candidate running, or -1 */
    char fault[64];  /* where the child faulted, from its signal handler */
    double deadline; /* when the child is killed */
} tm_watch;

/* Reads one message; 1 when read, 0 at EOF, -1 when the deadline passed. */
static int read_msg(tm_watch *w, tm_msg *m) {
    char *p = (char *)m;
    size_t got = 0;
    while (got < sizeof *m) {
        int ms = (int)ceil((w->deadline - now_s()) * 1e3);
        if (ms <= 0) return -1;
        struct pollfd pfd = {w->fd, POLLIN, 0};
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return -1;
        ssize_t n = read(w->fd, p + got, sizeof *m - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        got += (size_t)n;
    }
    return 1;
}

/* Why the child ended, as a status of the candidate it was running. */
static void classify(int wst, bool killed, const tune_measure_opts *o, tune_result *r) {
    if (killed) {
        set_result(r, TUNE_STATUS_TIMEOUT, SIGKILL, "ran longer than %.3g s", o->timeout_s);
    } else if (WIFSIGNALED(wst)) {
        int sig = WTERMSIG(wst);
        if (sig == SIGXCPU) set_result(r, TUNE_STATUS_TIMEOUT, sig, "exceeded its CPU time limit");
        else if (sig == SIGKILL) set_result(r, TUNE_STATUS_OOM, sig, "killed (SIGKILL: out of memory?)");
        else set_result(r, TUNE_STATUS_CRASH, sig, "crashed: signal %d (%s)", sig, strsignal(sig));
    } else if (WIFEXITED(wst)) {
        set_result(r, TUNE_STATUS_CRASH, 0, "the measuring process exited with status %d", WEXITSTATUS(wst));
    } else {
        set_result(r, TUNE_STATUS_CRASH, 0, "the measuring process ended unexpectedly");
    }
}

static kiln_status spawn(kiln_ctx *ctx, const tm_job *job, tm_watch *w) {
    int fds[2];
    if (pipe(fds)) return kiln_fail(ctx, KILN_ERR_IO, "measure: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return kiln_fail(ctx, KILN_ERR_IO, "measure: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        tm_child_main(job, fds[1]);
    }
    close(fds[1]);
    int n = 0;
    for (int i = job->lo; i < job->hi; i++) n += !job->done[i];
    /* a batch compiles in one module: longer than one kernel, not n times longer */
    *w = (tm_watch){pid, fds[0], false, false, -1, "", now_s() + job->o->compile_timeout_s * (n < 1 ? 1 : n > 4 ? 4 : n)};
    return KILN_OK;
}

static void take_result(tm_job *job, bool *done, tune_result *out, const tm_msg *m) {
    if (m->index < job->lo || m->index >= job->hi || done[m->index]) return;
    out[m->index] = m->r;
    out[m->index].msg[sizeof out[m->index].msg - 1] = 0;
    done[m->index] = true;
}

/* Watches one child until it finishes or dies; returns true when the
** compile of a batch failed as a whole (the caller retries one by one). */
static bool watch(tm_job *job, bool *done, tune_result *out, tm_watch *w) {
    const tune_measure_opts *o = job->o;
    tm_msg m;
    int r = 0;
    bool finished = false;
    while (!finished && (r = read_msg(w, &m)) == 1) {
        switch (m.kind) {
        case TM_DONE: finished = true; break;
        case TM_COMPILED: w->compiled = true; w->deadline = now_s() + o->timeout_s; break;
        case TM_START: w->current = m.index; w->deadline = now_s() + o->timeout_s; break;
        case TM_FAULT: snprintf(w->fault, sizeof w->fault, "%.60s", m.r.msg); break;
        case TM_RESULT:
            take_result(job, done, out, &m);
            w->current = -1;
            if (w->compiled) w->deadline = now_s() + o->timeout_s;
            break;
        default: break;
        }
    }
    if (!finished && r == -1) {
        kill(w->pid, SIGKILL);
        w->killed = true;
    }
    int wst = 0;
    while (waitpid(w->pid, &wst, 0) < 0 && errno == EINTR) {
    }
    close(w->fd);
    if (finished) return false;
    int pending = 0;
    for (int i = job->lo; i < job->hi; i++) pending += !done[i];
    if (!w->compiled && pending > 1) return true;
    int victim = w->current;
    for (int i = job->lo; victim < 0 && i < job->hi; i++)
        if (!done[i]) victim = i;
    if (victim < 0) return false;
    classify(wst, w->killed, o, &out[victim]);
    if (w->fault[0] && out[victim].status == TUNE_STATUS_CRASH) {
        size_t n = strlen(out[victim].msg);
        snprintf(out[victim].msg + n, sizeof out[victim].msg - n, " %s", w->fault);
    }
    if (!w->compiled && w->killed)
        snprintf(out[victim].msg, sizeof out[victim].msg, "compiling took longer than %.3g s", o->compile_timeout_s);
    else if (!w->compiled)
        snprintf(out[victim].msg + strlen(out[victim].msg), sizeof out[victim].msg - strlen(out[victim].msg),
                 " while compiling");
    done[victim] = true;
    return false;
}

kiln_status tm_drive(kiln_ctx *ctx, tm_job *job, bool *done, tune_result *out) {
    int lo = job->lo, hi = job->hi, batch = TM_MAX_BATCH;
    for (;;) {
        int first = -1;
        for (int i = lo; i < hi && first < 0; i++)
            if (!done[i]) first = i;
        if (first < 0) return KILN_OK;
        job->lo = first;
        job->hi = first + batch < hi ? first + batch : hi;
        tm_watch w;
        kiln_status s = spawn(ctx, job, &w);
        if (s) {
            job->lo = lo, job->hi = hi;
            return s;
        }
        if (watch(job, done, out, &w)) batch = 1;
        job->lo = lo, job->hi = hi;
    }
}

/* ---- candidates ---- */

/* Local buffers live on the stack: more than the stack holds cannot run. */
static int64_t local_bytes(const lir_stmt *s) {
    if (!s) return 0;
    int64_t b = 0;
    switch (s->kind) {
    case LIR_ALLOC: b = s->buffer->size * (int64_t)kiln_dtype_size(s->buffer->dtype); return b + local_bytes(s->body);
    case LIR_FOR: return local_bytes(s->body);
    case LIR_IF: return local_bytes(s->body) + local_bytes(s->else_body);
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) b += local_bytes(s->stmts[i]);
        return b;
    default: return 0;
    }
}

static bool check_static(const lir_func *lf, const tune_reference *ref, const tune_measure_opts *o, tune_result *r) {
    struct rlimit rl;
    int64_t stack = 8 << 20;
    if (!getrlimit(RLIMIT_STACK, &rl) && rl.rlim_cur != RLIM_INFINITY) stack = (int64_t)rl.rlim_cur;
    if (lf->n_args > TM_MAX_ARGS || !lf->body) {
        set_result(r, TUNE_STATUS_COMPILE_ERROR, 0, "kernel %s has %d arguments (at most %d) or no body", lf->name,
                   lf->n_args, TM_MAX_ARGS);
        return false;
    }
    int64_t need = local_bytes(lf->body);
    if (need > stack - TM_STACK_MARGIN) {
        set_result(r, TUNE_STATUS_OOM, 0, "local buffers of %lld bytes do not fit the %lld-byte stack",
                   (long long)need, (long long)stack);
        return false;
    }
    if (ref->has_expected && !tune_gate_race_free(lf, r->msg, sizeof r->msg)) {
        char why[sizeof r->msg];
        memcpy(why, r->msg, sizeof why);
        set_result(r, TUNE_STATUS_WRONG, 0, "%s", why);
        return false;
    }
    double out_bytes = 0;
    for (int a = lf->n_inputs; a < lf->n_args; a++)
        out_bytes += (double)lf->args[a]->size * (double)kiln_dtype_size(lf->args[a]->dtype);
    if (o->mem_limit && out_bytes > (double)o->mem_limit) {
        set_result(r, TUNE_STATUS_OOM, 0, "outputs of %.0f bytes exceed the memory limit of %llu bytes", out_bytes,
                   (unsigned long long)o->mem_limit);
        return false;
    }
    bool same = lf->n_inputs == ref->n_inputs && (!ref->has_expected || lf->n_args - lf->n_inputs == ref->n_outputs);
    for (int a = 0; same && a < lf->n_args; a++) {
        const lir_buffer *b = lf->args[a];
        const tm_buf *t = a < lf->n_inputs ? &ref->inputs[a] : ref->has_expected ? &ref->expected[a - lf->n_inputs] : NULL;
        if (t && !(a < lf->n_inputs && b->constant)) same = t->dtype == b->dtype && t->n == b->size;
    }
    if (!same) {
        set_result(r, TUNE_STATUS_COMPILE_ERROR, 0, "the kernel's arguments differ from the reference's");
        return false;
    }
    return true;
}

static kiln_status check_opts(kiln_ctx *ctx, const tune_measure_opts *o, int n) {
    if (!o || n < 0) return kiln_fail(ctx, KILN_ERR_INVALID, "measure: no options or a negative count");
    if (!(o->timeout_s > 0) || !(o->compile_timeout_s > 0) || o->threads < 1 || o->threads > 1024)
        return kiln_fail(ctx, KILN_ERR_INVALID, "measure: timeouts must be positive and threads in [1, 1024]");
    return KILN_OK;
}

kiln_status tune_measure_lir_batch(kiln_ctx *ctx, const lir_func *const *fs, int n, const tune_reference *ref,
                                   const tune_measure_opts *o, tune_result *out) {
    kiln_status s = check_opts(ctx, o, n);
    if (s) return s;
    if (n == 0) return KILN_OK;
    tune_reference *own = NULL;
    const lir_func *first = NULL;
    for (int i = 0; i < n && !first; i++) first = fs[i];
    if (!ref && first && (s = tm_reference_inputs(ctx, first, o->seed, &own))) return s;
    bool *done = kiln_calloc((size_t)n, sizeof(bool));
    tune_result *res = kiln_calloc((size_t)n, sizeof(tune_result));
    if (!done || !res) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) done[i] = !fs[i] || !check_static(fs[i], ref ? ref : own, o, &res[i]);
    for (int i = 0; !s && i < n; i++)
        if (!fs[i]) set_result(&res[i], TUNE_STATUS_COMPILE_ERROR, 0, "no kernel");
    if (!s) {
        tm_job job = {(lir_func **)fs, n, done, 0, n, ref ? ref : own, o, false};
        s = tm_drive(ctx, &job, done, res);
    }
    if (!s) memcpy(out, res, sizeof(tune_result) * (size_t)n);
    kiln_free(done);
    kiln_free(res);
    tune_reference_free(own);
    return s;
}

kiln_status tune_measure_lir(kiln_ctx *ctx, const lir_func *lf, const tune_reference *ref,
                             const tune_measure_opts *o, tune_result *out) {
    return tune_measure_lir_batch(ctx, &lf, 1, ref, o, out);
}

kiln_status tune_measure_batch(kiln_ctx *ctx, const tir_func *f, const sch_trace *const *traces, int n,
                               const tune_reference *ref, const tune_measure_opts *o, tune_result *out) {
    kiln_status s = check_opts(ctx, o, n);
    if (s) return s;
    if (!f || (n && !traces)) return kiln_fail(ctx, KILN_ERR_INVALID, "measure: no function or no traces");
    if (n == 0) return KILN_OK;
    lir_func **fs = kiln_calloc((size_t)n, sizeof(lir_func *));
    tune_result *res = kiln_calloc((size_t)n, sizeof(tune_result));
    char(*why)[sizeof res->msg] = kiln_calloc((size_t)n, sizeof *why);
    kiln_ctx *lctx = NULL;
    tune_reference *own = NULL;
    if (!fs || !res || !why || kiln_ctx_new(&lctx)) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        kiln_status ls = sch_lower(lctx, f, traces[i], &fs[i]);
        if (ls == KILN_ERR_NOMEM) s = kiln_fail(ctx, ls, "%s", kiln_errmsg(lctx));
        else if (ls) snprintf(why[i], sizeof why[i], "%s", kiln_errmsg(lctx));
    }
    if (!s && !ref) s = tm_reference_tir(ctx, f, o, TUNE_REF_AUTO, false, &own);
    if (!s) s = tune_measure_lir_batch(ctx, (const lir_func *const *)fs, n, ref ? ref : own, o, res);
    for (int i = 0; !s && i < n; i++)
        if (!fs[i]) set_result(&res[i], TUNE_STATUS_COMPILE_ERROR, 0, "%s", why[i]);
    if (!s) memcpy(out, res, sizeof(tune_result) * (size_t)n);
    for (int i = 0; fs && i < n; i++) lir_func_free(fs[i]);
    kiln_free(fs);
    kiln_free(res);
    kiln_free(why);
    kiln_ctx_free(lctx);
    tune_reference_free(own);
    return s;
}

kiln_status tune_measure(kiln_ctx *ctx, const tir_func *f, const sch_trace *trace, const tune_reference *ref,
                         const tune_measure_opts *o, tune_result *out) {
    return tune_measure_batch(ctx, f, &trace, 1, ref, o, out);
}
