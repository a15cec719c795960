"""GPT-2 (Hugging Face GPT2LMHeadModel layout, use_cache off) as
torch.onnx.export writes it.

Input input_ids (int64, [batch, seq]); output logits [batch, seq, vocab].
What the graph holds, as exported:
- input_ids.view(-1, seq) and position ids from Range(0, seq, 1) ->
  Unsqueeze -> Expand to the ids' shape, Gather of wte / wpe;
- per block: LayerNorm (decomposed before opset 17), the fused qkv
  projection as HF's Conv1D (Reshape to 2-d with a Shape-computed shape,
  Gemm with bias, Reshape back), Split of qkv along the last axis, heads
  split by Reshape + Transpose, MatMul, Div by sqrt(head_dim), the causal
  mask sliced out of a constant lower-triangular bool buffer
  [1, 1, n_pos, n_pos] (start and end computed from Shape) and applied with
  Where(mask, scores, float min), Softmax, MatMul, merge heads, Conv1D
  projection, residual Add; MLP with GELU in the tanh form
  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)));
- ln_f, then the LM head tied to wte: MatMul with its transpose.

size "full": GPT-2 small: 12 layers, 768 wide, 12 heads, vocab 50257,
n_positions 1024, seq 128, batch 1 (about 11 GMAC with the LM head).
size "small": 2 layers, 128 wide, 4 heads, vocab 1000, n_positions 128,
seq 32, batch 2.
Override causal="trilu" (opset 14+) builds the mask in the graph instead:
ConstantOfShape of [q_len, k_len] -> Trilu(upper=0) -> Where.
"""

import math

import numpy as np

try:
    from . import common
except ImportError:  # run as a plain script from models/
    import common

CONFIGS = {
    "full": dict(layers=12, hidden=768, heads=12, vocab=50257, n_pos=1024, seq=128, batch=1,
                 causal="buffer"),
    "small": dict(layers=2, hidden=128, heads=4, vocab=1000, n_pos=128, seq=32, batch=2,
                  causal="buffer"),
}
DEFAULT_OPSET = 14
EPS = 1e-5


def _conv1d(g, x, n_in, n_out):
    """HF Conv1D: addmm(bias, x.view(-1, x.size(-1)), weight).view(...)."""
    w = g.weight(g.param_name("weight"), common.linear_weight(g.rng, n_out, n_in).T)
    b = g.weight(g.param_name("bias"), common.small_bias(g.rng, n_out))
    d0, d1 = g.dim(x, 0), g.dim(x, 1)
    flat = g.op("Reshape", [x, g.shape_of([[-1], g.dim(x, 2)])])
    y = g.op("Gemm", [flat, w, b], alpha=1.0, beta=1.0)
    return g.op("Reshape", [y, g.shape_of([d0, d1, [n_out]])])


def _split_heads(g, x, heads, d, perm):
    shape = g.shape_of([g.dim(x, 0), g.dim(x, 1), [heads], [d]])
    return g.op("Transpose", [g.op("Reshape", [x, shape])], perm=perm)


def _causal_mask(g, n_pos, q, k):
    """self.bias[:, :, k_len - q_len : k_len, :k_len] (q, k: [b, h, s, d])."""
    tril = np.tril(np.ones((n_pos, n_pos), dtype=bool))[None, None]
    buf = g.weight(g.param_name("bias"), tril)
    q_len, k_len = g.dim(q, 2), g.dim(k, 3)
    start = g.unsqueeze(g.op("Sub", [k_len, q_len]), [0])
    end = g.unsqueeze(k_len, [0])
    one = g.const([1], np.int64)
    rows = g.op("Slice", [buf, start, end, g.const([2], np.int64), one])
    return g.op("Slice", [rows, g.const([0], np.int64), end, g.const([3], np.int64), one])


def _causal_mask_trilu(g, q, k):
    """torch.ones(q_len, k_len, dtype=torch.bool).tril() in the graph:
    ConstantOfShape -> Trilu (opset 14 and later)."""
    shape = g.shape_of([g.dim(q, 2), g.dim(k, 3)])
    ones = g.op("ConstantOfShape", [shape],
                value=common.numpy_helper.from_array(np.array([True])))
    return g.op("Trilu", [ones], upper=0)


