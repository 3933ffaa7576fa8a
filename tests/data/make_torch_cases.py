"""Writes torch_cases.txt (beside this script): PyTorch's own results for every op of the
crate, the reference that tests/gpu/torch_reference.rs checks the CPU twins (and the GPU)
against.

Regenerate with (from the repository root; any Python with PyTorch installed, no NumPy needed):

    /tmp/torchenv/bin/python tests/data/make_torch_cases.py

The committed data was made with torch 2.15.0 (CPU). Python's `random.Random` draws the
inputs, so the same torch gives the same file.

How each case is made: inputs are drawn and rounded to float32 (so the crate, which takes
f32, sees exactly the values torch saw), and so are the scalar parameters (label smoothing,
z-loss scale, soft cap, beta, delta); torch then computes in float64 on the CPU, and every
gradient is autograd's (`backward` with the case's upstream gradient). Where the crate's
backward ops take the forward *output* (`log_softmax_backward(y, dy)`,
`softmax_backward(p, dy)`), the output autograd saves for the backward pass is rounded to
float32 by a saved-tensor hook, and that rounded output is what the case gives the crate.

File format (text, one case after another):

    # comment lines, and blank lines, are ignored
    case <name> <op> key=value key=value ...
    <field> <value> <value> ...
    ...

`<op>` is the crate's function family (`cross_entropy`, `kl_div`, ...). Keys:
`shape` (PyTorch's input shape, comma-separated: `N,C` or `N,C,d1,d2`; the crate's `rows` is
N, `classes` C, `spatial` d1*d2; an elementwise op's `n` is the product), `reduction`,
`ignore_index`, `label_smoothing`, `z_loss_scale`, `logit_softcap`, `beta`, `delta`,
`log_target`, and `diverges` (outputs on which the crate documents a deliberate difference
from PyTorch; the comment above the case says which, and every element that differs is
non-finite on one side). Fields: inputs `input`, `target` (class indices or a tensor),
`weight`, `pos_weight`, `forward_output` (what a backward op takes: the forward output `y`
or `p`), `grad_output`; PyTorch's results `loss`, `grad`, `output` (of the forward softmax
ops), `lse`, `argmax`, `accuracy`. Floats are Python's `repr` (exact round trip; `nan`,
`inf`, `-inf`), class indices integers. Values are in PyTorch's memory order (contiguous
tensors).
"""
import math
import os
import random
import struct
import sys
import warnings
from collections import Counter

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_cases.txt")
INF, NAN = math.inf, math.nan
rng = random.Random(20260514)


def f32(v):
    """`v` rounded to float32 (as a Python float)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def rand(n, scale=3.0, lo=None):
    lo = -scale if lo is None else lo
    return [f32(rng.uniform(lo, scale)) for _ in range(n)]


def r32(values):
    """`values` rounded to float32 (`None` stays `None`)."""
    return None if values is None else [f32(v) for v in values]


def numel(shape):
    return math.prod(shape)


def tensor(values, shape):
    return torch.tensor(values, dtype=torch.float64).reshape(shape)


def flat(t):
    return t.detach().reshape(-1).tolist()


def upstream(loss):
    """A float32-representable upstream gradient of `loss`'s shape."""
    return rand(max(1, loss.numel()), 1.5)


class Writer:
    def __init__(self):
        self.lines = []
        self.names = set()
        self.counts = Counter()

    def case(self, name, op, params, fields, comment=None):
        assert name not in self.names, name
        assert " " not in name
        self.names.add(name)
        self.counts[op] += 1
        if comment:
            self.lines.append(f"# {comment}")
        head = " ".join(f"{k}={v}" for k, v in params.items())
        self.lines.append(f"case {name} {op} {head}".rstrip())
        for key, values in fields:
            if values is None:
                continue
            if key in INPUT_FIELDS:
                assert all(f32(v) == v or not math.isfinite(v) for v in values), (name, key)
            if key in ("argmax",) or (key == "target" and op in CLASS_INDEX_OPS):
                text = " ".join(str(int(v)) for v in values)
            else:
                text = " ".join(repr(float(v)) for v in values)
            self.lines.append(f"{key} {text}".rstrip())

    def write(self, path):
        header = [
            "# PyTorch reference cases for wgpu-loss: written by make_torch_cases.py (see its",
            f"# docstring for the format) with torch {torch.__version__}, float64 on the CPU.",
        ]
        with open(path, "w") as f:
            f.write("\n".join(header + self.lines) + "\n")


CLASS_INDEX_OPS = ("cross_entropy", "nll_loss")
# What the crate is given: each must be float32-representable.
INPUT_FIELDS = ("input", "target", "weight", "pos_weight", "forward_output", "grad_output")
W = Writer()


def shape_param(shape):
    return ",".join(str(d) for d in shape)


# ----------------------------------------------------------------------------------------
# log_softmax / softmax and their backward passes


def softmax_forward(name, op, x, shape):
    fn = F.log_softmax if op == "log_softmax" else F.softmax
    x = r32(x)
    out = fn(tensor(x, shape), 1)
    W.case(name, op, {"shape": shape_param(shape)}, [("input", x), ("output", flat(out))])


