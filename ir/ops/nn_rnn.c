/*
** nn_rnn.c — the recurrent ops RNN, GRU and LSTM (opset 7+): forward,
** reverse and bidirectional, per-batch sequence lengths, initial states,
** LSTM peepholes and coupled gates, GRU linear_before_reset, layout 0
** ([seq, batch, ...]) and 1 ([batch, seq, ...]), and the activation list.
** Each batch entry runs its own time loop in double.
*/
#include <math.h>
#include <string.h>
#include <strings.h>

#include "nn_internal.h"

enum { CELL_RNN, CELL_GRU, CELL_LSTM };
enum { ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_AFFINE, ACT_LEAKY, ACT_THRESH, ACT_STANH, ACT_HSIG, ACT_ELU,
       ACT_SOFTSIGN, ACT_SOFTPLUS };

static const char *const k_act_names[] = {"Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                                          "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus", NULL};
static const char *const k_directions[] = {"forward", "reverse", "bidirectional", NULL};

typedef struct rnn_act {
    int kind;
    double alpha, beta;
} rnn_act;

typedef struct rnn_plan {
    int cell, gates, nact, ndir, direction;
    bool batch_major, lbr, input_forget, has_clip;
    double clip;
    int64_t seq, batch, in, hid;
    rnn_act act[2][3]; /* per direction: f, g, h */
} rnn_plan;

static void act_defaults(rnn_act *a) {
    switch (a->kind) {
    case ACT_LEAKY: a->alpha = 0.01; break;
    case ACT_THRESH: a->alpha = 1.0; break;
    case ACT_HSIG: a->alpha = 0.2, a->beta = 0.5; break;
    case ACT_ELU: a->alpha = 1.0; break;
    case ACT_STANH: a->alpha = a->beta = 1.0; break;
    case ACT_AFFINE: a->alpha = 1.0; break;
    default: break;
    }
}

static kiln_status rnn_acts(kiln_ctx *ctx, const gir_node *n, rnn_plan *p) {
    static const int dflt[3][3] = {{ACT_TANH}, {ACT_SIGMOID, ACT_TANH}, {ACT_SIGMOID, ACT_TANH, ACT_TANH}};
    const gir_attr *names = gir_attr_find(n, "activations");
    const double *alpha, *beta;
    int na = gir_attr_floats(n, "activation_alpha", &alpha), nb = gir_attr_floats(n, "activation_beta", &beta);
    int want = p->nact * p->ndir;
    if (names && (names->kind != GIR_ATTR_STRINGS || names->n != want))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "activations must list %d functions", want);
    for (int i = 0; i < want; i++) {
        rnn_act *a = &p->act[i / p->nact][i % p->nact];
        memset(a, 0, sizeof *a);
        a->kind = dflt[p->cell][i % p->nact];
        if (names) {
            int k = 0;
            while (k_act_names[k] && strcasecmp(k_act_names[k], names->strings[i])) k++;
            if (!k_act_names[k])
                return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "activation '%s' is not supported",
                                    names->strings[i]);
            a->kind = k;
        }
        act_defaults(a);
        if (i < na) a->alpha = alpha[i];
        if (i < nb) a->beta = beta[i];
    }
    if (p->ndir == 1)
        for (int j = 0; j < 3; j++) p->act[1][j] = p->act[0][j];
    return KILN_OK;
}

static double act_apply(const rnn_plan *p, const rnn_act *a, double x) {
    if (p->has_clip) x = x < -p->clip ? -p->clip : x > p->clip ? p->clip : x;
    switch (a->kind) {
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_TANH: return tanh(x);
    case ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ACT_AFFINE: return a->alpha * x + a->beta;
    case ACT_LEAKY: return x >= 0 ? x : a->alpha * x;
    case ACT_THRESH: return x > a->alpha ? x : 0;
    case ACT_STANH: return a->alpha * tanh(a->beta * x);
    case ACT_HSIG: return fmax(0, fmin(1, a->alpha * x + a->beta));
    case ACT_ELU: return x >= 0 ? x : a->alpha * (exp(x) - 1);
    case ACT_SOFTSIGN: return x / (1 + fabs(x));
    default: return log1p(exp(x));
    }
}

