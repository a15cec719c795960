/*
** sched_lower.c — applies a schedule trace to a tir_func and lowers the
** result to the loop IR.
**
** THE MODEL (as TVM's te schedules and Halide's scheduling). Each stage
** has root iteration variables: its spatial axes (one per output dim) and
** its reduction axes. Primitives derive new iteration variables from them
** through split and fuse relations; the stage's LEAVES, in order, are its
** loops, outermost first. Lowering emits one loop per leaf and rebuilds
** every root index from the leaves:
**     split  x -> xo, xi by f:   x = xo * f + xi
**     fuse   a, b -> ab:         a = ab floordiv ext(b),  b = ab floormod ext(b)
** Extents derive from the root extents:  ext(xo) = ceil(ext(x) / f),
** ext(xi) = min(f, ext(x)),  ext(ab) = ext(a) * ext(b).  When a split does
** not divide, the point is guarded by  IF x < ext(x),  placed just inside
** the innermost leaf loop the condition depends on (the simplifier removes
** guards it can prove). A guard that would enclose a barrier or GPU loop is
** pushed inside it instead, so every thread still reaches every barrier.
**
** A stage's value at a point is stored into its buffer at the row-major
** flattened index. A reduction is initialised (out = init) right before
** its outermost reduction loop, by a nest over the spatial leaves that
** follow, and updated (out = out <op> source) at the innermost point.
**
** Default nest (empty trace): every stage a root nest in axis order
** (spatial axes, then reduction axes). Stages read by later stages are
** stored in intermediate buffers (LIR_ALLOC, global scope, around the whole
** body); outputs are argument buffers. Arguments: the placeholders in
** order, then the outputs in order; sizes are element counts. An output
** that is a placeholder (or an output listed twice) is copied at the end.
**
** THE PRIMITIVES (trace syntax in sched.h):
**  split S x [f1 .. fn] -> o m1 .. i   the innermost new leaf gets fn, the
**      next f(n-1), ..., the outermost the rest; x must be a leaf, not
**      annotated, not an attach point; factors > 0.
**  fuse S a b .. -> ab   adjacent leaves, outer to inner, all spatial or all
**      reduction, become one leaf.
**  reorder S a b ..      the listed leaves take the positions they occupy,
**      in the listed order; the other leaves stay.
**  tile S x y [fx fy] -> xo yo xi yi   split x and y, then reorder xo yo xi yi.
**  vectorize S x   the loop becomes LIR_VECTORIZED: a spatial leaf (a
**      reduction leaf only after rfactor made it spatial); its extent is a
**      constant (all extents are: regions have constant extents).
**  unroll S x      LIR_UNROLLED; any leaf.
**  parallel S x    LIR_PARALLEL; spatial leaves only.
**  bind S x TAG    the loop becomes a GPU block/thread loop (blockIdx.x/y/z,
**      threadIdx.x/y/z); spatial leaves only; one leaf per tag and stage.
**      A stage's thread loops must be adjacent, with no block loop inside
**      them. In a stage computed inside another stage's thread loop of the
**      same tag, the leaf is not a loop: it takes that thread's index
**      (guarded when its extent is smaller, an error when larger).
**  compute_at S T x   S is computed inside T's loop x, for just the region
**      its readers need there: for every load of S by T (or by a stage
**      computed inside T's loop x), each index is bounded by interval
**      arithmetic while the loops inside x range and the loops around it are
**      fixed (indices affine in the inner loops give a constant extent; any
**      other index takes the whole dimension). S's root axes then run over
**      that region (its splits apply to the region's extent), its buffer is
**      the region (allocated at the top of x's body; local scope inside a
**      thread loop, shared inside a block loop, global otherwise), and
**      points outside the tensor are
**      guarded away. An error when a reader of S is not inside x, or T does
**      not read S.
**  inline S    S's body replaces every load of S (substituted at the load's
**      indices); not for reductions or outputs.
**  cache_read S T SCOPE [at x] -> N   a new stage N copies tensor S (input or
**      stage); T reads N instead of S. "at x" computes N at T's loop x, as
**      compute_at N T x would. With shared scope inside thread loops, the
**      region is that of the whole block (thread loops relax like inner
**      loops), the buffer is allocated outside the thread loops, and the
**      copy is fenced by barriers before and after.
**  cache_write S SCOPE [at x] -> N   S computes into an accumulator buffer N
**      covering the tile of the leaves inside x (the whole stage without
**      "at"), initialised and updated there, then written back to S's
**      buffer by a nest over the spatial leaves inside x (same order,
**      annotations and guards) — the register-blocked GEMM micro-kernel. All
**      reduction loops must be inside x. Shared scope as for cache_read.
**  rfactor S r -> N   r, a reduction leaf of S, becomes a spatial axis of a
**      new stage N[axes.., r] that reduces the other reduction leaves
**      (partial results, the split's guards folded into the source as
**      select(guard, src, identity)); S then reduces N over one new
**      reduction axis named r, starting from S's init. S keeps its spatial
**      schedule; its reduction leaves are replaced by that one axis.
**  storage_align S x [factor offset]   the stride of S's dimension x in its
**      buffer is padded up to k * factor + offset (not for outputs, not for
**      the innermost dimension).
**  pack B [d f] -> Bp   B, a constant input, is re-laid out at compile time:
**      its dimension d splits into d floordiv f moved to the front and
**      d floormod f moved to the back (B[k][j] -> Bp[j/16][k][j%16] for
**      d = 1, f = 16), padded with zeros. The argument buffer then has the
**      packed layout and carries the packed data (lir_buffer.constant, owned
**      by the lir_func), which the executor passes instead of the original.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "sched_internal.h"
#include "tensor.h"

typedef enum nest_mode { NEST_MAIN, NEST_INIT, NEST_WB } nest_mode;
typedef enum guard_kind { G_SPLIT, G_DOMAIN, G_THREAD } guard_kind;

typedef struct lw_guard {
    guard_kind kind;
    int which; /* relation, dimension or ivar index */
    int pos;   /* leaf position it goes inside */
    bool reduce;
} lw_guard;

/* Where a tensor's values live and how an index maps into the buffer. */
typedef struct lw_layout {
    const tir_tensor *t;
    lir_buffer *buf;
    int rank;
    int64_t dims[KILN_MAX_RANK];   /* the tensor's dims (packing) */
    int64_t stride[KILN_MAX_RANK];
    ex_expr *min[KILN_MAX_RANK];   /* region start, NULL: 0 */
    int pack_dim;                  /* -1: not packed */
    int64_t pack_factor;
} lw_layout;

typedef struct lw_stage {
    sch_stage *s;
    ex_expr *body; /* producers inlined */
    bool inlined;
    int64_t *ext;        /* per ivar */
    const ex_var **lv;   /* per ivar: loop variable of a leaf, NULL when it has no loop */
    ex_expr **val;       /* per ivar: its value in the main nest */
    ex_expr **root;      /* per root axis (spatial, then reduction): the index */
    ex_expr *rmin[KILN_MAX_RANK];
    int64_t rext[KILN_MAX_RANK];
    lw_layout *lay;
    lw_layout cw;
    int cw_pos, first_red;
    int n_enc;
    const ex_var **enc;
    lir_loop_kind *enc_kind;
    int64_t *enc_ext;
    lw_guard *guards;
    int n_guards;
    lir_scope scope;
} lw_stage;

typedef struct lw_nest {
    lw_stage *S;
    nest_mode mode;
    int from;
    ex_expr **val;
    const ex_var **lv;
    ex_expr **root;
} lw_nest;

typedef struct lw_copy {
    const tir_tensor *src;
    lir_buffer *dst;
} lw_copy;

