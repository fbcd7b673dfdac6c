"""TorchScript modules for the tests of package jit, and their outputs.

Usage: modules.py DIR

Writes into DIR scripted.pt (a scripted module with a submodule, batch
norm and exported methods taking and returning lists, dicts, tuples and
scalars), traced.pt (a traced module), checkpoint.pth (a torch.save state
dict, which is not TorchScript) and prints, as JSON, the input and every
output the Go test compares with: the scripted module's forward in
training mode, then in evaluation mode (its batch-norm statistics updated
by the training pass, as in Go), its other methods, and the traced
module's forward.
"""

import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
        y = self.block(x)
        return y * scale, self.head(y.mean(dim=(2, 3)))

    @torch.jit.export
    def mix(self, xs: List[torch.Tensor], d: Dict[str, torch.Tensor], n: int, flag: bool, name: str) -> Dict[str, torch.Tensor]:
        out = {name: torch.stack(xs).sum(0) * n}
        for k, v in d.items():
            out[k] = v + 1 if flag else v - 1
        return out

    @torch.jit.export
    def info(self, x: torch.Tensor) -> Tuple[int, float, bool, str, List[int], Optional[torch.Tensor]]:
        return x.dim(), float(x.sum()), x.is_contiguous(), "ok", x.shape, None

    @torch.jit.export
    def codes(self, names: List[str]) -> Dict[int, str]:
        return {i: s for i, s in enumerate(names)}


def flat(t):
    return t.detach().reshape(-1).tolist()


def main(out):
    torch.manual_seed(7)
    net = torch.jit.script(Net())
    net.save(os.path.join(out, "scripted.pt"))
    x = torch.randn(2, 3, 8, 8)
    ref = {"x": flat(x)}
    y, z = net(x, 0.5)
    ref["train"] = [flat(y), flat(z)]
    net.eval()
    y, z = net(x, 0.5)
    ref["eval"] = [flat(y), flat(z)]
    ref["params"] = [name for name, _ in net.named_parameters()]
    ref["buffers"] = [name for name, _ in net.named_buffers()]

    block = Block().eval()
    traced = torch.jit.trace(block, x)
    traced.save(os.path.join(out, "traced.pt"))
    ref["traced"] = flat(traced(x))
    torch.save(block.state_dict(), os.path.join(out, "checkpoint.pth"))
    print(json.dumps(ref))


if __name__ == "__main__":
    main(sys.argv[1])