/* Inputs: X, W, R, B, sequence_lens, initial_h (LSTM: initial_c, P). */
static kiln_status rnn_shapes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, rnn_plan *p) {
    const kiln_tensor *x = in[0], *w = in[1], *r = in[2], *b = NN_IN(n, in, 3), *sl = NN_IN(n, in, 4);
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X, W and R must be 3-D");
    p->seq = x->dims[p->batch_major ? 1 : 0];
    p->batch = x->dims[p->batch_major ? 0 : 1];
    p->in = x->dims[2];
    int64_t gh = p->gates * p->hid;
    if (w->dims[0] != p->ndir || w->dims[1] != gh || w->dims[2] != p->in || r->dims[0] != p->ndir ||
        r->dims[1] != gh || r->dims[2] != p->hid)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "W must be [%d, %lld, %lld] and R [%d, %lld, %lld]", p->ndir,
                            (long long)gh, (long long)p->in, p->ndir, (long long)gh, (long long)p->hid);
    if (b && (b->rank != 2 || b->dims[0] != p->ndir || b->dims[1] != 2 * gh))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "B must be [%d, %lld]", p->ndir, (long long)(2 * gh));
    if (sl && (sl->rank != 1 || sl->dims[0] != p->batch || !kiln_dtype_is_int(sl->dtype)))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "sequence_lens must be [%lld] integers", (long long)p->batch);
    int64_t sd[3] = {p->batch_major ? p->batch : p->ndir, p->batch_major ? p->ndir : p->batch, p->hid};
    for (int i = 5; i <= (p->cell == CELL_LSTM ? 6 : 5); i++) {
        const kiln_tensor *st = NN_IN(n, in, i);
        if (st && (st->rank != 3 || st->dims[0] != sd[0] || st->dims[1] != sd[1] || st->dims[2] != sd[2]))
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "initial state %d has the wrong shape", i);
    }
    const kiln_tensor *pp = p->cell == CELL_LSTM ? NN_IN(n, in, 7) : NULL;
    if (pp && (pp->rank != 2 || pp->dims[0] != p->ndir || pp->dims[1] != 3 * p->hid))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "P must be [%d, %lld]", p->ndir, (long long)(3 * p->hid));
    for (int i = 1; i < n->n_inputs; i++)
        if (i != 4 && NN_IN(n, in, i) && in[i]->dtype != x->dtype)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input %d must have X's type", i);
    return KILN_OK;
}

static kiln_status rnn_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int cell,
                             rnn_plan *p) {
    memset(p, 0, sizeof *p);
    p->cell = cell;
    p->gates = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 3 : 4;
    p->nact = cell == CELL_RNN ? 1 : cell == CELL_GRU ? 2 : 3;
    kiln_status s = nn_attr_choice(ctx, n, "direction", "forward", k_directions, &p->direction);
    if (s) return s;
    p->ndir = p->direction == 2 ? 2 : 1;
    p->hid = gir_attr_int(n, "hidden_size", 0);
    if (p->hid < 1 || p->hid > ((int64_t)1 << 24))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "hidden_size must be positive");
    p->batch_major = gir_attr_int(n, "layout", 0) != 0;
    p->lbr = gir_attr_int(n, "linear_before_reset", 0) != 0;
    p->input_forget = gir_attr_int(n, "input_forget", 0) != 0;
    p->has_clip = gir_attr_find(n, "clip") != NULL;
    p->clip = gir_attr_float(n, "clip", 0);
    s = rnn_acts(ctx, n, p);
    if (!s) s = rnn_shapes(ctx, n, in, p);
    return s;
}

static kiln_status infer_rnn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out,
                             int cell) {
    rnn_plan p;
    kiln_status s = rnn_setup(ctx, n, in, cell, &p);
    if (s) return s;
    kiln_dtype dt = in[0]->dtype;
    int64_t ndir = p.ndir;
    if (p.batch_major) kiln_tensor_init(&out[0], dt, 4, (int64_t[]){p.batch, p.seq, ndir, p.hid});
    else kiln_tensor_init(&out[0], dt, 4, (int64_t[]){p.seq, ndir, p.batch, p.hid});
    for (int k = 1; k < n->n_outputs; k++) {
        if (p.batch_major) kiln_tensor_init(&out[k], dt, 3, (int64_t[]){p.batch, ndir, p.hid});
        else kiln_tensor_init(&out[k], dt, 3, (int64_t[]){ndir, p.batch, p.hid});
    }
    return KILN_OK;
}