def _attention(g, cfg, x):
    h, heads = cfg["hidden"], cfg["heads"]
    d = h // heads
    with g.scope("c_attn"):
        qkv = _conv1d(g, x, h, 3 * h)
    q, k, v = g.op("Split", [qkv, g.const([h, h, h], np.int64)], n_out=3, axis=2)
    q = _split_heads(g, q, heads, d, [0, 2, 1, 3])
    k = _split_heads(g, k, heads, d, [0, 2, 3, 1])
    v = _split_heads(g, v, heads, d, [0, 2, 1, 3])
    s = g.op("MatMul", [q, k])
    s = g.op("Div", [s, g.const(math.sqrt(d))])
    if cfg["causal"] == "trilu":
        mask = _causal_mask_trilu(g, q, k)
    else:
        mask = _causal_mask(g, cfg["n_pos"], q, k)
    s = g.op("Where", [mask, s, g.const(float(np.finfo(np.float32).min))])
    p = g.op("Softmax", [s], axis=-1)
    c = g.op("MatMul", [p, v])
    c = g.op("Transpose", [c], perm=[0, 2, 1, 3])
    c = g.op("Reshape", [c, g.shape_of([g.dim(c, 0), g.dim(c, 1), [h]])])
    with g.scope("c_proj"):
        return _conv1d(g, c, h, h)


def _gelu_tanh(g, x):
    """HF gelu_new, as exported."""
    half = g.op("Mul", [g.const(0.5), x])
    cube = g.op("Pow", [x, g.const(3.0)])
    inner = g.op("Add", [x, g.op("Mul", [g.const(0.044715), cube])])
    t = g.op("Tanh", [g.op("Mul", [g.const(math.sqrt(2.0 / math.pi)), inner])])
    return g.op("Mul", [half, g.op("Add", [g.const(1.0), t])])


def _block(g, cfg, x):
    h = cfg["hidden"]
    with g.scope("ln_1"):
        a = g.layer_norm(x, h, EPS)
    with g.scope("attn"):
        a = _attention(g, cfg, a)
    x = g.op("Add", [a, x])
    with g.scope("ln_2"):
        m = g.layer_norm(x, h, EPS)
    with g.scope("mlp"):
        with g.scope("c_fc"):
            m = _conv1d(g, m, h, 4 * h)
        with g.scope("act"):
            m = _gelu_tanh(g, m)
        with g.scope("c_proj"):
            m = _conv1d(g, m, 4 * h, h)
    return g.op("Add", [x, m])


def build(size="small", opset=DEFAULT_OPSET, seed=0, dynamic=False, **overrides):
    """dynamic: batch and sequence dims are symbolic, as with dynamic_axes."""
    cfg = dict(CONFIGS[size], **overrides)
    if cfg["causal"] not in ("buffer", "trilu"):
        raise ValueError("gpt2: causal must be buffer or trilu, not %r" % cfg["causal"])
    if cfg["causal"] == "trilu" and opset < 14:
        raise ValueError("gpt2: causal=trilu needs opset 14 or later (Trilu)")
    g = common.Graph("gpt2", opset, seed)
    b, s, h = cfg["batch"], cfg["seq"], cfg["hidden"]
    if dynamic:
        b, s = "batch_size", "sequence_length"
    input_ids = g.input("input_ids", common.INT64, [b, s])
    wte_table = (g.rng.standard_normal((cfg["vocab"], h), dtype=np.float32) * 0.5).astype(np.float32)
    with g.scope("transformer"):
        seq_len = g.dim(input_ids, 1)
        ids = g.op("Reshape", [input_ids, g.shape_of([[-1], seq_len])])
        pos = g.op("Range", [g.const(0, np.int64), seq_len, g.const(1, np.int64)])
        pos = g.unsqueeze(pos, [0])
        pos = g.op("Expand", [pos, g.op("Shape", [ids])])
        with g.scope("wte"):
            wte = g.weight(g.param_name("weight"), wte_table)
            x = g.op("Gather", [wte, ids])
        with g.scope("wpe"):
            wpe_table = (g.rng.standard_normal((cfg["n_pos"], h), dtype=np.float32) * 0.1)
            x_pos = g.op("Gather", [g.weight(g.param_name("weight"), wpe_table.astype(np.float32)), pos])
        x = g.op("Add", [x, x_pos])
        for i in range(cfg["layers"]):
            with g.scope("h.%d" % i):
                x = _block(g, cfg, x)
        with g.scope("ln_f"):
            x = g.layer_norm(x, h, EPS)
        x = g.op("Reshape", [x, g.shape_of([[-1], seq_len, [h]])])
    with g.scope("lm_head"):
        # Tied to wte: the exporter stores the transposed copy it multiplies
        # by (scaled by 1/sqrt(hidden) here so logits stay moderate).
        logits = g.op("MatMul", [x, g.weight(g.anon_name("MatMul"), wte_table.T / math.sqrt(h))])
    g.output(logits, "logits", common.FLOAT, [b, s, cfg["vocab"]])
    return g.model()


def sample_inputs(model, size="small", seed=1, **overrides):
    """Token ids drawn from the whole vocabulary."""
    cfg = dict(CONFIGS[size], **overrides)
    rng = np.random.default_rng(seed)
    return [rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["seq"]), dtype=np.int64)]
