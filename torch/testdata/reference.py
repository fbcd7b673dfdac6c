"""PyTorch's side of torch/reference_test.go.

Usage: reference.py CASES.json RESULTS.json

CASES.json holds a list of cases, each with a name, input tensors (dtype,
shape, little-endian element bytes in base64, whether they require grad), an
optional seed for torch.manual_seed, and Python code that computes `out`, a
tensor or a tuple of tensors, from the inputs a, b, c, ... For each case this
script runs the code, back-propagates sum_k sum(out_k * W_k) from the outputs
that require grad (W_k is weights(out_k, k), the same fixed pattern the Go
test uses), and writes the outputs and the gradients of the inputs, or the
error message when the code raises.
"""
import base64
import json
import math
import sys

import torch
import torch.nn.functional as F

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def decode(d):
    dtype = DTYPES[d["dtype"]]
    raw = base64.b64decode(d["data"])
    if raw:
        t = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(d["shape"]).clone()
    else:
        t = torch.empty(d["shape"], dtype=dtype)
    return t.requires_grad_(d["grad"])


def encode(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        raw = t.view(torch.int16).numpy().tobytes()
    else:
        raw = t.numpy().tobytes()
    return {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data": base64.b64encode(raw).decode()}


def weights(t, k):
    """((7i + 3k) mod 11 - 5.5) / 4 for element i of output k: exact in every float dtype, never 0."""
    i = torch.arange(t.numel(), dtype=torch.int64)
    return (((7 * i + 3 * k) % 11).to(torch.float64) - 5.5).div(4).reshape(t.shape).to(t.dtype)


def run(case):
    inputs = [decode(d) for d in case["inputs"]]
    env = {"torch": torch, "F": F, "math": math}
    env.update(zip("abcdefgh", inputs))
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    try:
        exec(case["code"], env)
    except Exception as e:  # the Go side must fail the same way
        return {"error": str(e)}
    out = env["out"]
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    loss = None
    for k, o in enumerate(outs):
        if o.requires_grad:
            term = (o * weights(o, k)).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    return {
        "outputs": [encode(o) for o in outs],
        "grads": [encode(t.grad) if t.grad is not None else None for t in inputs],
    }


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {c["name"]: run(c) for c in cases}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