def round_saved(t):
    return t.float().double()


def softmax_backward(name, op, x, shape, dy=None, diverges=None):
    fn = F.log_softmax if op == "log_softmax_backward" else F.softmax
    x, dy = r32(x), rand(numel(shape), 2.0) if dy is None else r32(dy)
    xt = tensor(x, shape).requires_grad_(True)
    saved = []

    def pack(t):
        saved.append(t)
        return round_saved(t)

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(xt, 1)
    # The forward output is the only tensor saved: it is what the backward pass reads.
    assert len(saved) == 1 and saved[0].shape == y.shape
    (dx,) = torch.autograd.grad(y, xt, tensor(dy, shape))
    params = {"shape": shape_param(shape)}
    if diverges:
        params["diverges"] = diverges
    W.case(name, op, params, [("forward_output", flat(round_saved(y))), ("grad_output", dy), ("grad", flat(dx))])


def softmax_family():
    shapes = [(1, 1), (3, 1), (2, 2), (3, 5), (4, 17), (2, 32), (3, 33), (2, 60), (3, 100), (2, 257)]
    for shape in shapes:
        x = rand(numel(shape), 4.0)
        tag = "x".join(map(str, shape))
        for op in ("log_softmax", "softmax"):
            softmax_forward(f"{op}-{tag}", op, x, shape)
            softmax_backward(f"{op}_backward-{tag}", f"{op}_backward", x, shape)
    # One long row (beyond the rows held in registers), forward only.
    x = rand(1500, 4.0)
    for op in ("log_softmax", "softmax"):
        softmax_forward(f"{op}-1x1500", op, x, (1, 1500))
    x = rand(4 * 9, 40.0)
    for op in ("log_softmax", "softmax"):
        softmax_forward(f"{op}-wide-4x9", op, x, (4, 9))
        softmax_backward(f"{op}_backward-wide-4x9", f"{op}_backward", x, (4, 9))
    # Adversarial rows: ±1e4, -inf entries, NaN, +inf, all -inf, ties, tiny and huge.
    adversarial = [
        [1e4, -1e4, 0.0, 1e4, -3.0],
        [-INF, 1.0, 2.0, -INF, 0.5],
        [0.0, NAN, 1.0, 2.0, 3.0],
        [1.0, INF, 0.0, -1.0, 2.0],
        [-INF, -INF, -INF, -INF, -INF],
        [2.0, 2.0, 2.0, 2.0, 2.0],
        [1e-38, -1e-45, 0.0, -0.0, 3e-39],
        [3e38, -3e38, 1e30, 0.0, 3e38],
        [-1e4, -1e4 - 1, -1e4 + 2, -INF, -1e4],
    ]
    x = [f32(v) for row in adversarial for v in row]
    shape = (len(adversarial), 5)
    for op in ("log_softmax", "softmax"):
        softmax_forward(f"{op}-adversarial", op, x, shape)
        softmax_backward(f"{op}_backward-adversarial", f"{op}_backward", x, shape)
    # Rows whose upstream gradient is NaN / inf somewhere. Documented divergence: the crate
    # makes such a row all NaN (as cross-entropy does a row with a non-finite upstream
    # gradient); PyTorch gives -inf where the inf reaches through the sum.
    x = rand(2 * 4, 2.0)
    dy = rand(8, 1.0)
    dy[1], dy[6] = NAN, INF
    for op in ("log_softmax_backward", "softmax_backward"):
        softmax_backward(f"{op}-nonfinite-dy", op, x, (2, 4), dy, diverges="grad")
    # (N, C, d1, d2): the class dimension strided.
    for shape in [(2, 5, 3, 4), (1, 3, 2, 2), (3, 7, 1, 5), (2, 40, 2, 3)]:
        x = rand(numel(shape), 4.0)
        tag = "x".join(map(str, shape))
        for op in ("log_softmax", "softmax"):
            softmax_forward(f"{op}-spatial-{tag}", op, x, shape)
            softmax_backward(f"{op}_backward-spatial-{tag}", f"{op}_backward", x, shape)
    shape = (2, 3, 2, 2)
    x = rand(numel(shape), 3.0)
    for i, v in [(0, -INF), (4, -INF), (8, -INF), (1, NAN), (14, 1e4), (18, -1e4), (22, INF)]:
        x[i] = v
    for op in ("log_softmax", "softmax"):
        softmax_forward(f"{op}-spatial-adversarial", op, x, shape)
        softmax_backward(f"{op}_backward-spatial-adversarial", f"{op}_backward", x, shape)


# ----------------------------------------------------------------------------------------
# cross_entropy (class indices, with z-loss and soft-capping), nll_loss


