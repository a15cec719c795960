"""BERT (Hugging Face BertModel layout) as torch.onnx.export writes it.

Inputs input_ids, attention_mask, token_type_ids (int64, [batch, seq]);
outputs last_hidden_state [batch, seq, hidden] and pooler_output
[batch, hidden]. What the graph holds, as exported:
- embeddings: Gather of word / token type / position tables, the position
  ids sliced from a [1, max_pos] buffer with the length taken from
  Shape(input_ids), then LayerNorm;
- the extended attention mask built in the graph: Unsqueeze, Unsqueeze,
  Cast to float, Sub from 1, Mul by -10000;
- per layer: MatMul + Add linear layers (transposed weights), heads split
  by Reshape to a shape computed with Shape -> Gather -> Unsqueeze -> Concat,
  Transpose, MatMul, Div by sqrt(head_dim), Add mask, Softmax, MatMul,
  Transpose, Reshape back; GELU in its Erf form; LayerNorm decomposed into
  ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul / Add before
  opset 17 and one LayerNormalization node from opset 17;
- pooler: Gather of token 0, Gemm, Tanh.

size "full": BERT-base: 12 layers, hidden 768, 12 heads, FFN 3072, vocab
30522, seq 128, batch 1 (about 11 GMAC).
size "small": 2 layers, hidden 128, 2 heads, FFN 512, vocab 1000, seq 64,
batch 2 (the second row padded).
"""

import math

import numpy as np

try:
    from . import common
except ImportError:  # run as a plain script from models/
    import common

CONFIGS = {
    "full": dict(layers=12, hidden=768, heads=12, ffn=3072, vocab=30522, max_pos=512,
                 type_vocab=2, seq=128, batch=1),
    "small": dict(layers=2, hidden=128, heads=2, ffn=512, vocab=1000, max_pos=128,
                  type_vocab=2, seq=64, batch=2),
}
DEFAULT_OPSET = 14
EPS = 1e-12


def _embedding(g, ids, rows, hidden):
    table = (g.rng.standard_normal((rows, hidden), dtype=np.float32) * 0.5).astype(np.float32)
    return g.op("Gather", [g.weight(g.param_name("weight"), table), ids])


def _embeddings(g, cfg, input_ids, token_type_ids):
    h = cfg["hidden"]
    with g.scope("embeddings"):
        seq_len = g.dim(input_ids, 1)
        pos_buf = g.weight(g.param_name("position_ids"),
                           np.arange(cfg["max_pos"], dtype=np.int64)[None, :])
        pos_ids = g.op("Slice", [pos_buf, g.const([0], np.int64), g.unsqueeze(seq_len, [0]),
                                 g.const([1], np.int64), g.const([1], np.int64)])
        with g.scope("word_embeddings"):
            words = _embedding(g, input_ids, cfg["vocab"], h)
        with g.scope("token_type_embeddings"):
            types = _embedding(g, token_type_ids, cfg["type_vocab"], h)
        x = g.op("Add", [words, types])
        with g.scope("position_embeddings"):
            pos = _embedding(g, pos_ids, cfg["max_pos"], h)
        x = g.op("Add", [x, pos])
        with g.scope("LayerNorm"):
            return g.layer_norm(x, h, EPS)


def _extended_mask(g, attention_mask):
    """attention_mask[:, None, None, :] turned into an additive mask."""
    m = g.unsqueeze(attention_mask, [1])
    m = g.unsqueeze(m, [2])
    m = g.op("Cast", [m], to=common.FLOAT)
    m = g.op("Sub", [g.const(1.0), m])
    return g.op("Mul", [m, g.const(-10000.0)])


def _split_heads(g, x, heads, head_dim, perm):
    """x.view(x.size()[:-1] + (heads, head_dim)).permute(...)."""
    shape = g.shape_of([g.dim(x, 0), g.dim(x, 1), [heads], [head_dim]])
    return g.op("Transpose", [g.op("Reshape", [x, shape])], perm=perm)