typedef struct lw {
    kiln_ctx *ctx;
    sch_state *st;
    lir_func *lf;
    ex_builder *b;
    kiln_status err;
    lw_stage *ls;
    lw_layout **lays;
    int n_lays, cap_lays;
    lir_var_range *ranges;
    int n_ranges, cap_ranges;
    lir_buffer **roots; /* intermediates allocated around the body */
    int n_roots, cap_roots;
    lw_copy *copies;
    int n_copies, cap_copies;
    lir_buffer **hoist; /* shared buffers allocated outside the thread loops */
    int n_hoist, cap_hoist;
    lir_stmt **coop; /* nests that fill a shared buffer for the whole block */
    int n_coop, cap_coop;
    int thread_depth;
} lw;

/* ---- failures ---- */

__attribute__((format(printf, 3, 4))) static kiln_status fail_at(lw *L, int step, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (L->err) return L->err;
    sch_state *st = L->st;
    st->step = step >= 0 && step < st->n_steps ? &st->steps[step] : NULL;
    st->step_index = step;
    return L->err = sch_step_fail(st, KILN_ERR_INVALID, "%s", msg);
}

__attribute__((format(printf, 3, 4))) static kiln_status fail(lw *L, kiln_status s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!L->err) L->err = kiln_fail(L->ctx, s, "schedule: %s", msg);
    return L->err;
}

static kiln_status nomem(lw *L) { return fail(L, KILN_ERR_NOMEM, "out of memory"); }

static void *scratch(lw *L, size_t n) {
    void *p = kiln_arena_alloc(L->st->arena, n ? n : 1);
    if (!p) nomem(L);
    return p;
}

/* ---- names ---- */

static bool buffer_name_used(const lw *L, const char *n) {
    for (int i = 0; i < L->lf->n_buffers; i++)
        if (strcmp(L->lf->buffers[i]->name, n) == 0) return true;
    return false;
}

static const char *buffer_name(lw *L, const char *base, char *buf, size_t n) {
    snprintf(buf, n, "%s", base);
    for (int k = 1; buffer_name_used(L, buf); k++) snprintf(buf, n, "%s_%d", base, k);
    return buf;
}

/* A loop variable with a name no other variable of the kernel has. */
static const ex_var *new_var(lw *L, const char *base, const char *suffix, int64_t ext) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    for (int k = 1;; k++) {
        bool used = false;
        for (int i = 0; i < L->n_ranges && !used; i++) used = strcmp(L->ranges[i].var->name, name) == 0;
        if (!used) break;
        snprintf(name, sizeof name, "%s%s_%d", base, suffix, k);
    }
    ex_var *v = ex_var_new(L->b, name, ext, false);
    if (!v || !kiln_grow((void **)&L->ranges, &L->cap_ranges, L->n_ranges + 1, sizeof(lir_var_range))) {
        nomem(L);
        return NULL;
    }
    L->ranges[L->n_ranges++] = (lir_var_range){v, 0, ext};
    return v;
}

/* ---- layouts ---- */

static lw_layout *layout_of(const lw *L, const tir_tensor *t) {
    for (int i = 0; i < L->n_lays; i++)
        if (L->lays[i]->t == t) return L->lays[i];
    return NULL;
}

static kiln_status add_layout(lw *L, lw_layout *lay) {
    if (!kiln_grow((void **)&L->lays, &L->cap_lays, L->n_lays + 1, sizeof(lw_layout *))) return nomem(L);
    L->lays[L->n_lays++] = lay;
    return KILN_OK;
}

/* Row-major strides over ext, dimension d's stride padded to
** k * align_factor[d] + align_offset[d]; the buffer's size in *size. */
static kiln_status strides(lw *L, int rank, const int64_t *ext, const int64_t *af, const int64_t *ao, int64_t *stride,
                           int64_t *size) {
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        if (af && af[d] > 0) s += ((ao[d] - s % af[d]) % af[d] + af[d]) % af[d];
        stride[d] = s;
        if (ext[d] && __builtin_mul_overflow(s, ext[d], &s)) return fail(L, KILN_ERR_UNSUPPORTED, "buffer size overflows");
        if (!ext[d]) s = 0;
    }
    *size = s;
    return KILN_OK;
}

static lw_layout *new_layout(lw *L, const tir_tensor *t, const char *name, kiln_dtype dt, int rank, const int64_t *ext,
                             ex_expr *const *min, const int64_t *af, const int64_t *ao, lir_scope scope) {
    lw_layout *lay = scratch(L, sizeof *lay);
    int64_t size = 0;
    char nb[256];
    if (!lay || strides(L, rank, ext, af, ao, lay->stride, &size)) return NULL;
    lay->t = t;
    lay->rank = rank;
    lay->pack_dim = -1;
    for (int d = 0; d < rank; d++) lay->dims[d] = ext[d], lay->min[d] = min ? min[d] : NULL;
    if (!(lay->buf = lir_buffer_new(L->lf, buffer_name(L, name, nb, sizeof nb), dt, size, scope))) return nomem(L), NULL;
    return lay;
}

static ex_expr *layout_index(lw *L, const lw_layout *lay, ex_expr *const *idx) {
    ex_builder *b = L->b;
    if (lay->pack_dim >= 0) {
        int d = lay->pack_dim;
        int64_t f = lay->pack_factor;
        ex_expr *rest = ex_int(b, 0);
        for (int k = 0; k < lay->rank; k++)
            if (k != d) rest = ex_add(b, ex_mul(b, rest, ex_int(b, lay->dims[k])), idx[k]);
        int64_t prest = 1;
        for (int k = 0; k < lay->rank; k++)
            if (k != d) prest *= lay->dims[k];
        ex_expr *outer = ex_floordiv(b, idx[d], ex_int(b, f)), *inner = ex_floormod(b, idx[d], ex_int(b, f));
        return ex_add(b, ex_mul(b, ex_add(b, ex_mul(b, outer, ex_int(b, prest)), rest), ex_int(b, f)), inner);
    }
    ex_expr *x = ex_int(b, 0);
    for (int k = 0; k < lay->rank; k++) {
        ex_expr *i = lay->min[k] ? ex_sub(b, idx[k], lay->min[k]) : idx[k];
        x = ex_add(b, x, ex_mul(b, i, ex_int(b, lay->stride[k])));
    }
    return x;
}

/* ---- expressions: tensor IR -> loop IR ---- */

typedef struct lw_map {
    int n;
    const ex_var **from;
    ex_expr **to;
    const char *stage;
} lw_map;

static ex_expr *lw_expr(lw *L, const ex_expr *e, const lw_map *m) {
    ex_builder *b = L->b;
    ex_expr *a[3] = {NULL, NULL, NULL};
    if (L->err) return NULL;
    switch (e->kind) {
    case EX_INT: return ex_const_int(b, e->dtype, e->ival);
    case EX_FLOAT: return ex_const_float(b, e->dtype, e->fval);
    case EX_VAR:
        for (int i = 0; i < m->n; i++)
            if (m->from[i] == e->var) return m->to[i];
        fail(L, KILN_ERR_INVALID, "stage %s: variable %s is not one of its axes", m->stage, e->var->name);
        return NULL;
    case EX_LOAD: {
        lw_layout *lay = e->tensor ? layout_of(L, e->tensor) : NULL;
        if (!lay || e->n_args != lay->rank) {
            fail(L, KILN_ERR_INVALID, "stage %s reads %s, which is not an input or a computed stage of this kernel",
                 m->stage, e->tensor ? e->tensor->name : "a buffer");
            return NULL;
        }
        ex_expr *idx[KILN_MAX_RANK];
        for (int i = 0; i < e->n_args; i++)
            if (!(idx[i] = lw_expr(L, e->args[i], m))) return NULL;
        return ex_load_buffer(b, lay->buf, layout_index(L, lay, idx));
    }
    case EX_REDUCE: fail(L, KILN_ERR_INVALID, "stage %s: a reduction inside an expression", m->stage); return NULL;
    default: break;
    }
    if (e->n_args > 3) return fail(L, KILN_ERR_INVALID, "malformed expression"), NULL;
    for (int i = 0; i < e->n_args; i++)
        if (!(a[i] = lw_expr(L, e->args[i], m))) return NULL;
    switch (e->kind) {
    case EX_BINARY: return ex_binary(b, (ex_binop)e->op, a[0], a[1]);
    case EX_UNARY: return ex_unary(b, (ex_fn)e->op, a[0]);
    case EX_SELECT: return ex_select(b, a[0], a[1], a[2]);
    case EX_CAST: return ex_cast(b, e->dtype, a[0]);
    default: return fail(L, KILN_ERR_INVALID, "malformed expression"), NULL;
    }
}

