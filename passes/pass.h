/*
** pass.h — graph passes: a pass is a name and a function from graph to
** graph; the pipeline is a flat list of them, printable after each step
** (`kiln inspect MODEL --after PASS`).
**
** Every pass keeps the graph valid: nodes in topological order, each value
** produced once, graph outputs keep their names. A pass that finds a graph
** violating its assumptions fails with KILN_ERR_INVALID naming itself and
** the node; it never rewrites what it does not understand. The pipeline
** runs the verifier (gir_verify) after each pass when asked to (always in
** debug builds), so a pass that breaks the graph is caught where it did.
*/
#ifndef KILN_PASS_H
#define KILN_PASS_H

#include <stdio.h>

#include "ir/gir.h"

typedef struct gir_pass {
    const char *name;
    kiln_status (*run)(kiln_ctx *, gir_graph *);
    int level;         /* the lowest -O level that runs it: 0 = lowering needs it */
    const char *about; /* one line for `kiln inspect --passes` */
} gir_pass;

/* ---- the pipeline (passes/pipeline.c) ---- */

#define PASS_MAX_DISABLED 16

typedef struct pass_options {
    int opt_level; /* 0: only what lowering needs; 2 (default): every pass */
    int n_disabled;
    const char *disabled[PASS_MAX_DISABLED]; /* pass names skipped (debugging) */
    const char *stop_after; /* NULL: run every pass; else stop after this one */
    bool verify;            /* gir_verify after each pass (forced on in debug builds) */
} pass_options;

void pass_options_default(pass_options *o);
/* The passes in pipeline order. */
int pass_count(void);
const gir_pass *pass_at(int i);
/* NULL when no pass has that name. */
const gir_pass *pass_find(const char *name);
/* Adds a name to o->disabled; KILN_ERR_INVALID for an unknown pass name or
** a full list. */
kiln_status pass_disable(kiln_ctx *ctx, pass_options *o, const char *name);

/* Runs the passes of the pipeline that o's level selects and o does not
** disable, in order, stopping after o->stop_after (an unknown name is an
** error). A failing pass's error is prefixed with "pass NAME: ". */
kiln_status pass_run_pipeline(kiln_ctx *ctx, gir_graph *g, const pass_options *o);

/* ---- graph rewriting helpers (passes/rewrite.c) ----
** Small, safe edits that the passes share. They keep nodes' ids equal to
** their positions and never leave a dangling use. */

/* How many places read v: node inputs, graph outputs, and (counted once
** per node) subgraphs that read it from an enclosing scope. */
int pass_count_uses(const gir_graph *g, const gir_value *v);
/* The nodes that read v directly as an input (up to cap of them, in node
** order); the count of all of them. */
int pass_consumers(const gir_graph *g, const gir_value *v, gir_node **out, int cap);
/* Whether v may be replaced: not a graph input, not a graph output, and no
** subgraph reads it by name. */
bool pass_value_replaceable(const gir_graph *g, const gir_value *v);
/* Makes every node input that reads `from` read `to` instead. */
void pass_replace_uses(gir_graph *g, const gir_value *from, gir_value *to);
/* Removes node n (whose outputs must be unused, or replaced first). */
void pass_remove_node(gir_graph *g, gir_node *n);
/* Removes n, whose output out_slot computes the same as its input in_slot:
** readers of the output read the input. When the output is a graph output,
** the input's producer writes the graph output instead (the output keeps
** its name); when that is impossible (the input is a graph input or a
** constant, or is itself a graph output or read by a subgraph) nothing
** changes and false is returned. */
bool pass_bypass_node(gir_graph *g, gir_node *n, int in_slot, int out_slot);
/* A new constant value holding a copy of t (data copied into the graph's
** arena); name may be NULL for an automatic one. NULL when out of memory. */
gir_value *pass_new_constant(gir_graph *g, const char *name, const kiln_tensor *t);
/* A new node of op_type with the given inputs and new output values
** (typed later by shape inference), inserted right before node `before`
** (NULL: appended). Its domain is "" and its opset the graph's default;
** it is bound to its op by the next shape inference (or gir_bind_op). Its
** n_attrs attribute slots must all be set with pass_set_attr_*. */
gir_node *pass_insert_node(gir_graph *g, gir_node *before, const char *op_type, const char *name,
                           gir_value *const *inputs, int n_in, int n_out, int n_attrs);