typedef struct rnn_data {
    const double *w, *r, *b, *p; /* b, p may be NULL */
    double *gx, *gh, *h, *c, *tmp; /* per step: input and recurrent gate terms, state */
} rnn_data;

/* gx[g*H + j] = W x + Wb, gh[g*H + j] = R h + Rb for direction d. */
static void rnn_terms(const rnn_plan *p, const rnn_data *v, int d, const double *x, const double *h) {
    int64_t gh = p->gates * p->hid;
    for (int64_t q = 0; q < gh; q++) {
        const double *wr = v->w + (d * gh + q) * p->in, *rr = v->r + (d * gh + q) * p->hid;
        double sx = v->b ? v->b[d * 2 * gh + q] : 0, sh = v->b ? v->b[d * 2 * gh + gh + q] : 0;
        for (int64_t k = 0; k < p->in; k++) sx += wr[k] * x[k];
        for (int64_t k = 0; k < p->hid; k++) sh += rr[k] * h[k];
        v->gx[q] = sx;
        v->gh[q] = sh;
    }
}

/* One time step of direction d: updates v->h (and v->c). */
static void rnn_step(const rnn_plan *p, rnn_data *v, int d, const double *x) {
    const rnn_act *f = &p->act[d][0], *g = &p->act[d][1], *hh = &p->act[d][2];
    int64_t H = p->hid;
    rnn_terms(p, v, d, x, v->h);
    if (p->cell == CELL_RNN) {
        for (int64_t j = 0; j < H; j++) v->h[j] = act_apply(p, f, v->gx[j] + v->gh[j]);
        return;
    }
    if (p->cell == CELL_GRU) {
        const double *rh = v->r + (d * 3 * H + 2 * H) * H;
        for (int64_t j = 0; j < H; j++) v->tmp[j] = act_apply(p, f, v->gx[H + j] + v->gh[H + j]) * v->h[j];
        for (int64_t j = 0; j < H; j++) {
            double z = act_apply(p, f, v->gx[j] + v->gh[j]), r = act_apply(p, f, v->gx[H + j] + v->gh[H + j]);
            double rec;
            if (p->lbr) {
                rec = r * v->gh[2 * H + j];
            } else {
                rec = v->b ? v->b[d * 6 * H + 5 * H + j] : 0;
                for (int64_t k = 0; k < H; k++) rec += rh[j * H + k] * v->tmp[k];
            }
            double cand = act_apply(p, g, v->gx[2 * H + j] + rec);
            v->tmp[H + j] = (1 - z) * cand + z * v->h[j];
        }
        memcpy(v->h, v->tmp + H, sizeof(double) * (size_t)H);
        return;
    }
    const double *pp = v->p ? v->p + d * 3 * H : NULL;
    for (int64_t j = 0; j < H; j++) {
        double c = v->c[j];
        double i = act_apply(p, f, v->gx[j] + v->gh[j] + (pp ? pp[j] * c : 0));
        double fg = p->input_forget
                        ? 1 - i
                        : act_apply(p, f, v->gx[2 * H + j] + v->gh[2 * H + j] + (pp ? pp[2 * H + j] * c : 0));
        double cand = act_apply(p, g, v->gx[3 * H + j] + v->gh[3 * H + j]);
        double cn = fg * c + i * cand;
        double o = act_apply(p, f, v->gx[H + j] + v->gh[H + j] + (pp ? pp[H + j] * cn : 0));
        v->c[j] = cn;
        v->tmp[j] = o * act_apply(p, hh, cn);
    }
    memcpy(v->h, v->tmp, sizeof(double) * (size_t)H);
}

/* Offsets of (t, d, b) in Y and of (d, b) in Y_h / Y_c / the initial states. */
static int64_t y_off(const rnn_plan *p, int64_t t, int d, int64_t b) {
    return (p->batch_major ? (b * p->seq + t) * p->ndir + d : (t * p->ndir + d) * p->batch + b) * p->hid;
}
static int64_t h_off(const rnn_plan *p, int d, int64_t b) {
    return (p->batch_major ? b * p->ndir + d : d * p->batch + b) * p->hid;
}