def ce_index(name, x, targets, shape, reduction="mean", weight=None, ignore_index=-100, eps=0.0,
             z=0.0, cap=0.0, g=None, diverges=None, comment=None):
    """F.cross_entropy with class-index targets, plus the crate's extensions written as torch
    formulas: soft-capping `cap·tanh(x/cap)` before the loss, and z-loss `z·lse²` of the
    capped logits added to each counted (non-ignored) row, unweighted, the mean dividing it
    by the same Σ w[t_i] as the rest of the row."""
    eps, z, cap = f32(eps), f32(z), f32(cap)
    x, weight, g = r32(x), r32(weight), r32(g)
    xt = tensor(x, shape).requires_grad_(True)
    t = torch.tensor(targets, dtype=torch.int64).reshape((shape[0],) + tuple(shape[2:]))
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    y = cap * torch.tanh(xt / cap) if cap else xt
    kw = dict(weight=w, ignore_index=ignore_index, label_smoothing=eps)
    if z == 0.0:
        loss = F.cross_entropy(y, t, reduction=reduction, **kw)
    else:
        per = F.cross_entropy(y, t, reduction="none", **kw)
        counted = t != ignore_index
        lse = torch.logsumexp(y, 1)
        per = per + torch.where(counted, z * lse * lse, torch.zeros_like(lse))
        if reduction == "none":
            loss = per
        elif reduction == "sum":
            loss = per.sum()
        else:
            wt = torch.ones(t.shape, dtype=torch.float64) if w is None else w[torch.where(counted, t, 0)]
            loss = per.sum() / torch.where(counted, wt, torch.zeros_like(wt)).sum()
    g = upstream(loss) if g is None else g
    loss.backward(tensor(g, loss.shape))
    with torch.no_grad():
        lse = torch.logsumexp(y, 1)
        argmax = torch.argmax(xt, 1)
        counted = t != ignore_index
        accuracy = (argmax == t)[counted].double().mean()
    params = {"shape": shape_param(shape), "reduction": reduction, "ignore_index": ignore_index,
              "label_smoothing": repr(eps)}
    if z:
        params["z_loss_scale"] = repr(z)
    if cap:
        params["logit_softcap"] = repr(cap)
    if diverges:
        params["diverges"] = diverges
    W.case(name, "cross_entropy", params, [
        ("input", x), ("target", targets), ("weight", weight), ("grad_output", g),
        ("loss", flat(loss)), ("grad", flat(xt.grad)),
        ("lse", flat(lse)), ("argmax", flat(argmax)), ("accuracy", [accuracy.item()]),
    ], comment)


def nll(name, x, targets, shape, reduction="mean", weight=None, ignore_index=-100, g=None, diverges=None,
        comment=None):
    x, weight, g = r32(x), r32(weight), r32(g)
    xt = tensor(x, shape).requires_grad_(True)
    t = torch.tensor(targets, dtype=torch.int64).reshape((shape[0],) + tuple(shape[2:]))
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    loss = F.nll_loss(xt, t, weight=w, ignore_index=ignore_index, reduction=reduction)
    g = upstream(loss) if g is None else g
    loss.backward(tensor(g, loss.shape))
    params = {"shape": shape_param(shape), "reduction": reduction, "ignore_index": ignore_index}
    if diverges:
        params["diverges"] = diverges
    W.case(name, "nll_loss", params, [
        ("input", x), ("target", targets), ("weight", weight), ("grad_output", g),
        ("loss", flat(loss)), ("grad", flat(xt.grad)),
    ], comment)


def log_probs(shape, scale=3.0):
    """float32 log-probabilities (log_softmax of random logits, rounded)."""
    return [f32(v) for v in flat(F.log_softmax(tensor(rand(numel(shape), scale), shape), 1))]


def targets_for(n, classes, ignored=(), ignore_index=-100):
    t = [rng.randrange(classes) for _ in range(n)]
    for i in ignored:
        t[i] = ignore_index
    return t


def weights(classes):
    return rand(classes, 2.0, lo=0.25)