/* Sets attribute slot k (0 <= k < n->n_attrs) of a node from pass_insert_node. */
bool pass_set_attr_int(gir_graph *g, gir_node *n, int k, const char *name, int64_t v);
bool pass_set_attr_float(gir_graph *g, gir_node *n, int k, const char *name, double v);
bool pass_set_attr_ints(gir_graph *g, gir_node *n, int k, const char *name, const int64_t *v, int count);
/* Whether a and b are the same dtype and the same static shape (every
** extent known and equal). */
bool pass_same_static_type(const gir_type *a, const gir_type *b);
/* Gives node `to` the output values of node `from` (slot by slot; the
** values keep their names and types, to's own outputs are orphaned) and
** removes `from`. `to` must come before every reader of those values. */
void pass_take_outputs(gir_graph *g, gir_node *to, gir_node *from);
/* Sets attribute `name` of any node to an int or a float, replacing an
** attribute of that name or adding one. False when out of memory. */
bool pass_put_attr_int(gir_graph *g, gir_node *n, const char *name, int64_t v);
bool pass_put_attr_float(gir_graph *g, gir_node *n, const char *name, double v);
/* Sets input `slot` of n, growing its input list (omitted inputs between
** stay NULL) when the slot is past its end. False when out of memory. */
bool pass_put_input(gir_graph *g, gir_node *n, int slot, gir_value *v);

/* ---- the passes, in pipeline order ---- */

/* Static shape and type inference (passes/infer_shapes.c): binds every node
** to its op, then walks the nodes in order and writes each output's dtype
** and static shape where the inputs' shapes are static. A node whose inputs
** are not all static, or whose op needs a value known only at run time,
** keeps unknown outputs. A result that contradicts a declared type (a
** value_info or graph output) is an error naming the value; declared
** symbolic or unknown dims are replaced. Values that small nodes compute
** from constants are tracked too, so shapes made by Constant, Concat and the
** like are known. The graph must be in topological order. */
kiln_status pass_infer_shapes(kiln_ctx *ctx, gir_graph *g);

/* Constant folding (passes/fold_constants.c): a node whose inputs are all
** constants — or whose op reads only their shapes (kiln_op_def's
** shape_only_inputs) when those shapes are static — runs through the
** reference interpreter at compile time; its outputs become constants and the
** node goes. Shape inference runs between rounds until nothing changes, so
** the Shape→Gather→Concat→Reshape chains of exported models fold away.
** Bounded: a node whose outputs would exceed KILN_FOLD_MAX_BYTES stays (a
** huge constant is not materialized), unless it has no inputs (Constant). */
#define KILN_FOLD_MAX_BYTES ((size_t)64 << 20)
kiln_status pass_fold_constants(kiln_ctx *ctx, gir_graph *g);

/* Identities (passes/simplify.c): Identity, inference-mode Dropout (its
** mask unread), x*1, 1*x, x/1, x+0, 0+x, x-0, Cast/CastLike to the same
** type, Reshape/Expand/Squeeze/Unsqueeze/Flatten to the same shape,
** Transpose by the identity permutation go, when the result's type and
** static shape equal the operand's (a broadcasting constant keeps the
** node). Readers read the operand; a graph output keeps its name (its
** operand's producer writes it), and stays when that is impossible. */
kiln_status pass_simplify(kiln_ctx *ctx, gir_graph *g);

/* Chains (passes/simplify_chains.c): Reshape∘Reshape (and Flatten,
** Squeeze, Unsqueeze between static shapes) become one Reshape with a
** constant shape, Transpose∘Transpose one Transpose by the composed
** permutation, and a pair that gives back its operand (same shape,
** identity permutation, Squeeze∘Unsqueeze of the same axes, also when
** shapes are known only by rank) nothing. Only where the intermediate
** value has no other reader. */
kiln_status pass_simplify_chains(kiln_ctx *ctx, gir_graph *g);

/* BatchNormalization (inference, constant parameters of one value per
** channel) after a Conv (any rank and group), a Gemm or a 2-D MatMul with
** constant weights whose output nothing else reads: folded into new
** weights and bias, computed in double (passes/fold_batch_norm.c). A 2-D
** MatMul becomes a Gemm with the bias; a MatMul of higher rank stays
** (BatchNormalization's channel axis 1 is not its column axis). */
kiln_status pass_fold_batch_norm(kiln_ctx *ctx, gir_graph *g);