/* Runs direction d over batch entry b, writing Y and the final states. */
static kiln_status rnn_sequence(kiln_ctx *ctx, const gir_node *n, const rnn_plan *p, const kiln_tensor *const *in,
                                rnn_data *v, const double *xv, int d, int64_t b, kiln_tensor *out) {
    const kiln_tensor *sl = NN_IN(n, in, 4), *h0 = NN_IN(n, in, 5);
    const kiln_tensor *c0 = p->cell == CELL_LSTM ? NN_IN(n, in, 6) : NULL;
    int64_t len = sl ? kiln_tensor_i64(sl, b) : p->seq;
    if (len < 0 || len > p->seq)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "sequence length %lld is outside [0, %lld]", (long long)len,
                            (long long)p->seq);
    bool rev = p->direction == 1 || d == 1;
    for (int64_t j = 0; j < p->hid; j++) {
        v->h[j] = h0 ? kiln_tensor_f64(h0, h_off(p, d, b) + j) : 0;
        v->c[j] = c0 ? kiln_tensor_f64(c0, h_off(p, d, b) + j) : 0;
    }
    for (int64_t s = 0; s < len; s++) {
        int64_t t = rev ? len - 1 - s : s;
        rnn_step(p, v, d, xv + (p->batch_major ? b * p->seq + t : t * p->batch + b) * p->in);
        for (int64_t j = 0; j < p->hid; j++) nn_store_round(&out[0], y_off(p, t, d, b) + j, v->h[j]);
    }
    for (int64_t j = 0; j < p->hid; j++) {
        if (n->n_outputs > 1) nn_store_round(&out[1], h_off(p, d, b) + j, v->h[j]);
        if (n->n_outputs > 2) nn_store_round(&out[2], h_off(p, d, b) + j, v->c[j]);
    }
    return KILN_OK;
}

static kiln_status ref_rnn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out,
                           int cell) {
    rnn_plan p;
    rnn_data v = {0};
    const double *xv = NULL;
    double *work = NULL;
    kiln_status s = rnn_setup(ctx, n, in, cell, &p);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_read_f64(ctx, n, in[1], &v.w);
    if (!s) s = nn_read_f64(ctx, n, in[2], &v.r);
    if (!s) s = nn_read_f64(ctx, n, NN_IN(n, in, 3), &v.b);
    if (!s) s = nn_read_f64(ctx, n, cell == CELL_LSTM ? NN_IN(n, in, 7) : NULL, &v.p);
    if (!s) s = nn_alloc_f64(ctx, n, 2 * p.gates * p.hid + 4 * p.hid, &work);
    if (!s) {
        v.gx = work, v.gh = work + p.gates * p.hid, v.h = v.gh + p.gates * p.hid;
        v.c = v.h + p.hid, v.tmp = v.c + p.hid;
        for (int d = 0; d < p.ndir && !s; d++)
            for (int64_t b = 0; b < p.batch && !s; b++) s = rnn_sequence(ctx, n, &p, in, &v, xv, d, b, out);
    }
    kiln_free(work);
    nn_release_f64(in[0], xv);
    nn_release_f64(in[1], v.w);
    nn_release_f64(in[2], v.r);
    nn_release_f64(NN_IN(n, in, 3), v.b);
    nn_release_f64(cell == CELL_LSTM ? NN_IN(n, in, 7) : NULL, v.p);
    return s;
}

#define RNN_ENTRY(fn, cell)                                                                        \
    kiln_status nn_infer_##fn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,     \
                              kiln_tensor *out) {                                                 \
        return infer_rnn(ctx, n, in, out, cell);                                                  \
    }                                                                                             \
    kiln_status nn_ref_##fn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,       \
                            kiln_tensor *out) {                                                   \
        return ref_rnn(ctx, n, in, out, cell);                                                    \
    }

RNN_ENTRY(rnn, CELL_RNN)
RNN_ENTRY(gru, CELL_GRU)
RNN_ENTRY(lstm, CELL_LSTM)