static lw_map stage_map(lw *L, const lw_stage *S, ex_expr **root) {
    const sch_stage *s = S->s;
    lw_map m = {s->n_axes + s->n_raxes, NULL, root, s->name};
    m.from = scratch(L, sizeof(ex_var *) * (size_t)(m.n + 1));
    if (!m.from) m.n = 0;
    for (int d = 0; m.from && d < s->n_axes; d++) m.from[d] = s->axes[d];
    for (int r = 0; m.from && r < s->n_raxes; r++) m.from[s->n_axes + r] = s->raxes[r];
    return m;
}

/* ---- inlining ---- */

static lw_stage *lw_of(lw *L, const sch_stage *s) {
    for (int i = 0; i < L->st->n_stages; i++)
        if (L->ls[i].s == s) return &L->ls[i];
    return NULL;
}

static bool has_load(const ex_expr *e) {
    if (e->kind == EX_LOAD) return true;
    for (int i = 0; i < e->n_args; i++)
        if (has_load(e->args[i])) return true;
    return false;
}

/* e with every load of an inlined stage replaced by that stage's body.
** Stage `self` (index) may only read stages before it. */
static ex_expr *expand(lw *L, ex_expr *e, int self) {
    ex_builder *b = &L->st->eb;
    if (L->err || !has_load(e)) return e;
    ex_expr *args[KILN_MAX_RANK + 3];
    bool changed = false;
    for (int i = 0; i < e->n_args; i++) {
        if (!(args[i] = expand(L, e->args[i], self))) return NULL;
        changed |= args[i] != e->args[i];
    }
    if (e->kind == EX_LOAD && e->tensor) {
        sch_stage *p = sch_stage_of_tensor(L->st, e->tensor);
        lw_stage *P = p ? lw_of(L, p) : NULL;
        if (P && P - L->ls >= self) {
            fail(L, KILN_ERR_INVALID, "stage %s reads %s, which is computed after it", L->ls[self].s->name, p->name);
            return NULL;
        }
        if (P && P->inlined) return ex_substitute(b, P->body, (const ex_var *const *)p->axes, args, p->n_axes);
    }
    if (!changed) return e;
    ex_expr *c = ex_with_args(b, e, args);
    if (!c) return nomem(L), NULL;
    return c;
}

/* ---- arguments ---- */

static kiln_status pack_constant(lw *L, sch_input *in, lir_buffer **out) {
    const tir_tensor *t = in->t;
    const kiln_tensor *c = t->constant;
    int d = in->pack_dim;
    int64_t f = in->pack_factor, pd[KILN_MAX_RANK];
    bool same = c->dtype == t->dtype && c->rank == t->rank && c->data;
    for (int k = 0; same && k < t->rank; k++) same = c->dims[k] == t->dims[k];
    size_t es = kiln_dtype_size(t->dtype);
    if (!same || t->dtype == KILN_STRING || !es)
        return fail_at(L, in->pack_step, "the constant data of %s does not match its type", t->name);
    pd[0] = (t->dims[d] + f - 1) / f;
    for (int k = 0, j = 1; k < t->rank; k++)
        if (k != d) pd[j++] = t->dims[k];
    pd[t->rank] = f;
    int64_t n = kiln_numel_dims(t->rank + 1, pd);
    if (n < 0 || (uint64_t)n > SIZE_MAX / es) return fail(L, KILN_ERR_UNSUPPORTED, "packed %s is too large", t->name);
    kiln_tensor *kt = kiln_arena_alloc(L->lf->arena, sizeof *kt);
    void *data = kt ? kiln_arena_alloc(L->lf->arena, (size_t)(n ? n : 1) * es) : NULL;
    if (!data) return nomem(L);
    kiln_tensor_init(kt, t->dtype, t->rank + 1, pd);
    kt->data = data;
    int64_t idx[KILN_MAX_RANK] = {0}, src = 0, total = kiln_numel_dims(t->rank, t->dims), prest = 1;
    for (int k = 0; k < t->rank; k++)
        if (k != d) prest *= t->dims[k];
    for (; src < total; src++, kiln_index_next(t->rank, t->dims, idx)) {
        int64_t rest = 0;
        for (int k = 0; k < t->rank; k++)
            if (k != d) rest = rest * t->dims[k] + idx[k];
        int64_t dst = ((idx[d] / f) * prest + rest) * f + idx[d] % f;
        memcpy((char *)data + (size_t)dst * es, (const char *)c->data + (size_t)src * es, es);
    }
    char nb[256];
    lir_buffer *buf = lir_arg_new(L->lf, buffer_name(L, in->pack_name, nb, sizeof nb), t->dtype, n, true);
    if (!buf) return nomem(L);
    buf->constant = kt;
    *out = buf;
    return KILN_OK;
}