def class_index_family():
    # The grid of the original script: 6 × 5, row 3 ignored, every reduction, with and
    # without class weights, label smoothing 0, 0.1, 1.
    shape = (6, 5)
    logits = rand(30)
    targets = [0, 4, 2, -100, 1, 3]
    weight = [0.5, 1.0, 2.0, 0.25, 1.5]
    lp = log_probs(shape)
    for reduction in ("none", "sum", "mean"):
        for w in (None, weight):
            for eps in (0.0, 0.1, 1.0):
                ce_index(f"cross_entropy-{reduction}-w{int(w is not None)}-eps{eps}", logits, targets, shape,
                         reduction, w, eps=eps)
            nll(f"nll_loss-{reduction}-w{int(w is not None)}", lp, targets, shape, reduction, w)
    # Edge cases (PYTORCH_SEMANTICS.md).
    ce_index("all-ignored-mean", [1.0, 2.0, 3.0, 4.0], [-100, -100], (2, 2))
    ce_index("all-ignored-mean-eps", [1.0, 2.0, 3.0, 4.0, 0.5, 0.0], [-100, -100], (2, 3), eps=0.1,
             weight=[1.0, 2.0, 0.5])
    ce_index("all-ignored-sum", [1.0, 2.0, 3.0, 4.0], [-100, -100], (2, 2), "sum")
    ce_index("neg-inf-eps0", [-INF, 1.0, 2.0], [2], (1, 3), "none")
    ce_index("neg-inf-eps0.1", [-INF, 1.0, 2.0], [2], (1, 3), "none", eps=0.1)
    ce_index("neg-inf-eps0.1-weighted-mean", [-INF, 1.0, 2.0, 0.0, -INF, 1.0], [2, 0], (2, 3), "mean",
             weight=[1.0, 3.0, 0.5], eps=0.1)
    ce_index("neg-inf-target", [-INF, 1.0, 2.0], [0], (1, 3), "none")
    ce_index("neg-inf-target-eps", [-INF, 1.0, 2.0, 0.5, 0.0, -INF], [0, 2], (2, 3), "sum", eps=0.2)
    ce_index("huge-logits", [1e4, -1e4, 1e4, 0.0], [1, 0], (2, 2), "none")
    ce_index("huge-logits-eps-mean", [1e4, -1e4, 3.0, 1e4, 0.0, -1e4, -1e4, -1e4 + 1, -1e4 + 2], [1, 0, 2], (3, 3),
             eps=0.1, weight=[2.0, 1.0, 0.5])
    ce_index("nan-row", [0.0, 1.0, NAN, 2.0, 3.0, 4.0], [0, 1, 1], (3, 2), "none")
    ce_index("nan-row-mean", [0.0, 1.0, NAN, 2.0, 3.0, 4.0], [0, 1, 1], (3, 2), "mean", eps=0.1)
    ce_index("plus-inf-row", [0.0, INF, 1.0, 2.0, 3.0, 4.0], [0, 1], (2, 3), "none")
    ce_index("all-neg-inf-row", [-INF, -INF, -INF, 0.0, 1.0, 2.0], [0, 1], (2, 3), "none")
    ce_index("ignore-index-out-of-range", [0.5, 1.0, 2.0, 0.0, 1.0, 3.0], [0, 7], (2, 3), "mean", ignore_index=7)
    ce_index("custom-ignore-class", [0.5, 1.0, 2.0, 0.0, 1.0, 3.0], [1, 2], (2, 3), "sum", weight=[1.0, 2.0, 3.0],
             ignore_index=1, eps=0.2)
    ce_index("one-class", [3.0, -2.0], [0, 0], (2, 1), "mean", eps=0.3)
    ce_index("ignored-neg-inf-eps", [-INF, 1.0, 2.0, 0.0, -INF, 1.0], [-100, 0], (2, 3), "mean", eps=0.1)
    ce_index("nan-grad-output", rand(9), [0, -100, 2], (3, 3), "none", g=[1.0, 2.0, NAN])
    ce_index("nan-grad-output-mean", rand(9), [0, -100, 2], (3, 3), "mean", g=[NAN])
    ce_index("zero-weight-target", rand(9), [0, 1, 2], (3, 3), "mean", weight=[0.0, 1.0, 2.0], eps=0.1)
    ce_index(
        "ignored-nan-row", [0.0, NAN, 1.0, 0.5, 1.0, 2.0], [-100, 2], (2, 3), "mean",
        diverges="grad",
        comment="documented divergence (README, deliberate differences): an ignored row's gradient is "
                "exactly 0 even when its logits are NaN; torch gives NaN there",
    )
    ce_index(
        "ignored-all-neg-inf-row", [-INF, -INF, -INF, 0.5, 1.0, 2.0], [-100, 2], (2, 3), "sum", eps=0.1,
        diverges="grad",
        comment="documented divergence: an ignored row's gradient is exactly 0 (its logits are not read); "
                "torch's log_softmax backward of an all -inf row gives NaN",
    )
    ce_index(
        "inf-grad-output", [0.0, -INF, 1.0, 2.0, 0.5, 1.0], [0, 2], (2, 3), "none", g=[INF, 1.0],
        diverges="grad",
        comment="documented divergence (README, bad input): a non-finite grad_output makes its row's gradient "
                "all NaN; torch gives ±inf where the slope is non-zero and NaN (inf·0) where it is 0",
    )
    # Random cases: shapes around the kernels' row sizes, every option.
    for i, (shape, reduction, weighted, eps, ignored) in enumerate([
        ((1, 1), "mean", False, 0.0, ()),
        ((3, 2), "none", True, 0.1, (1,)),
        ((7, 31), "mean", True, 0.1, (2, 5)),
        ((5, 32), "sum", False, 1.0, (0,)),
        ((4, 33), "mean", False, 0.0, (3,)),
        ((3, 60), "none", True, 0.0, ()),
        ((6, 100), "mean", True, 0.1, (4,)),
        ((3, 257), "sum", True, 0.0, (1,)),
        ((1, 1500), "mean", False, 0.1, ()),
    ]):
        classes = shape[1]
        ce_index(f"cross_entropy-random-{i}-{shape[0]}x{classes}", rand(numel(shape), 5.0),
                 targets_for(shape[0], classes, ignored), shape, reduction,
                 weights(classes) if weighted else None, eps=eps)
        if classes <= 100:
            nll(f"nll_loss-random-{i}-{shape[0]}x{classes}", log_probs(shape),
                targets_for(shape[0], classes, ignored), shape, reduction, weights(classes) if weighted else None)
    # Ties and NaN for argmax / logsumexp; accuracy over counted rows.
    ce_index("extras-ties-nan", [f32(v) for v in [1.0, 3.0, 3.0, 0.0,
                                                 NAN, 1.0, NAN, 2.0,
                                                 -INF, -INF, -INF, -INF,
                                                 2.0, 2.0, 2.0, 2.0,
                                                 INF, NAN, 0.0, 1.0,
                                                 -1.0, 5.0, 4.0, 5.0]],
             [1, 3, 0, 0, 2, 3], (6, 4), "none")
    ce_index("extras-accuracy-ignored", rand(20), [1, -100, 3, 0, -100], (5, 4), "mean")
    # nll_loss edge cases.
    nll("nll_loss-all-ignored-mean", [-1.0, -2.0, -0.5, -0.25], [-100, -100], (2, 2))
    nll("nll_loss-neg-inf-target", [-INF, -0.5, -1.0, -0.1], [0, 1], (2, 2), "none")
    nll("nll_loss-nan-elsewhere", [NAN, -0.5, -1.0, NAN], [1, 0], (2, 2), "sum")
    nll("nll_loss-ignore-out-of-range", [-1.0, -0.5, -2.0, -0.1, -0.3, -4.0], [2, 9], (2, 3), "mean",
        weight=[1.0, 2.0, 3.0], ignore_index=9)
    nll("nll_loss-nan-grad-output", [-1.0, -0.5, -2.0, -0.1, -0.3, -4.0], [2, 0], (2, 3), "none", g=[NAN, 1.0],
        diverges="grad",
        comment="documented divergence (nll_loss_grad's docs, README bad input): a row whose upstream gradient "
                "is not finite is all NaN; torch puts the NaN at the target only, 0 elsewhere")
    # z-loss and soft-capping.
    shape = (5, 7)
    x = rand(numel(shape), 6.0)
    t = [3, 0, -100, 6, 2]
    weight = weights(7)
    for z, cap in [(1e-4, 0.0), (0.05, 0.0), (0.0, 2.5), (0.0, 30.0), (0.05, 1.5), (1e-4, 30.0)]:
        for reduction in ("none", "sum", "mean"):
            for w, eps in [(None, 0.0), (weight, 0.1)]:
                ce_index(f"zloss{z}-cap{cap}-{reduction}-w{int(w is not None)}-eps{eps}", x, t, shape, reduction, w,
                         eps=eps, z=z, cap=cap)
    adversarial = [f32(v) for v in [1e4, -1e4, 0.0, 2.0,
                                    INF, 0.0, 1.0, -INF,
                                    -INF, -INF, 1.0, 2.0,
                                    NAN, 0.0, 1.0, 2.0,
                                    INF, -INF, INF, 0.0,
                                    3e38, -3e38, 0.0, 1.0]]
    for z, cap in [(0.01, 0.0), (0.0, 5.0), (0.01, 5.0)]:
        for reduction in ("none", "mean"):
            ce_index(f"zloss{z}-cap{cap}-{reduction}-adversarial", adversarial, [1, 3, 2, 0, 1, 2], (6, 4), reduction,
                     weight=[1.0, 2.0, 0.5, 1.5], eps=0.1 if reduction == "mean" else 0.0, z=z, cap=cap)
    ce_index("zloss-cap-all-ignored-mean", rand(8), [-100, -100], (2, 4), "mean", z=0.01, cap=3.0)
    ce_index("zloss-cap-medium", rand(4 * 130, 40.0), targets_for(4, 130, (2,)), (4, 130), "mean", weights(130),
             eps=0.1, z=1e-3, cap=20.0)
    # (N, C, d1, d2) layouts.
    for i, (shape, reduction, weighted, eps, z, cap) in enumerate([
        ((2, 5, 3, 4), "none", False, 0.0, 0.0, 0.0),
        ((2, 5, 3, 4), "mean", True, 0.1, 0.0, 0.0),
        ((3, 4, 2, 2), "sum", True, 1.0, 0.0, 0.0),
        ((2, 40, 2, 3), "mean", False, 0.0, 0.0, 0.0),
        ((2, 6, 2, 3), "mean", True, 0.1, 0.01, 4.0),
    ]):
        n, classes, positions = shape[0], shape[1], numel(shape[2:])
        tag = "x".join(map(str, shape))
        t = targets_for(n * positions, classes, (1, positions + 2))
        ce_index(f"cross_entropy-spatial-{i}-{tag}", rand(numel(shape), 4.0), t, shape, reduction,
                 weights(classes) if weighted else None, eps=eps, z=z, cap=cap)
        if z == 0.0 and cap == 0.0:
            nll(f"nll_loss-spatial-{i}-{tag}", log_probs(shape), t, shape, reduction,
                weights(classes) if weighted else None)
    shape = (1, 3, 2, 2)
    x = rand(12)
    x[0], x[5], x[10] = -INF, NAN, 1e4
    ce_index("cross_entropy-spatial-adversarial", x, [2, 0, 1, 1], shape, "none")
    ce_index("cross_entropy-spatial-all-ignored", rand(12), [-100] * 4, shape, "mean")
    nll("nll_loss-spatial-all-ignored", log_probs(shape), [-100] * 4, shape, "mean")