/* MatMul/Gemm operands (passes/fold_matmul.c): a Transpose of the two
** axes feeding Gemm becomes its transA/transB; a Transpose of a constant
** read by MatMul/Gemm is done at compile time (a new constant); a Mul/Div
** by a one-element constant on a MatMul/Gemm result or operand moves into
** a copy of the constant operand (or Gemm's alpha and beta) when the
** scaled value has no other reader. A scale on an operand that an
** elementwise node computes stays (it fuses there; patterns such as GELU
** end in one). Float types only. */
kiln_status pass_fold_matmul(kiln_ctx *ctx, gir_graph *g);

/* Common subexpressions (passes/cse.c): nodes with the same op, domain,
** opset, attributes (by value) and inputs, and constants with equal type,
** shape and bytes, are computed once; the first is kept. Never merged:
** nondeterministic ops, unbound nodes, nodes with subgraph attributes,
** constants that are graph inputs or outputs or read by a subgraph. Graph
** outputs keep their names. */
kiln_status pass_eliminate_common(kiln_ctx *ctx, gir_graph *g);

/* Dead code (passes/dce.c): nodes none of whose outputs reach a graph
** output (directly, or through a live node's subgraph reading it by name)
** go; values nothing names any more (unread constants, results of removed
** nodes) leave the value list and ids are renumbered. Kept values with
** automatic names ("%N") are renamed after their new ids so that later
** automatic names stay unique. */
kiln_status pass_eliminate_dead(kiln_ctx *ctx, gir_graph *g);

/* Pattern fusion into composite ops (passes/fuse_*.c): the decomposed
** forms that exporters emit become one node of the composite op, whose
** compute definition and schedule are better than the pieces'. */
kiln_status pass_fuse_layer_norm(kiln_ctx *ctx, gir_graph *g); /* ReduceMean/Sub/Pow/Sqrt/Div → LayerNormalization */
kiln_status pass_fuse_gelu(kiln_ctx *ctx, gir_graph *g);       /* the Erf and the Tanh forms → Gelu */
kiln_status pass_fuse_softmax(kiln_ctx *ctx, gir_graph *g);    /* exp(x - max) / sum → Softmax (scale and mask: kernel fusion) */
kiln_status pass_fuse_attention(kiln_ctx *ctx, gir_graph *g);  /* softmax(QKᵀ·s + mask)·V → Attention */

/* Layout selection (passes/choose_layout.c): regions of Conv nodes (static
** 4-D f32, constant weights) joined by elementwise ops (per-channel or
** scalar constants, two region tensors) move to the blocked channel layout
** N C/c H W c (ai.kiln ConvBlocked, weights blocked at compile time), with
** LayoutToBlocked / LayoutFromBlocked at the regions' edges; conversions
** that meet cancel. A Conv moves only where its padded channels cost little
** and its region holds a depthwise Conv or several Convs.
** The block c is a knob: set_block (>= 0; -1 returns to the default), else
** the environment's KILN_LAYOUT_BLOCK, else the host's vector width in f32
** lanes; 0 keeps every Conv in NCHW. */
kiln_status pass_choose_layout(kiln_ctx *ctx, gir_graph *g);
void pass_choose_layout_set_block(int64_t block);
int64_t pass_choose_layout_block(void);

/* Winograd F(2x2, 3x3) (passes/winograd.c): a blocked 3x3 stride-1
** one-group ConvBlocked over a large enough image becomes WinogradInput,
** a batched MatMul with weights transformed here, and WinogradOutput
** (ir/ops/ops_winograd.c). */
kiln_status pass_winograd(kiln_ctx *ctx, gir_graph *g);

/* Kernel fusion (passes/fuse_kernels.c): an anchor (Conv, MatMul/Gemm,
** pooling, reduction) with its elementwise/broadcast epilogue, injective
** prologues where legal, and chains of elementwise ops become one node of
** kiln's FusedKernel op (domain "ai.kiln"), whose compute definition is its
** members' definitions composed. Never duplicates work: a member's result
** read outside the group stays an output of the group. */
kiln_status pass_fuse_kernels(kiln_ctx *ctx, gir_graph *g);

#endif