static kiln_status make_args(lw *L) {
    sch_state *st = L->st;
    char nb[256];
    for (int i = 0; i < st->n_inputs; i++) {
        sch_input *in = &st->inputs[i];
        const tir_tensor *t = in->t;
        int64_t n = kiln_numel_dims(t->rank, t->dims);
        if (n < 0) return fail(L, KILN_ERR_INVALID, "input %s has a bad shape", t->name);
        lw_layout *lay = scratch(L, sizeof *lay);
        if (!lay) return L->err;
        lir_buffer *buf = NULL;
        if (in->pack_dim >= 0) {
            if (pack_constant(L, in, &buf)) return L->err;
        } else if (!(buf = lir_arg_new(L->lf, buffer_name(L, t->name, nb, sizeof nb), t->dtype, n, true))) {
            return nomem(L);
        }
        int64_t size;
        strides(L, t->rank, t->dims, NULL, NULL, lay->stride, &size);
        lay->t = t;
        lay->buf = buf;
        lay->rank = t->rank;
        memcpy(lay->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
        lay->pack_dim = in->pack_dim;
        lay->pack_factor = in->pack_factor;
        if (add_layout(L, lay)) return L->err;
    }
    const tir_func *f = st->f;
    for (int k = 0; k < f->n_outputs; k++) {
        const tir_tensor *t = f->outputs[k];
        int64_t n = kiln_numel_dims(t->rank, t->dims);
        if (n < 0) return fail(L, KILN_ERR_INVALID, "output %s has a bad shape", t->name);
        lir_buffer *buf = lir_arg_new(L->lf, buffer_name(L, t->name, nb, sizeof nb), t->dtype, n, false);
        if (!buf) return nomem(L);
        sch_stage *s = sch_stage_of_tensor(st, t);
        lw_stage *S = s ? lw_of(L, s) : NULL;
        if (S && !S->lay) {
            lw_layout *lay = scratch(L, sizeof *lay);
            int64_t size;
            if (!lay) return L->err;
            strides(L, t->rank, t->dims, NULL, NULL, lay->stride, &size);
            lay->t = t, lay->buf = buf, lay->rank = t->rank, lay->pack_dim = -1;
            memcpy(lay->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
            S->lay = lay;
            if (add_layout(L, lay)) return L->err;
            continue;
        }
        if (!kiln_grow((void **)&L->copies, &L->cap_copies, L->n_copies + 1, sizeof(lw_copy))) return nomem(L);
        L->copies[L->n_copies++] = (lw_copy){t, buf};
    }
    return KILN_OK;
}

/* ---- bound inference ---- */

static bool is_thread(lir_loop_kind k) { return k >= LIR_GPU_THREAD_X && k <= LIR_GPU_THREAD_Z; }
static bool is_gpu(lir_loop_kind k) { return k >= LIR_GPU_BLOCK_X && k <= LIR_GPU_THREAD_Z; }
static bool is_block(lir_loop_kind k) { return k >= LIR_GPU_BLOCK_X && k <= LIR_GPU_BLOCK_Z; }

static bool var_in(const ex_var *v, const ex_var *const *l, int n) {
    for (int i = 0; i < n; i++)
        if (l[i] == v) return true;
    return false;
}

static sch_ivar *root_ivar(const sch_stage *s, int axis) {
    for (int i = 0; i < s->n_ivars; i++)
        if (s->ivars[i]->root == axis) return s->ivars[i];
    return NULL;
}

/* The loop variables fixed at a point: the loops around S's nest and S's
** own leaves up to position upto. With shared scope the thread loops are
** not fixed: a shared buffer holds the region of the whole block. */
static int fixed_vars(lw *L, const lw_stage *S, int upto, bool shared, const ex_var **out) {
    int n = 0;
    for (int k = 0; k < S->n_enc; k++)
        if (!(shared && is_thread(S->enc_kind[k]))) out[n++] = S->enc[k];
    for (int p = 0; p <= upto; p++) {
        const sch_ivar *iv = S->s->leaves[p];
        if (S->lv[iv->index] && !(shared && is_thread(iv->kind))) out[n++] = S->lv[iv->index];
    }
    (void)L;
    return n;
}

/* Every loop variable made so far that is not fixed. */
static const ex_var **relaxed_vars(lw *L, const ex_var *const *fixed, int n_fixed, int *n) {
    const ex_var **r = scratch(L, sizeof(ex_var *) * (size_t)(L->n_ranges + 1));
    *n = 0;
    for (int i = 0; r && i < L->n_ranges; i++)
        if (!var_in(L->ranges[i].var, fixed, n_fixed)) r[(*n)++] = L->ranges[i].var;
    return r;
}

typedef struct region {
    bool have, unknown;
    ex_expr *lo;
    int64_t ext;
} region;

static void region_add(lw *L, region *r, ex_expr *lo, int64_t ext) {
    if (r->unknown) return;
    if (!r->have) {
        r->have = true, r->lo = lo, r->ext = ext;
        return;
    }
    ex_expr *d = lir_simplify_expr(L->b, ex_sub(L->b, lo, r->lo), L->ranges, L->n_ranges);
    int64_t k;
    if (!d || !ex_is_const_int(d, &k) || k < -((int64_t)1 << 40) || k > ((int64_t)1 << 40)) {
        r->unknown = true;
        return;
    }
    int64_t a = k < 0 ? k : 0, z = r->ext - 1 > k + ext - 1 ? r->ext - 1 : k + ext - 1;
    if (k < 0) r->lo = lo;
    r->ext = z - a + 1;
}

typedef struct load_list {
    const ex_expr **e;
    int n, cap;
} load_list;

static bool collect_loads(const ex_expr *e, const tir_tensor *t, load_list *l) {
    if (e->kind == EX_LOAD && e->tensor == t) {
        if (!kiln_grow((void **)&l->e, &l->cap, l->n + 1, sizeof(ex_expr *))) return false;
        l->e[l->n++] = e;
    }
    for (int i = 0; i < e->n_args; i++)
        if (!collect_loads(e->args[i], t, l)) return false;
    return true;
}

static bool enclosed(const lw_stage *P, const lw_stage *Q) {
    if (Q->n_enc < P->n_enc) return false;
    for (int k = 0; k < P->n_enc; k++)
        if (Q->enc[k] != P->enc[k]) return false;
    return true;
}

/* Widens the regions r[] by the indices of the loads of P's tensor in Q. */
static kiln_status region_from(lw *L, const lw_stage *P, const lw_stage *Q, const ex_var *const *relax, int n_relax,
                               region *r) {
    load_list l = {0};
    if (!collect_loads(Q->body, P->s->out, &l)) return kiln_free(l.e), nomem(L);
    lw_map m = stage_map(L, Q, Q->root);
    for (int i = 0; i < l.n && !L->err; i++)
        for (int d = 0; d < P->s->n_axes && !L->err; d++) {
            const ex_expr *x = l.e[i]->args[d];
            ex_expr *lo, *lx;
            int64_t ext;
            if (has_load(x) || !(lx = lw_expr(L, x, &m)) ||
                !lir_relaxed_bounds(L->b, lx, L->ranges, L->n_ranges, relax, n_relax, &lo, &ext))
                r[d].unknown = true;
            else
                region_add(L, &r[d], lo, ext);
        }
    kiln_free(l.e);
    return L->err;
}

/* The region of stage idx (computed inside another stage's loop) that its
** readers there need. */
static kiln_status infer_region(lw *L, int idx) {
    lw_stage *P = &L->ls[idx], *T = lw_of(L, P->s->at_stage);
    sch_stage *s = P->s;
    region r[KILN_MAX_RANK];
    memset(r, 0, sizeof r);
    const ex_var **fixed = scratch(L, sizeof(ex_var *) * (size_t)(P->n_enc + 1));
    if (!fixed) return L->err;
    int n_fixed = 0, n_relax;
    for (int k = 0; k < P->n_enc; k++)
        if (!(P->scope == LIR_SCOPE_SHARED && is_thread(P->enc_kind[k]))) fixed[n_fixed++] = P->enc[k];
    const ex_var **relax = relaxed_vars(L, fixed, n_fixed, &n_relax);
    if (!relax) return L->err;
    bool any = false;
    for (int j = idx + 1; j < L->st->n_stages; j++) {
        lw_stage *Q = &L->ls[j];
        if (Q->inlined || !sch_reads_tensor(Q->body, s->out)) continue;
        if (Q != T && !(Q->s->attach == SCH_AT && enclosed(P, Q)))
            return fail_at(L, s->attach_step, "%s is also read by %s, which is not computed inside %s's loop %s", s->name,
                           Q->s->name, T->s->name, s->at_ivar->name);
        any = true;
        if (region_from(L, P, Q, relax, n_relax, r)) return L->err;
    }
    if (!any)
        return fail_at(L, s->attach_step, "nothing inside %s's loop %s reads %s", T->s->name, s->at_ivar->name, s->name);
    for (int d = 0; d < s->n_axes; d++) {
        bool full = r[d].unknown || !r[d].have || r[d].ext >= s->out->dims[d];
        P->rmin[d] = full ? NULL : r[d].lo;
        P->rext[d] = full ? s->out->dims[d] : r[d].ext;
    }
    return KILN_OK;
}

/* The loops around a stage computed at T's leaf `at`. */
static kiln_status enclosing(lw *L, lw_stage *S) {
    sch_stage *s = S->s;
    if (s->attach != SCH_AT) return KILN_OK;
    lw_stage *T = lw_of(L, s->at_stage);
    if (T->inlined)
        return fail_at(L, s->attach_step, "%s is inlined, so %s cannot be computed inside it", T->s->name, s->name);
    int pos = sch_leaf_pos(s->at_stage, s->at_ivar);
    if (pos < 0) return fail_at(L, s->attach_step, "axis %s of %s no longer exists", s->at_ivar->name, T->s->name);
    int cap = T->n_enc + pos + 1;
    S->enc = scratch(L, sizeof(ex_var *) * (size_t)cap);
    S->enc_kind = scratch(L, sizeof(lir_loop_kind) * (size_t)cap);
    S->enc_ext = scratch(L, sizeof(int64_t) * (size_t)cap);
    if (!S->enc || !S->enc_kind || !S->enc_ext) return L->err;
    for (int k = 0; k < T->n_enc; k++)
        S->enc[k] = T->enc[k], S->enc_kind[k] = T->enc_kind[k], S->enc_ext[k] = T->enc_ext[k];
    S->n_enc = T->n_enc;
    for (int p = 0; p <= pos; p++) {
        const sch_ivar *iv = s->at_stage->leaves[p];
        if (!T->lv[iv->index]) continue;
        S->enc[S->n_enc] = T->lv[iv->index];
        S->enc_kind[S->n_enc] = iv->kind;
        S->enc_ext[S->n_enc++] = T->ext[iv->index];
    }
    /* a thread loop must not be split from the ones nested in it */
    int first = -1, last = -1;
    for (int p = 0; p < s->at_stage->n_leaves; p++) {
        const sch_ivar *iv = s->at_stage->leaves[p];
        if (is_thread(iv->kind) && T->lv[iv->index]) last = p, first = first < 0 ? p : first;
    }
    if (first >= 0 && pos >= first && pos < last)
        return fail_at(L, s->attach_step, "%s's thread loops %s..%s must stay together; attach at the innermost one",
                       T->s->name, s->at_stage->leaves[first]->name, s->at_stage->leaves[last]->name);
    return KILN_OK;
}

static kiln_status add_guard(lw *L, lw_stage *S, guard_kind k, int which, int pos, bool reduce) {
    lw_guard *g = scratch(L, sizeof(lw_guard) * (size_t)(S->n_guards + 1));
    if (!g) return L->err;
    if (S->n_guards) memcpy(g, S->guards, sizeof(lw_guard) * (size_t)S->n_guards);
    g[S->n_guards++] = (lw_guard){k, which, pos, reduce};
    S->guards = g;
    return KILN_OK;
}

/* Extents of every ivar from the root extents. */
static void derive_extents(lw_stage *S) {
    sch_stage *s = S->s;
    for (int i = 0; i < s->n_ivars; i++) {
        int r = s->ivars[i]->root;
        if (r >= 0) S->ext[i] = r < s->n_axes ? S->rext[r] : s->raxes[r - s->n_axes]->extent;
    }
    for (int r = 0; r < s->n_rels; r++) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind == SCH_REL_SPLIT) {
            int64_t p = S->ext[rel->parent->index], f = rel->factor;
            S->ext[rel->outer->index] = p == 0 ? 0 : (p - 1) / f + 1;
            S->ext[rel->inner->index] = p < f ? p : f;
        } else {
            S->ext[rel->parent->index] = S->ext[rel->outer->index] * S->ext[rel->inner->index];
        }
    }
}