# ----------------------------------------------------------------------------------------
# cross_entropy with probability targets


def ce_probs(name, x, probs, shape, reduction="mean", weight=None, eps=0.0, z=0.0, cap=0.0, diverges=None,
             comment=None):
    eps, z, cap = f32(eps), f32(z), f32(cap)
    x, probs, weight = r32(x), r32(probs), r32(weight)
    xt = tensor(x, shape).requires_grad_(True)
    p = tensor(probs, shape)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    y = cap * torch.tanh(xt / cap) if cap else xt
    if z == 0.0:
        loss = F.cross_entropy(y, p, weight=w, reduction=reduction, label_smoothing=eps)
    else:
        per = F.cross_entropy(y, p, weight=w, reduction="none", label_smoothing=eps)
        lse = torch.logsumexp(y, 1)
        per = per + z * lse * lse
        loss = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]
    g = upstream(loss)
    loss.backward(tensor(g, loss.shape))
    params = {"shape": shape_param(shape), "reduction": reduction, "label_smoothing": repr(eps)}
    if z:
        params["z_loss_scale"] = repr(z)
    if cap:
        params["logit_softcap"] = repr(cap)
    if diverges:
        params["diverges"] = diverges
    W.case(name, "cross_entropy_probs", params, [
        ("input", x), ("target", probs), ("weight", weight), ("grad_output", g),
        ("loss", flat(loss)), ("grad", flat(xt.grad)),
    ], comment)


