"""Writes torch_cases.txt: PyTorch's own cross-entropy / NLL / log-softmax results (float64,
autograd gradients) for the cases tests/torch_reference.rs checks the CPU twins against.

Run where PyTorch is installed:  python3 tests/data/make_torch_cases.py > tests/data/torch_cases.txt
"""
import math
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
INF = math.inf


def fmt(values):
    return " ".join(repr(float(v)) for v in values)


def emit(name, op, logits, targets, rows, classes, reduction="mean", weight=None,
         ignore_index=-100, label_smoothing=0.0, grad_output=None):
    x = torch.tensor(logits, dtype=torch.float64).reshape(rows, classes).requires_grad_(True)
    t = torch.tensor(targets, dtype=torch.int64)
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    if op == "cross_entropy":
        loss = F.cross_entropy(x, t, weight=w, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)
    elif op == "nll_loss":
        loss = F.nll_loss(x, t, weight=w, ignore_index=ignore_index, reduction=reduction)
    else:
        raise ValueError(op)
    if grad_output is None:
        grad_output = [1.0] * (rows if reduction == "none" else 1)
    g = torch.tensor(grad_output, dtype=torch.float64).reshape(loss.shape)
    loss.backward(g)
    print(f"case {name} {op} {rows} {classes} {reduction} {ignore_index} {label_smoothing!r} "
          f"{0 if weight is None else 1}")
    print("logits", fmt(logits))
    print("targets", " ".join(str(v) for v in targets))
    print("weight", fmt(weight or []))
    print("grad_output", fmt(grad_output))
    print("loss", fmt(loss.detach().reshape(-1).tolist()))
    print("grad", fmt(x.grad.reshape(-1).tolist()))


def rand(n, scale=3.0):
    return (torch.rand(n, dtype=torch.float64) * 2 - 1).mul(scale).tolist()


rows, classes = 6, 5
logits = rand(rows * classes)
targets = [0, 4, 2, -100, 1, 3]
weight = [0.5, 1.0, 2.0, 0.25, 1.5]
for op in ["cross_entropy", "nll_loss"]:
    for reduction in ["none", "sum", "mean"]:
        for w in [None, weight]:
            for eps in ([0.0, 0.1, 1.0] if op == "cross_entropy" else [0.0]):
                go = rand(rows, 1.0) if reduction == "none" else [1.7]
                x = logits if op == "cross_entropy" else F.log_softmax(
                    torch.tensor(logits).reshape(rows, classes), 1).reshape(-1).tolist()
                emit(f"{op}-{reduction}-w{int(w is not None)}-eps{eps}", op, x, targets, rows, classes,
                     reduction, w, -100, eps, go)

# Edge cases from PYTORCH_SEMANTICS.md.
emit("all-ignored-mean", "cross_entropy", [1.0, 2.0, 3.0, 4.0], [-100, -100], 2, 2)
emit("neg-inf-eps0", "cross_entropy", [-INF, 1.0, 2.0], [2], 1, 3, "none")
emit("neg-inf-eps0.1", "cross_entropy", [-INF, 1.0, 2.0], [2], 1, 3, "none", label_smoothing=0.1)
emit("neg-inf-target", "cross_entropy", [-INF, 1.0, 2.0], [0], 1, 3, "none")
emit("huge-logits", "cross_entropy", [1e4, -1e4, 1e4, 0.0], [1, 0], 2, 2, "none")
emit("nan-row", "cross_entropy", [0.0, 1.0, math.nan, 2.0, 3.0, 4.0], [0, 1, 1], 3, 2, "none")
emit("ignore-index-out-of-range", "cross_entropy", [0.5, 1.0, 2.0, 0.0, 1.0, 3.0], [0, 7], 2, 3,
     "mean", ignore_index=7)
emit("custom-ignore-class", "cross_entropy", [0.5, 1.0, 2.0, 0.0, 1.0, 3.0], [1, 2], 2, 3,
     "sum", weight=[1.0, 2.0, 3.0], ignore_index=1, label_smoothing=0.2)
emit("one-class", "cross_entropy", [3.0, -2.0], [0, 0], 2, 1, "mean", label_smoothing=0.3)
sys.stdout.flush()