/* A loop variable per leaf, or the enclosing GPU loop's index for a leaf
** bound to a tag that an enclosing loop already has. */
static kiln_status leaf_vars(lw *L, lw_stage *S) {
    sch_stage *s = S->s;
    for (int p = 0; p < s->n_leaves; p++) {
        sch_ivar *iv = s->leaves[p];
        int64_t ext = S->ext[iv->index];
        int k = -1;
        for (int e = S->n_enc - 1; e >= 0 && k < 0 && is_gpu(iv->kind); e--)
            if (S->enc_kind[e] == iv->kind) k = e;
        if (k >= 0 && !(is_thread(iv->kind) && S->scope == LIR_SCOPE_SHARED))
            return fail_at(L, iv->kind_step,
                           "%s of %s is bound to %s, which its enclosing loop %s already is: only a shared stage can "
                           "share the threads of the loops it is computed in",
                           iv->name, s->name, lir_loop_kind_name(iv->kind), S->enc[k]->name);
        for (int e = 0; e < S->n_enc && k < 0 && is_gpu(iv->kind); e++)
            if (is_thread(S->enc_kind[e]) || (is_block(iv->kind) && is_gpu(S->enc_kind[e])))
                return fail_at(L, iv->kind_step, "%s of %s is bound to %s inside the %s loop %s it is computed in",
                               iv->name, s->name, lir_loop_kind_name(iv->kind), lir_loop_kind_name(S->enc_kind[e]),
                               S->enc[e]->name);
        if (k >= 0) {
            if (ext > S->enc_ext[k])
                return fail_at(L, iv->kind_step, "%s of %s needs %lld along %s, but the enclosing %s loop has %lld",
                               iv->name, s->name, (long long)ext, lir_loop_kind_name(iv->kind), S->enc[k]->name,
                               (long long)S->enc_ext[k]);
            S->val[iv->index] = ex_varref(L->b, S->enc[k]);
            if (ext < S->enc_ext[k] && add_guard(L, S, G_THREAD, iv->index, p, false)) return L->err;
            continue;
        }
        if (!(S->lv[iv->index] = new_var(L, iv->name, "", ext))) return L->err;
        S->val[iv->index] = ex_varref(L->b, S->lv[iv->index]);
    }
    return KILN_OK;
}

static kiln_status check_gpu_order(lw *L, lw_stage *S) {
    sch_stage *s = S->s;
    int last = -1;
    for (int p = 0; p < s->n_leaves; p++) {
        sch_ivar *iv = s->leaves[p];
        if (!S->lv[iv->index] || !is_gpu(iv->kind)) continue;
        if (is_thread(iv->kind)) {
            if (last >= 0 && last != p - 1)
                return fail_at(L, iv->kind_step, "the thread loops of %s must be adjacent (%s is not next to %s)", s->name,
                               iv->name, s->leaves[last]->name);
            last = p;
        } else if (last >= 0) {
            return fail_at(L, iv->kind_step, "block loop %s of %s is inside thread loop %s", iv->name, s->name,
                           s->leaves[last]->name);
        }
    }
    return KILN_OK;
}

static kiln_status make_guards(lw *L, lw_stage *S) {
    sch_stage *s = S->s;
    int *maxpos = scratch(L, sizeof(int) * (size_t)s->n_ivars);
    if (!maxpos) return L->err;
    for (int i = 0; i < s->n_ivars; i++) maxpos[i] = -1;
    for (int p = 0; p < s->n_leaves; p++) maxpos[s->leaves[p]->index] = p;
    for (int r = s->n_rels - 1; r >= 0; r--) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind == SCH_REL_SPLIT) {
            int a = maxpos[rel->outer->index], b = maxpos[rel->inner->index];
            maxpos[rel->parent->index] = a > b ? a : b;
        } else {
            maxpos[rel->outer->index] = maxpos[rel->inner->index] = maxpos[rel->parent->index];
        }
    }
    for (int r = 0; r < s->n_rels; r++) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind == SCH_REL_SPLIT &&
            S->ext[rel->outer->index] * S->ext[rel->inner->index] > S->ext[rel->parent->index] &&
            add_guard(L, S, G_SPLIT, r, maxpos[rel->parent->index], rel->parent->reduce))
            return L->err;
    }
    for (int d = 0; d < s->n_axes; d++)
        if (S->rmin[d] && add_guard(L, S, G_DOMAIN, d, maxpos[root_ivar(s, d)->index], false)) return L->err;
    return KILN_OK;
}

/* The accumulator of a cache_write: the tile of the spatial roots while
** the leaves inside its loop range. */
/* Whether leaf iv derives from root axis d (through splits and fuses). */
static bool from_root(const sch_stage *s, const sch_ivar *iv, int d) {
    if (iv->root == d) return true;
    for (int r = 0; r < s->n_rels; r++) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind == SCH_REL_SPLIT && (rel->outer == iv || rel->inner == iv)) return from_root(s, rel->parent, d);
        if (rel->kind == SCH_REL_FUSE && rel->parent == iv)
            return from_root(s, rel->outer, d) || from_root(s, rel->inner, d);
    }
    return false;
}