def distribution(n, classes):
    out = []
    for _ in range(n):
        row = [rng.random() ** 2 for _ in range(classes)]
        s = sum(row)
        out += [f32(v / s) for v in row]
    return out


def probability_family():
    shape = (5, 6)
    x = rand(30)
    normalised = distribution(5, 6)
    weight = weights(6)
    for reduction in ("none", "sum", "mean"):
        for w in (None, weight):
            for eps in (0.0, 0.1, 1.0):
                ce_probs(f"cross_entropy_probs-{reduction}-w{int(w is not None)}-eps{eps}", x, normalised, shape,
                         reduction, w, eps)
    ce_probs("cross_entropy_probs-unnormalised", x, rand(30, 1.5, lo=0.0), shape, "mean", weight, 0.1)
    one_hot = [1.0 if c == r % 6 else 0.0 for r in range(5) for c in range(6)]
    ce_probs("cross_entropy_probs-one-hot", x, one_hot, shape, "sum", weight)
    ce_probs("cross_entropy_probs-negative-target", x, rand(30, 1.0), shape, "none")
    adversarial = [1e4, -1e4, 0.0, 1.0,
                   -INF, 0.0, 1.0, 2.0,
                   -INF, 0.0, 1.0, 2.0,
                   NAN, 0.0, 1.0, 2.0,
                   -INF, -INF, -INF, -INF,
                   0.0, 1.0, 2.0, 3.0]
    targets = [0.25, 0.25, 0.25, 0.25,
               0.0, 0.5, 0.5, 0.0,
               0.5, 0.5, 0.0, 0.0,
               0.25, 0.25, 0.25, 0.25,
               0.25, 0.25, 0.25, 0.25,
               0.1, NAN, 0.2, 0.7]
    for reduction, eps in [("none", 0.0), ("none", 0.1), ("mean", 0.0)]:
        ce_probs(f"cross_entropy_probs-adversarial-{reduction}-eps{eps}", adversarial, targets, (6, 4), reduction,
                 [1.0, 2.0, 0.5, 1.5], eps)
    ce_probs(
        "cross_entropy_probs-inf-target", [0.0, 1.0, 2.0, 0.5, 1.0, -1.0], [0.5, INF, 0.0, 0.2, 0.3, 0.5], (2, 3),
        "none", diverges="loss,grad",
        comment="documented divergence (README, PyTorch side by side): a non-finite probability target makes "
                "its row NaN; torch gives inf·lp terms (here a -inf loss and an inf gradient)",
    )
    for z, cap in [(0.01, 0.0), (0.0, 3.0), (0.01, 3.0)]:
        for reduction in ("none", "mean"):
            ce_probs(f"cross_entropy_probs-zloss{z}-cap{cap}-{reduction}", rand(30, 6.0), normalised, shape, reduction,
                     weight, 0.1, z, cap)
    ce_probs("cross_entropy_probs-medium", rand(4 * 130, 5.0), distribution(4, 130), (4, 130), "mean", weights(130),
             0.1)
    for i, (shape, reduction, weighted, eps) in enumerate([
        ((2, 5, 3, 4), "none", False, 0.0),
        ((2, 5, 3, 4), "mean", True, 0.1),
        ((3, 4, 2, 2), "sum", True, 1.0),
    ]):
        n, classes, positions = shape[0], shape[1], numel(shape[2:])
        # A distribution over the classes at each position, laid out (N, C, d1, d2).
        rows = distribution(n * positions, classes)
        probs = [0.0] * numel(shape)
        for s_n in range(n):
            for pos in range(positions):
                for c in range(classes):
                    probs[(s_n * classes + c) * positions + pos] = rows[(s_n * positions + pos) * classes + c]
        ce_probs(f"cross_entropy_probs-spatial-{i}-" + "x".join(map(str, shape)), rand(numel(shape), 4.0), probs,
                 shape, reduction, weights(classes) if weighted else None, eps)


