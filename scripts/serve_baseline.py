#!/usr/bin/python3
"""The Python baseline of edema serve: PyTorch eager behind ThreadingHTTPServer.

POST /v1/segment with an 8-bit grey B-scan BMP answers what edema serve
answers: per slice, the detection probabilities of REA, SRF and PED and the
pixels of each class. The network is the reference UNet of
models/testdata/reference_models.py, normalised as info.json says. It is
what a Python user would write with the standard library, for
scripts/bench_serve.sh to compare with.

    serve_baseline.py --port P [--threads N] [--network unet]
    serve_baseline.py --write-checkpoint PATH --write-info PATH --write-slice PATH
"""

import argparse
import json
import os
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "testdata"))
import reference_models  # noqa: E402

MEAN = [0.25, 0.26, 0.27]
STD = [0.18, 0.19, 0.2]
LESIONS = ["REA", "SRF", "PED"]


def build(name):
    torch.manual_seed(0)
    return reference_models.NETWORKS[name]().eval()


def read_bmp(data):
    """An 8-bit BMP with a grey palette, as edema and the challenge write them."""
    if data[:2] != b"BM":
        raise ValueError("not a BMP")
    offset, = struct.unpack_from("<I", data, 10)
    width, height, _, bpp = struct.unpack_from("<iiHH", data, 18)
    if bpp != 8:
        raise ValueError("want an 8-bit BMP, got %d bits" % bpp)
    row = (width + 3) // 4 * 4
    rows = np.frombuffer(data, np.uint8, row * abs(height), offset).reshape(abs(height), row)[:, :width]
    return rows[::-1] if height > 0 else rows


def write_bmp(path, grey):
    h, w = grey.shape
    palette = bytes(b for v in range(256) for b in (v, v, v, 0))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + w * h, 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 8, 0, w * h, 2835, 2835, 256, 0)
    with open(path, "wb") as f:
        f.write(header + info + palette + np.ascontiguousarray(grey[::-1]).tobytes())


def handler(net):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            if self.path != "/v1/segment":
                return self.answer(404, {"error": "no endpoint " + self.path})
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                grey = read_bmp(data)
            except ValueError as e:
                return self.answer(400, {"error": str(e)})
            x = torch.from_numpy(grey.astype(np.float32) / 255).expand(1, 3, *grey.shape)
            x = (x - mean) / std
            with torch.inference_mode():
                seg, det = net(x)
                labels = seg.argmax(1)[0]
            counts = torch.bincount(labels.flatten(), minlength=4).tolist()
            self.answer(200, {"slices": [{
                "index": 0,
                "detection": dict(zip(LESIONS, det[0].tolist())),
                "pixels": dict(zip(["background"] + LESIONS, counts)),
            }]})

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--network", default="unet", choices=list(reference_models.NETWORKS))
    ap.add_argument("--write-checkpoint")
    ap.add_argument("--write-info")
    ap.add_argument("--write-slice")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=1024)
    args = ap.parse_args()
    if args.write_checkpoint:
        net = build(args.network)
        torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, args.write_checkpoint)
        with open(args.write_info, "w") as f:
            json.dump({"mean": MEAN, "std": STD}, f)
        y, x = np.mgrid[0:args.height, 0:args.width]
        write_bmp(args.write_slice, ((x * 7 + y * 3 + (x * y) % 97) % 256).astype(np.uint8))
        return
    torch.set_num_threads(args.threads)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(build(args.network)))
    print("serving on http://127.0.0.1:%d" % args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