/* An internal buffer (a cache, or the region of a stage computed inside
** another stage's loop) is laid out in the order of the stage's loops: the
** dimension whose loop is innermost gets stride 1. A tile vectorized along
** a dimension that is not the tensor's last (the output channels of an
** NCHW convolution) is then contiguous, so that a register tile stays in
** registers. Ties (and dimensions without a loop) keep the row-major order. */
static void loop_order_strides(const sch_stage *s, lw_layout *lay) {
    int rank = lay->rank, key[KILN_MAX_RANK], ord[KILN_MAX_RANK];
    for (int d = 0; d < rank; d++) {
        key[d] = -1;
        ord[d] = d;
        for (int p = 0; p < s->n_leaves; p++)
            if (!s->leaves[p]->reduce && from_root(s, s->leaves[p], d)) key[d] = p;
    }
    for (int a = 1; a < rank; a++)
        for (int b = a; b > 0; b--) {
            int x = ord[b], y = ord[b - 1];
            if (key[x] < key[y] || (key[x] == key[y] && x < y)) break;
            ord[b] = y;
            ord[b - 1] = x;
        }
    int64_t st = 1;
    for (int k = 0; k < rank; k++) {
        lay->stride[ord[k]] = st;
        st *= lay->dims[ord[k]];
    }
}

static kiln_status cache_layout(lw *L, lw_stage *S) {
    sch_stage *s = S->s;
    S->cw_pos = s->cw_at ? sch_leaf_pos(s, s->cw_at) : -1;
    for (int p = 0; p <= S->cw_pos; p++)
        if (s->leaves[p]->reduce)
            return fail_at(L, s->cw_step, "reduction loop %s of %s is outside the cache's loop %s: the accumulator must "
                           "cover the whole reduction", s->leaves[p]->name, s->name, s->cw_at->name);
    bool shared = s->cw_scope == LIR_SCOPE_SHARED;
    const ex_var **fixed = scratch(L, sizeof(ex_var *) * (size_t)(S->n_enc + s->n_leaves + 1));
    if (!fixed) return L->err;
    int n_fixed = fixed_vars(L, S, S->cw_pos, shared, fixed), n_relax;
    const ex_var **relax = relaxed_vars(L, fixed, n_fixed, &n_relax);
    if (!relax) return L->err;
    int64_t ext[KILN_MAX_RANK];
    ex_expr *min[KILN_MAX_RANK];
    for (int d = 0; d < s->n_axes; d++) {
        ex_expr *lo;
        int64_t e;
        bool ok = lir_relaxed_bounds(L->b, S->root[d], L->ranges, L->n_ranges, relax, n_relax, &lo, &e);
        /* a shared cache serves every thread: past the tile, the whole
        ** dimension (the stage's own region may be one thread's) */
        int64_t cap = shared ? s->out->dims[d] : S->rext[d];
        if (ok && e < cap) min[d] = lo, ext[d] = e;
        else if (shared) min[d] = NULL, ext[d] = s->out->dims[d];
        else min[d] = S->rmin[d], ext[d] = S->rext[d];
    }
    lw_layout *lay = new_layout(L, NULL, s->cw_name, s->out->dtype, s->n_axes, ext, min, NULL, NULL, s->cw_scope);
    if (!lay) return L->err;
    if (!shared) loop_order_strides(s, lay);
    S->cw = *lay;
    if (S->cw_pos >= 0 && is_thread(s->cw_at->kind)) {
        for (int p = S->cw_pos + 1; p < s->n_leaves; p++)
            if (is_thread(s->leaves[p]->kind) && S->lv[s->leaves[p]->index])
                return fail_at(L, s->cw_step, "the cache's loop %s is not the innermost thread loop of %s", s->cw_at->name, s->name);
    }
    return KILN_OK;
}

static kiln_status infer_stage(lw *L, int idx) {
    lw_stage *S = &L->ls[idx];
    sch_stage *s = S->s;
    size_t n = (size_t)s->n_ivars;
    if (s->body->dtype != s->out->dtype)
        return fail(L, KILN_ERR_INVALID, "stage %s computes %s values for a %s tensor", s->name,
                    kiln_dtype_name(s->body->dtype), kiln_dtype_name(s->out->dtype));
    S->ext = scratch(L, sizeof(int64_t) * n);
    S->lv = scratch(L, sizeof(ex_var *) * n);
    S->val = scratch(L, sizeof(ex_expr *) * n);
    S->root = scratch(L, sizeof(ex_expr *) * (size_t)(s->n_axes + s->n_raxes + 1));
    if (!S->ext || !S->lv || !S->val || !S->root || enclosing(L, S)) return L->err;
    bool in_threads = false, in_block = false;
    for (int k = 0; k < S->n_enc; k++) in_threads |= is_thread(S->enc_kind[k]), in_block |= is_block(S->enc_kind[k]);
    S->scope = s->scope_set ? s->scope : in_threads ? LIR_SCOPE_LOCAL : in_block ? LIR_SCOPE_SHARED : LIR_SCOPE_GLOBAL;
    for (int d = 0; d < s->n_axes; d++) S->rmin[d] = NULL, S->rext[d] = s->out->dims[d];
    if (s->attach == SCH_AT && infer_region(L, idx)) return L->err;
    derive_extents(S);
    if (leaf_vars(L, S) || check_gpu_order(L, S)) return L->err;
    if (!sch_ivar_values(L->b, s, S->ext, S->val)) return nomem(L);
    for (int d = 0; d < s->n_axes + s->n_raxes; d++) {
        sch_ivar *r = root_ivar(s, d);
        if (!r || !S->val[r->index]) return fail(L, KILN_ERR_INTERNAL, "stage %s: axis %d has no loop", s->name, d);
        S->root[d] = d < s->n_axes && S->rmin[d] ? ex_add(L->b, S->rmin[d], S->val[r->index]) : S->val[r->index];
    }
    S->first_red = -1;
    for (int p = s->n_leaves - 1; p >= 0; p--)
        if (s->leaves[p]->reduce) S->first_red = p;
    if (make_guards(L, S)) return L->err;
    if (s->attach == SCH_AT && !S->lay) {
        S->lay = new_layout(L, s->out, s->name, s->out->dtype, s->n_axes, S->rext, S->rmin, s->align_factor,
                            s->align_offset, S->scope);
        if (!S->lay || add_layout(L, S->lay)) return L->err;
        bool aligned = false;
        for (int d = 0; d < s->n_axes; d++) aligned |= s->align_factor[d] > 0;
        if (!aligned && S->scope != LIR_SCOPE_SHARED) loop_order_strides(s, S->lay);
    }
    return s->cw ? cache_layout(L, S) : KILN_OK;
}

/* ---- emission ---- */

static lir_stmt *seq(lw *L, lir_stmt *const *s, int n) {
    lir_stmt *out[8];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i]) return nomem(L), NULL;
        out[k++] = s[i];
    }
    return k == 1 ? out[0] : lir_seq(L->lf, out, k);
}

static lir_stmt *seq2(lw *L, lir_stmt *a, lir_stmt *b) {
    lir_stmt *s[2] = {a, b};
    return seq(L, s, 2);
}

static bool has_sync(const lir_stmt *s) {
    switch (s->kind) {
    case LIR_BARRIER: return true;
    case LIR_FOR: return is_gpu(s->loop) || has_sync(s->body);
    case LIR_ALLOC: return has_sync(s->body);
    case LIR_IF: return has_sync(s->body) || (s->else_body && has_sync(s->else_body));
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++)
            if (has_sync(s->stmts[i])) return true;
        return false;
    default: return false;
    }
}

/* IF cond around s, pushed inside barriers and GPU loops so that every
** thread still reaches every barrier and GPU loops stay directly nested. */
static lir_stmt *guard_wrap(lw *L, ex_expr *cond, lir_stmt *s) {
    lir_func *f = L->lf;
    if (!s || !cond) return nomem(L), NULL;
    /* a cooperative fill serves every thread of the block, in range or not;
    ** its own guards keep it inside its tensor */
    for (int i = 0; i < L->n_coop; i++)
        if (L->coop[i] == s) return s;
    if (!has_sync(s)) return lir_if(f, cond, s, NULL);
    switch (s->kind) {
    case LIR_BARRIER:
    case LIR_NOP: return s;
    case LIR_FOR: return lir_for(f, s->var, s->min, s->extent, s->loop, guard_wrap(L, cond, s->body));
    case LIR_ALLOC: return lir_alloc(f, s->buffer, guard_wrap(L, cond, s->body));
    case LIR_IF:
        return lir_if(f, s->cond, guard_wrap(L, cond, s->body), s->else_body ? guard_wrap(L, cond, s->else_body) : NULL);
    case LIR_SEQ: {
        lir_stmt **c = scratch(L, sizeof(lir_stmt *) * (size_t)(s->n_stmts + 1));
        if (!c) return NULL;
        for (int i = 0; i < s->n_stmts; i++)
            if (!(c[i] = guard_wrap(L, cond, s->stmts[i]))) return NULL;
        return lir_seq(f, c, s->n_stmts);
    }
    default: return lir_if(f, cond, s, NULL);
    }
}