def _self_attention(g, cfg, x, mask):
    h, heads = cfg["hidden"], cfg["heads"]
    d = h // heads
    with g.scope("self"):
        with g.scope("query"):
            q = g.linear(x, h, h)
        with g.scope("key"):
            k = g.linear(x, h, h)
        with g.scope("value"):
            v = g.linear(x, h, h)
        q = _split_heads(g, q, heads, d, [0, 2, 1, 3])
        # permute(0, 2, 1, 3) then transpose(-1, -2): the exporter merges
        # the two into one Transpose.
        k = _split_heads(g, k, heads, d, [0, 2, 3, 1])
        v = _split_heads(g, v, heads, d, [0, 2, 1, 3])
        s = g.op("MatMul", [q, k])
        s = g.op("Div", [s, g.const(math.sqrt(d))])
        s = g.op("Add", [s, mask])
        p = g.op("Softmax", [s], axis=-1)
        c = g.op("MatMul", [p, v])
        c = g.op("Transpose", [c], perm=[0, 2, 1, 3])
        shape = g.shape_of([g.dim(c, 0), g.dim(c, 1), [h]])
        return g.op("Reshape", [c, shape])


def _gelu_erf(g, x):
    """F.gelu: x * 0.5 * (1 + erf(x / sqrt(2))), as exported before opset 20."""
    e = g.op("Erf", [g.op("Div", [x, g.const(1.4142135381698608)])])
    y = g.op("Mul", [x, g.op("Add", [e, g.const(1.0)])])
    return g.op("Mul", [y, g.const(0.5)])


def _layer(g, cfg, x, mask):
    h = cfg["hidden"]
    with g.scope("attention"):
        a = _self_attention(g, cfg, x, mask)
        with g.scope("output"):
            with g.scope("dense"):
                a = g.linear(a, h, h)
            a = g.op("Add", [a, x])
            with g.scope("LayerNorm"):
                x = g.layer_norm(a, h, EPS)
    with g.scope("intermediate"):
        with g.scope("dense"):
            f = g.linear(x, h, cfg["ffn"])
        with g.scope("intermediate_act_fn"):
            f = _gelu_erf(g, f)
    with g.scope("output"):
        with g.scope("dense"):
            f = g.linear(f, cfg["ffn"], h)
        f = g.op("Add", [f, x])
        with g.scope("LayerNorm"):
            return g.layer_norm(f, h, EPS)


def build(size="small", opset=DEFAULT_OPSET, seed=0, dynamic=False, **overrides):
    """dynamic: batch and sequence dims of inputs and outputs are symbolic
    ("batch_size", "sequence_length"), as with torch's dynamic_axes."""
    cfg = dict(CONFIGS[size], **overrides)
    g = common.Graph("bert", opset, seed)
    shape = ["batch_size", "sequence_length"] if dynamic else [cfg["batch"], cfg["seq"]]
    input_ids = g.input("input_ids", common.INT64, shape)
    attention_mask = g.input("attention_mask", common.INT64, shape)
    token_type_ids = g.input("token_type_ids", common.INT64, shape)
    x = _embeddings(g, cfg, input_ids, token_type_ids)
    mask = _extended_mask(g, attention_mask)
    with g.scope("encoder"):
        for i in range(cfg["layers"]):
            with g.scope("layer.%d" % i):
                x = _layer(g, cfg, x, mask)
    with g.scope("pooler"):
        first = g.op("Gather", [x, g.const(0, np.int64)], axis=1)
        with g.scope("dense"):
            p = g.gemm_linear(first, cfg["hidden"], cfg["hidden"])
        with g.scope("activation"):
            p = g.op("Tanh", [p])
    g.output(x, "last_hidden_state", common.FLOAT, shape + [cfg["hidden"]])
    g.output(p, "pooler_output", common.FLOAT, [shape[0], cfg["hidden"]])
    return g.model()


def sample_inputs(model, size="small", seed=1, **overrides):
    """Two-segment sentences of valid token ids: [CLS] a [SEP] b [SEP] then
    padding; row r of the batch is (r mod 4) * seq/4 tokens shorter."""
    cfg = dict(CONFIGS[size], **overrides)
    rng = np.random.default_rng(seed)
    b, s, vocab = cfg["batch"], cfg["seq"], cfg["vocab"]
    cls, sep = (101, 102) if vocab > 1000 else (1, 2)
    first_word = 1000 if vocab > 2000 else 3
    ids = np.zeros((b, s), np.int64)
    mask = np.zeros((b, s), np.int64)
    types = np.zeros((b, s), np.int64)
    for r in range(b):
        n = max(min(s, 3), s - (r % 4) * (s // 4))
        split = n // 2
        ids[r, :n] = rng.integers(first_word, vocab, n)
        ids[r, 0], ids[r, split], ids[r, n - 1] = cls, sep, sep
        mask[r, :n] = 1
        types[r, split + 1:n] = 1
    return [ids, mask, types]
