"""PyTorch reference of the edema networks: UNet, UNet++, dilated UNet++.

The Go package models is checked against these classes. They have the
module tree of the original AI Challenger 2018 code (its unetConv2, unetUp
and unetConv2_dilation blocks), hence its state-dict keys, and they draw
their random numbers in its order: each block re-initialises its own layers
right after building them (Kaiming normal on plain and transposed
convolutions, N(1, 0.02) on batch-norm weights), and each network finally
re-initialises every nn.Conv2d (not nn.ConvTranspose2d) and nn.BatchNorm2d
in self.modules() order.

Tensors travel between Go and Python as NAME.json (an index: key, dtype,
shape, byte offset of every tensor, in order) beside NAME.bin (the raw
little-endian elements, one tensor after the other).

Usage:
    reference_models.py check DIR...
        for each DIR holding meta.json ({"name", "seed", "dropout_seed"}),
        weights.{json,bin} and inputs.{json,bin} (x, w, v), writes
        DIR/init.*: the state dict of network name built after
        torch.manual_seed(seed), and DIR/reference.*: with the weights
        loaded, the eval-mode outputs, then those of a train-mode pass
        seeded with dropout_seed, the loss sum(seg*w) + sum(det*v), the
        state dict after the pass and the loss's gradients.
"""

import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FILTERS = [16, 32, 64, 128, 256]
IN_CHANNELS, NUM_CLASSES, NUM_LESIONS = 3, 4, 3


def reinit_block(*modules):
    """The original's init_weights(m, 'kaiming') on each of modules."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.constant_(m.bias, 0.0)


def reinit_network(net):
    """The loop that ends the original networks' constructors."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d) or isinstance(m, nn.BatchNorm2d):
            reinit_block(m)