static lw_nest main_nest(lw_stage *S) { return (lw_nest){S, NEST_MAIN, 0, S->val, S->lv, S->root}; }

/* A nest over the leaves from `from` on with fresh loop variables (the
** init of a reduction, the write-back of a cache). */
static kiln_status side_nest(lw *L, lw_stage *S, nest_mode mode, int from, lw_nest *N) {
    sch_stage *s = S->s;
    size_t n = (size_t)s->n_ivars;
    *N = (lw_nest){S, mode, from, scratch(L, sizeof(ex_expr *) * n), scratch(L, sizeof(ex_var *) * n),
                   scratch(L, sizeof(ex_expr *) * (size_t)(s->n_axes + s->n_raxes + 1))};
    if (!N->val || !N->lv || !N->root) return L->err;
    for (int p = 0; p < s->n_leaves; p++) {
        const sch_ivar *iv = s->leaves[p];
        int i = iv->index;
        if (p < from || (!iv->reduce && !S->lv[i])) N->val[i] = S->val[i];
        else if (!iv->reduce) {
            if (!(N->lv[i] = new_var(L, iv->name, mode == NEST_INIT ? "_init" : "_wb", S->ext[i]))) return L->err;
            N->val[i] = ex_varref(L->b, N->lv[i]);
        }
    }
    if (!sch_ivar_values(L->b, s, S->ext, N->val)) return nomem(L);
    for (int d = 0; d < s->n_axes; d++) {
        ex_expr *v = N->val[root_ivar(s, d)->index];
        N->root[d] = S->rmin[d] && v ? ex_add(L->b, S->rmin[d], v) : v;
    }
    return KILN_OK;
}

static ex_expr *guard_cond(lw *L, const lw_nest *N, const lw_guard *g) {
    ex_builder *b = L->b;
    const lw_stage *S = N->S;
    ex_expr *v;
    switch (g->kind) {
    case G_SPLIT: {
        const sch_ivar *p = S->s->rels[g->which].parent;
        v = N->val[p->index];
        return v ? ex_lt(b, v, ex_int(b, S->ext[p->index])) : NULL;
    }
    case G_DOMAIN:
        v = N->root[g->which];
        if (!v) return NULL;
        return ex_and(b, ex_binary(b, EX_LE, ex_int(b, 0), v), ex_lt(b, v, ex_int(b, S->s->out->dims[g->which])));
    case G_THREAD: v = N->val[g->which]; return v ? ex_lt(b, v, ex_int(b, S->ext[g->which])) : NULL;
    }
    return NULL;
}

static ex_expr *combine(lw *L, ex_combiner c, ex_expr *acc, ex_expr *x) {
    static const ex_binop ops[EX_COMBINER_COUNT] = {EX_ADD, EX_MUL, EX_MAX, EX_MIN};
    if ((unsigned)c >= EX_COMBINER_COUNT) return fail(L, KILN_ERR_INVALID, "unknown reduction combiner"), NULL;
    return ex_binary(L->b, ops[c], acc, x);
}

static lir_stmt *innermost(lw *L, lw_nest *N) {
    lw_stage *S = N->S;
    sch_stage *s = S->s;
    const lw_layout *tgt = s->cw ? &S->cw : S->lay;
    ex_expr *idx = layout_index(L, tgt, N->root);
    lw_map m = stage_map(L, S, N->root);
    ex_builder *b = L->b;
    ex_expr *v;
    switch (N->mode) {
    case NEST_MAIN:
        if (s->n_raxes) {
            ex_expr *src = lw_expr(L, S->body->args[0], &m);
            v = src ? combine(L, (ex_combiner)S->body->op, ex_load_buffer(b, tgt->buf, idx), src) : NULL;
        } else {
            v = lw_expr(L, S->body, &m);
        }
        return v ? lir_store(L->lf, tgt->buf, idx, v) : NULL;
    case NEST_INIT:
        v = lw_expr(L, S->body->args[1], &m);
        return v ? lir_store(L->lf, tgt->buf, idx, v) : NULL;
    case NEST_WB:
        return lir_store(L->lf, S->lay->buf, layout_index(L, S->lay, N->root), ex_load_buffer(b, S->cw.buf, idx));
    }
    return NULL;
}

static lir_stmt *nest_from(lw *L, lw_nest *N, int p);
static lir_stmt *stage_stmt(lw *L, lw_stage *S);

static bool hoisting(const lw *L, const lir_buffer *b) { return b->scope == LIR_SCOPE_SHARED && L->thread_depth > 0; }

static lir_stmt *hoist(lw *L, lir_buffer *b, lir_stmt *const *s, int n) {
    if (!kiln_grow((void **)&L->hoist, &L->cap_hoist, L->n_hoist + 1, sizeof(lir_buffer *))) return nomem(L), NULL;
    L->hoist[L->n_hoist++] = b;
    return seq(L, s, n);
}

static lir_stmt *attach_wrap(lw *L, lw_stage *P, lir_stmt *inner) {
    lir_stmt *ps = stage_stmt(L, P);
    lir_buffer *b = P->lay->buf;
    if (!ps || !inner) return NULL;
    if (b->arg_index >= 0) return seq2(L, ps, inner);
    if (hoisting(L, b)) {
        if (!kiln_grow((void **)&L->coop, &L->cap_coop, L->n_coop + 1, sizeof(lir_stmt *))) return nomem(L), NULL;
        L->coop[L->n_coop++] = ps;
        lir_stmt *s[4] = {lir_barrier(L->lf), ps, lir_barrier(L->lf), inner};
        return hoist(L, b, s, 4);
    }
    return lir_alloc(L->lf, b, seq2(L, ps, inner));
}

static lir_stmt *cache_wrap(lw *L, lw_stage *S, int p, lir_stmt *compute) {
    lw_nest wb;
    if (!compute || side_nest(L, S, NEST_WB, p + 1, &wb)) return NULL;
    lir_stmt *back = nest_from(L, &wb, p + 1);
    if (!back) return NULL;
    if (hoisting(L, S->cw.buf)) {
        lir_stmt *s[4] = {lir_barrier(L->lf), compute, lir_barrier(L->lf), back};
        return hoist(L, S->cw.buf, s, 4);
    }
    return lir_alloc(L->lf, S->cw.buf, seq2(L, compute, back));
}

/* What goes inside loop p (p = -1: the top of the nest) around `inner`,
** the loops further in: a reduction's init, a cache, the stages computed
** at this loop, and the guards that depend on it. */
static lir_stmt *wrap_level(lw *L, lw_nest *N, int p, lir_stmt *inner) {
    lw_stage *S = N->S;
    sch_stage *s = S->s;
    if (!inner) return NULL;
    if (N->mode == NEST_MAIN) {
        if (s->n_raxes && S->first_red == p + 1) {
            lw_nest init;
            if (side_nest(L, S, NEST_INIT, p + 1, &init)) return NULL;
            inner = seq2(L, nest_from(L, &init, p + 1), inner);
        }
        if (s->cw && S->cw_pos == p) inner = cache_wrap(L, S, p, inner);
        for (int i = L->st->n_stages - 1; p >= 0 && i >= 0 && inner; i--) {
            lw_stage *P = &L->ls[i];
            if (!P->inlined && P->s->attach == SCH_AT && P->s->at_stage == s && P->s->at_ivar == s->leaves[p])
                inner = attach_wrap(L, P, inner);
        }
    }
    for (int g = 0; g < S->n_guards && inner; g++) {
        const lw_guard *gd = &S->guards[g];
        if (gd->pos != p || (N->mode != NEST_MAIN && gd->reduce)) continue;
        ex_expr *c = guard_cond(L, N, gd);
        if (!c) return fail(L, KILN_ERR_INTERNAL, "stage %s: a guard without its loops", s->name), NULL;
        inner = guard_wrap(L, c, inner);
    }
    return inner;
}