# ----------------------------------------------------------------------------------------
# Elementwise losses


def elementwise(name, op, x, y, shape, params, fn, weight=None, pos_weight=None, g=None):
    x, y, weight, pos_weight, g = r32(x), r32(y), r32(weight), r32(pos_weight), r32(g)
    xt = tensor(x, shape).requires_grad_(True)
    yt = tensor(y, shape)
    loss = fn(xt, yt)
    g = upstream(loss) if g is None else g
    loss.backward(tensor(g, loss.shape))
    W.case(name, op, {"shape": shape_param(shape), **params}, [
        ("input", x), ("target", y), ("weight", weight), ("pos_weight", pos_weight), ("grad_output", g),
        ("loss", flat(loss)), ("grad", flat(xt.grad)),
    ])


def elementwise_family():
    shape = (4, 6)
    n = numel(shape)
    x, y = rand(n), rand(n)
    x[3], x[10] = y[3], y[10]  # d = 0: L1's slope sign(0) = 0
    reductions = ("none", "sum", "mean")
    # Regression losses.
    for r in reductions:
        elementwise(f"mse_loss-{r}", "mse_loss", x, y, shape, {"reduction": r},
                    lambda a, b, r=r: F.mse_loss(a, b, reduction=r))
        elementwise(f"l1_loss-{r}", "l1_loss", x, y, shape, {"reduction": r},
                    lambda a, b, r=r: F.l1_loss(a, b, reduction=r))
        for beta in (1.0, 0.5, 0.0):
            elementwise(f"smooth_l1_loss-beta{beta}-{r}", "smooth_l1_loss", x, y, shape,
                        {"reduction": r, "beta": repr(beta)},
                        lambda a, b, r=r, beta=beta: F.smooth_l1_loss(a, b, reduction=r, beta=beta))
        for delta in (1.0, 2.5, 0.3):
            delta = f32(delta)
            elementwise(f"huber_loss-delta{delta}-{r}", "huber_loss", x, y, shape,
                        {"reduction": r, "delta": repr(delta)},
                        lambda a, b, r=r, delta=delta: F.huber_loss(a, b, reduction=r, delta=delta))
    elementwise("rmse_loss", "rmse_loss", x, y, shape, {}, lambda a, b: torch.sqrt(F.mse_loss(a, b)))
    elementwise("rmse_loss-zero", "rmse_loss", x, x, shape, {}, lambda a, b: torch.sqrt(F.mse_loss(a, b)))
    elementwise("rmse_loss-medium", "rmse_loss", rand(300, 10.0), rand(300, 10.0), (10, 30), {},
                lambda a, b: torch.sqrt(F.mse_loss(a, b)))
    # Boundaries |d| == beta / delta exactly, NaN, large differences.
    xa = [0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, NAN, 1e4, -1e4, 3.0, 0.25]
    ya = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1e4, 0.0, NAN, 0.25]
    sa = (2, 6)
    for r in ("none", "sum"):
        elementwise(f"mse_loss-adversarial-{r}", "mse_loss", xa, ya, sa, {"reduction": r},
                    lambda a, b, r=r: F.mse_loss(a, b, reduction=r))
        elementwise(f"l1_loss-adversarial-{r}", "l1_loss", xa, ya, sa, {"reduction": r},
                    lambda a, b, r=r: F.l1_loss(a, b, reduction=r))
        for beta in (1.0, 0.5, 0.0):
            elementwise(f"smooth_l1_loss-adversarial-beta{beta}-{r}", "smooth_l1_loss", xa, ya, sa,
                        {"reduction": r, "beta": repr(beta)},
                        lambda a, b, r=r, beta=beta: F.smooth_l1_loss(a, b, reduction=r, beta=beta))
        for delta in (1.0, 2.5):
            elementwise(f"huber_loss-adversarial-delta{delta}-{r}", "huber_loss", xa, ya, sa,
                        {"reduction": r, "delta": repr(delta)},
                        lambda a, b, r=r, delta=delta: F.huber_loss(a, b, reduction=r, delta=delta))
    elementwise("mse_loss-medium", "mse_loss", rand(300, 10.0), rand(300, 10.0), (10, 30), {"reduction": "mean"},
                lambda a, b: F.mse_loss(a, b))
    # Binary cross-entropy with logits: weight (full shape), pos_weight (last dimension).
    logits = rand(n, 6.0)
    soft = rand(n, 1.0, lo=0.0)
    hard = [float(rng.random() < 0.5) for _ in range(n)]
    w_full = rand(n, 2.0, lo=0.0)
    pos_weight = rand(6, 3.0, lo=0.2)
    for r in reductions:
        for w, pw in [(None, None), (w_full, None), (None, pos_weight), (w_full, pos_weight)]:
            for tname, t in [("soft", soft), ("hard", hard)]:
                def fn(a, b, r=r, w=w, pw=pw):
                    return F.binary_cross_entropy_with_logits(
                        a, b, weight=None if w is None else tensor(w, shape),
                        pos_weight=None if pw is None else torch.tensor(pw, dtype=torch.float64), reduction=r)
                elementwise(f"bce_with_logits-{r}-w{int(w is not None)}-pw{int(pw is not None)}-{tname}",
                            "binary_cross_entropy_with_logits", logits, t, shape, {"reduction": r}, fn, w, pw)
    xa = [100.0, -100.0, 1e4, -1e4, 0.0, 30.0, -30.0, NAN, 5.0, -5.0, 0.5, 2.0]
    ya = [0.0, 1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 2.0, -1.0, 0.3, 1.0]
    pw = [f32(v) for v in (0.5, 1.0, 2.0, 3.0)]
    for r in ("none", "sum"):
        elementwise(f"bce_with_logits-adversarial-{r}", "binary_cross_entropy_with_logits", xa, ya, (3, 4),
                    {"reduction": r},
                    lambda a, b, r=r: F.binary_cross_entropy_with_logits(
                        a, b, pos_weight=torch.tensor(pw, dtype=torch.float64), reduction=r), None, pw)
    elementwise("bce_with_logits-medium", "binary_cross_entropy_with_logits", rand(300, 8.0),
                rand(300, 1.0, lo=0.0), (10, 30), {"reduction": "mean"},
                lambda a, b: F.binary_cross_entropy_with_logits(a, b))
    # Binary cross-entropy on probabilities (0 and 1 included: logs clamped at -100).
    probs = rand(n, 1.0, lo=0.0)
    for r in reductions:
        for w in (None, w_full):
            for tname, t in [("soft", soft), ("hard", hard)]:
                def fn(a, b, r=r, w=w):
                    return F.binary_cross_entropy(a, b, weight=None if w is None else tensor(w, shape), reduction=r)
                elementwise(f"bce-{r}-w{int(w is not None)}-{tname}", "binary_cross_entropy", probs, t, shape,
                            {"reduction": r}, fn, w)
    pa = [f32(v) for v in [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1e-30, 1e-45, 1 - 2 ** -24, 0.5, 1e-7, 0.999]]
    ta = [0.0, 1.0, 1.0, 0.0, 0.3, 0.7, 1.0, 1.0, 0.0, 0.5, 0.0, 1.0]
    for r in ("none", "sum", "mean"):
        elementwise(f"bce-adversarial-{r}", "binary_cross_entropy", pa, ta, (3, 4), {"reduction": r},
                    lambda a, b, r=r: F.binary_cross_entropy(a, b, reduction=r))
    # KL divergence: input log-probabilities, target probabilities or log-probabilities.
    q = log_probs(shape)
    p = distribution(4, 6)
    p[2], p[9] = 0.0, 0.0  # zero targets: xlogy(0, 0) = 0
    lt = log_probs(shape, 2.0)
    for r in ("none", "sum", "mean", "batchmean"):
        elementwise(f"kl_div-{r}", "kl_div", q, p, shape, {"reduction": r, "log_target": "false"},
                    lambda a, b, r=r: F.kl_div(a, b, reduction=r, log_target=False))
        elementwise(f"kl_div-{r}-log_target", "kl_div", q, lt, shape, {"reduction": r, "log_target": "true"},
                    lambda a, b, r=r: F.kl_div(a, b, reduction=r, log_target=True))
    qa = [f32(v) for v in [-1e4, -0.5, -INF, -2.0, NAN, -1.0, -3.0, 0.0]]
    ta = [0.5, 0.0, 0.0, 0.25, 0.25, 0.0, 1.0, 0.0]
    elementwise("kl_div-adversarial", "kl_div", qa, ta, (2, 4), {"reduction": "none", "log_target": "false"},
                lambda a, b: F.kl_div(a, b, reduction="none", log_target=False))
    la = [f32(v) for v in [-0.5, -INF, -1.0, -1e4, -0.25, -2.0, 0.0, -INF]]
    elementwise("kl_div-adversarial-log_target", "kl_div", qa, la, (2, 4), {"reduction": "none", "log_target": "true"},
                lambda a, b: F.kl_div(a, b, reduction="none", log_target=True))
    elementwise("kl_div-medium", "kl_div", log_probs((10, 30)), distribution(10, 30), (10, 30),
                {"reduction": "batchmean", "log_target": "false"},
                lambda a, b: F.kl_div(a, b, reduction="batchmean"))


softmax_family()
class_index_family()
probability_family()
elementwise_family()
W.write(OUT)
size = os.path.getsize(OUT)
print(f"wrote {OUT}: {sum(W.counts.values())} cases, {size} bytes", file=sys.stderr)
for op, count in sorted(W.counts.items()):
    print(f"  {op}: {count}", file=sys.stderr)