class DoubleConv(nn.Module):
    """Two steps of 3x3 conv, batch norm (if batch_norm) and ReLU."""

    def __init__(self, cin, cout, batch_norm):
        super().__init__()
        for i in (1, 2):
            layers = [nn.Conv2d(cin, cout, 3, 1, 1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            setattr(self, "conv%d" % i, nn.Sequential(*layers))
            cin = cout
        reinit_block(self.conv1, self.conv2)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class Up(nn.Module):
    """Transposed conv x2 of the lower level, concat with skips, DoubleConv."""

    def __init__(self, low, skip, n_concat=2):
        super().__init__()
        self.conv = DoubleConv(low + (n_concat - 2) * skip, skip, False)
        self.up = nn.ConvTranspose2d(low, skip, kernel_size=4, stride=2, padding=1)
        reinit_block(self.up)

    def forward(self, lower, *skips):
        return self.conv(torch.cat([self.up(lower), *skips], 1))


class DilatedBlock(nn.Module):
    """Four chained 3x3 conv-BN-ReLU steps, dilation 1, 2, 4, 8, summed."""

    def __init__(self, c):
        super().__init__()
        for i in range(1, 5):
            d = 2 ** (i - 1)
            setattr(self, "conv%d" % i, nn.Sequential(
                nn.Conv2d(c, c, 3, 1, d, d), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
        reinit_block(self.conv1, self.conv2, self.conv3, self.conv4)

    def forward(self, x):
        y1 = self.conv1(x)
        y2 = self.conv2(y1)
        y3 = self.conv3(y2)
        y4 = self.conv4(y3)
        return x + y1 + y2 + y3 + y4


def detection_head(c):
    return nn.Sequential(nn.Dropout(p=0.5), nn.Conv2d(c, NUM_LESIONS, 1),
                         nn.AdaptiveMaxPool2d(1), nn.Sigmoid())


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        f = FILTERS
        self.conv1 = DoubleConv(IN_CHANNELS, f[0], True)
        self.maxpool = nn.MaxPool2d(kernel_size=2)
        self.conv2 = DoubleConv(f[0], f[1], True)
        self.conv3 = DoubleConv(f[1], f[2], True)
        self.conv4 = DoubleConv(f[2], f[3], True)
        self.center = DoubleConv(f[3], f[4], True)
        self.cls = detection_head(f[4])
        self.up_concat4 = Up(f[4], f[3])
        self.up_concat3 = Up(f[3], f[2])
        self.up_concat2 = Up(f[2], f[1])
        self.up_concat1 = Up(f[1], f[0])
        self.final_1 = nn.Conv2d(f[0], NUM_CLASSES, 1)
        reinit_network(self)

    def forward(self, x):
        conv1 = self.conv1(x)
        conv2 = self.conv2(self.maxpool(conv1))
        conv3 = self.conv3(self.maxpool(conv2))
        conv4 = self.conv4(self.maxpool(conv3))
        center = self.center(self.maxpool(conv4))
        det = self.cls(center).view(x.shape[0], NUM_LESIONS)
        up4 = self.up_concat4(center, conv4)
        up3 = self.up_concat3(up4, conv3)
        up2 = self.up_concat2(up3, conv2)
        up1 = self.up_concat1(up2, conv1)
        return F.log_softmax(self.final_1(up1), dim=1), det


class UNetNested(nn.Module):
    def __init__(self, dilated=False):
        super().__init__()
        f = FILTERS
        self.conv00 = DoubleConv(IN_CHANNELS, f[0], True)
        self.maxpool = nn.MaxPool2d(kernel_size=2)
        self.conv10 = DoubleConv(f[0], f[1], True)
        self.conv20 = DoubleConv(f[1], f[2], True)
        self.conv30 = DoubleConv(f[2], f[3], True)
        self.conv40 = DoubleConv(f[3], f[4], True)
        self.dilated = DilatedBlock(f[4]) if dilated else None
        self.cls = detection_head(f[4])
        self.up_concat01 = Up(f[1], f[0])
        self.up_concat11 = Up(f[2], f[1])
        self.up_concat21 = Up(f[3], f[2])
        self.up_concat31 = Up(f[4], f[3])
        self.up_concat02 = Up(f[1], f[0], 3)
        self.up_concat12 = Up(f[2], f[1], 3)
        self.up_concat22 = Up(f[3], f[2], 3)
        self.up_concat03 = Up(f[1], f[0], 4)
        self.up_concat13 = Up(f[2], f[1], 4)
        self.up_concat04 = Up(f[1], f[0], 5)
        self.final_1 = nn.Conv2d(f[0], NUM_CLASSES, 1)
        self.final_2 = nn.Conv2d(f[0], NUM_CLASSES, 1)
        self.final_3 = nn.Conv2d(f[0], NUM_CLASSES, 1)
        self.final_4 = nn.Conv2d(f[0], NUM_CLASSES, 1)
        reinit_network(self)

    def forward(self, x):
        x00 = self.conv00(x)
        x10 = self.conv10(self.maxpool(x00))
        x20 = self.conv20(self.maxpool(x10))
        x30 = self.conv30(self.maxpool(x20))
        x40 = self.conv40(self.maxpool(x30))
        if self.dilated is not None:
            x40 = self.dilated(x40)
        det = self.cls(x40).view(x.shape[0], NUM_LESIONS)
        x01 = self.up_concat01(x10, x00)
        x11 = self.up_concat11(x20, x10)
        x21 = self.up_concat21(x30, x20)
        x31 = self.up_concat31(x40, x30)
        x02 = self.up_concat02(x11, x00, x01)
        x12 = self.up_concat12(x21, x10, x11)
        x22 = self.up_concat22(x31, x20, x21)
        x03 = self.up_concat03(x12, x00, x01, x02)
        x13 = self.up_concat13(x22, x10, x11, x12)
        x04 = self.up_concat04(x13, x00, x01, x02, x03)
        final = (self.final_1(x01) + self.final_2(x02) + self.final_3(x03) + self.final_4(x04)) / 4
        return F.log_softmax(final, dim=1), det


NETWORKS = {
    "unet": UNet,
    "unet_nested": lambda: UNetNested(dilated=False),
    "unet_nested_dilated": lambda: UNetNested(dilated=True),
}

DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}


def save_tensors(prefix, named):
    """Write (key, tensor) pairs to prefix.json and prefix.bin."""
    index, offset = [], 0
    with open(prefix + ".bin", "wb") as f:
        for key, t in named:
            data = t.detach().cpu().contiguous().numpy().tobytes()
            index.append({"key": key, "dtype": str(t.dtype).replace("torch.", ""),
                          "shape": list(t.shape), "offset": offset})
            f.write(data)
            offset += len(data)
    with open(prefix + ".json", "w") as f:
        json.dump(index, f)


def load_tensors(prefix):
    """Read prefix.json and prefix.bin into a dict of tensors, in order."""
    with open(prefix + ".json") as f:
        index = json.load(f)
    raw = open(prefix + ".bin", "rb").read()
    out = {}
    for e in index:
        dtype = DTYPES[e["dtype"]]
        n = int(np.prod(e["shape"], dtype=np.int64))
        size = torch.empty(0, dtype=dtype).element_size()
        buf = raw[e["offset"]:e["offset"] + n * size]
        arr = np.frombuffer(buf, dtype=torch.empty(0, dtype=dtype).numpy().dtype).copy()
        out[e["key"]] = torch.from_numpy(arr).reshape(e["shape"])
    return out


def check(folder):
    with open(folder + "/meta.json") as f:
        meta = json.load(f)
    torch.manual_seed(meta["seed"])
    net = NETWORKS[meta["name"]]()
    save_tensors(folder + "/init", net.state_dict().items())
    net.load_state_dict(load_tensors(folder + "/weights"), strict=True)
    inputs = load_tensors(folder + "/inputs")
    x, w, v = inputs["x"], inputs["w"], inputs["v"]
    out = []

    net.eval()
    with torch.no_grad():
        seg, det = net(x)
    out += [("eval.seg", seg), ("eval.det", det)]

    net.train()
    torch.manual_seed(meta["dropout_seed"])
    seg, det = net(x)
    loss = (seg * w).sum() + (det * v).sum()
    loss.backward()
    out += [("train.seg", seg), ("train.det", det), ("train.loss", loss)]
    out += [("state." + k, t) for k, t in net.state_dict().items()]
    out += [("grad." + k, p.grad) for k, p in net.named_parameters()]
    save_tensors(folder + "/reference", out)


def main(argv):
    if len(argv) >= 3 and argv[1] == "check":
        for folder in argv[2:]:
            check(folder)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