static lir_stmt *nest_from(lw *L, lw_nest *N, int p) {
    sch_stage *s = N->S->s;
    if (L->err) return NULL;
    if (p == s->n_leaves) return innermost(L, N);
    const sch_ivar *iv = s->leaves[p];
    const ex_var *v = N->lv[iv->index];
    if ((N->mode != NEST_MAIN && iv->reduce) || !v) return wrap_level(L, N, p, nest_from(L, N, p + 1));
    bool th = is_thread(iv->kind), outer = th && L->thread_depth == 0;
    int mark = L->n_hoist;
    L->thread_depth += th;
    lir_stmt *body = wrap_level(L, N, p, nest_from(L, N, p + 1));
    L->thread_depth -= th;
    if (!body) return NULL;
    lir_stmt *loop = lir_for(L->lf, v, ex_int(L->b, 0), ex_int(L->b, N->S->ext[iv->index]), iv->kind, body);
    if (outer) {
        for (int i = L->n_hoist - 1; i >= mark && loop; i--) loop = lir_alloc(L->lf, L->hoist[i], loop);
        L->n_hoist = mark;
    }
    return loop;
}

static lir_stmt *stage_stmt(lw *L, lw_stage *S) {
    lw_nest N = main_nest(S);
    return wrap_level(L, &N, -1, nest_from(L, &N, 0));
}

/* dst = src, element by element (an output that is an input, or an
** output listed twice). */
static lir_stmt *copy_nest(lw *L, const lw_copy *c) {
    const tir_tensor *t = c->src;
    lw_layout *src = layout_of(L, t);
    if (!src) return fail(L, KILN_ERR_INVALID, "output %s is not computed by this kernel", t->name), NULL;
    ex_expr *idx[KILN_MAX_RANK], *flat = ex_int(L->b, 0);
    const ex_var *v[KILN_MAX_RANK];
    for (int d = 0; d < t->rank; d++) {
        if (!(v[d] = new_var(L, "c", "", t->dims[d]))) return NULL;
        idx[d] = ex_varref(L->b, v[d]);
        flat = ex_add(L->b, ex_mul(L->b, flat, ex_int(L->b, t->dims[d])), idx[d]);
    }
    lir_stmt *s = lir_store(L->lf, c->dst, flat, ex_load_buffer(L->b, src->buf, layout_index(L, src, idx)));
    for (int d = t->rank - 1; d >= 0; d--) s = lir_for(L->lf, v[d], ex_int(L->b, 0), ex_int(L->b, t->dims[d]), LIR_SERIAL, s);
    return s;
}

static kiln_status emit(lw *L) {
    int n = 0, cap = L->st->n_stages + L->n_copies + 1;
    lir_stmt **parts = scratch(L, sizeof(lir_stmt *) * (size_t)cap);
    if (!parts) return L->err;
    for (int i = 0; i < L->st->n_stages; i++) {
        lw_stage *S = &L->ls[i];
        if (S->inlined || S->s->attach != SCH_ROOT) continue;
        if (!(parts[n++] = stage_stmt(L, S))) return L->err ? L->err : nomem(L);
    }
    for (int k = 0; k < L->n_copies; k++)
        if (!(parts[n++] = copy_nest(L, &L->copies[k]))) return L->err ? L->err : nomem(L);
    lir_stmt *body = lir_seq(L->lf, parts, n);
    for (int i = L->n_roots - 1; i >= 0 && body; i--) body = lir_alloc(L->lf, L->roots[i], body);
    if (!body || L->lf->eb.failed) return L->err ? L->err : nomem(L);
    L->lf->body = body;
    return KILN_OK;
}

/* ---- the driver ---- */

static kiln_status root_buffers(lw *L) {
    for (int i = 0; i < L->st->n_stages; i++) {
        lw_stage *S = &L->ls[i];
        sch_stage *s = S->s;
        if (S->inlined || s->attach != SCH_ROOT || S->lay) continue;
        S->lay = new_layout(L, s->out, s->name, s->out->dtype, s->n_axes, s->out->dims, NULL, s->align_factor,
                            s->align_offset, s->scope_set ? s->scope : LIR_SCOPE_GLOBAL);
        if (!S->lay || add_layout(L, S->lay)) return L->err;
        bool aligned = false;
        for (int d = 0; d < s->n_axes; d++) aligned |= s->align_factor[d] > 0;
        if (!aligned && S->lay->buf->scope != LIR_SCOPE_SHARED) loop_order_strides(s, S->lay);
        if (!kiln_grow((void **)&L->roots, &L->cap_roots, L->n_roots + 1, sizeof(lir_buffer *))) return nomem(L);
        L->roots[L->n_roots++] = S->lay->buf;
    }
    return KILN_OK;
}

static kiln_status lower(lw *L) {
    sch_state *st = L->st;
    if (!(L->ls = scratch(L, sizeof(lw_stage) * (size_t)(st->n_stages + 1)))) return L->err;
    for (int i = 0; i < st->n_stages; i++) {
        L->ls[i].s = st->stages[i];
        L->ls[i].inlined = st->stages[i]->attach == SCH_INLINE;
        L->ls[i].cw_pos = L->ls[i].first_red = -1;
    }
    if (make_args(L)) return L->err;
    for (int i = 0; i < st->n_stages; i++)
        if (!(L->ls[i].body = expand(L, st->stages[i]->body, i))) return L->err ? L->err : nomem(L);
    if (root_buffers(L)) return L->err;
    for (int i = st->n_stages - 1; i >= 0; i--)
        if (!L->ls[i].inlined && infer_stage(L, i)) return L->err;
    if (emit(L)) return L->err;
    kiln_status r = lir_simplify(L->ctx, L->lf);
    if (r) return r;
    r = lir_verify(L->ctx, L->lf);
    if (r == KILN_ERR_NOMEM) return r;
    if (r) return kiln_wrap(L->ctx, KILN_ERR_INTERNAL, "schedule: lowering '%s' gave invalid loop IR", st->f->name);
    return KILN_OK;
}

kiln_status sch_lower(kiln_ctx *ctx, const tir_func *f, const sch_trace *t, lir_func **out) {
    if (!f || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "sch_lower: no function");
    if (f->eb.failed) return kiln_fail(ctx, KILN_ERR_INVALID, "sch_lower: '%s' was not built completely", f->name);
    sch_state st;
    kiln_status r = sch_state_init(ctx, &st, f);
    if (t) {
        st.steps = t->steps;
        st.n_steps = t->n_steps;
    }
    for (int i = 0; !r && t && i < t->n_steps; i++) r = sch_state_apply(&st, &t->steps[i], i);
    lw L;
    memset(&L, 0, sizeof L);
    L.ctx = ctx;
    L.st = &st;
    if (!r && !(L.lf = lir_func_new(f->name))) r = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!r) {
        L.b = &L.lf->eb;
        r = lower(&L);
    }
    kiln_free(L.lays);
    kiln_free(L.ranges);
    kiln_free(L.roots);
    kiln_free(L.copies);
    kiln_free(L.hoist);
    kiln_free(L.coop);
    sch_state_release(&st);
    if (r) {
        lir_func_free(L.lf);
        return r;
    }
    *out = L.lf;
    return KILN_OK;
}
