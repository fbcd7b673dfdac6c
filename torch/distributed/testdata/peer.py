"""One rank of a job of edema and PyTorch processes: PyTorch's own
TCPStore and ProcessGroupGloo, with edema's check of the job's shape
(torch/distributed's Group.agree: each rank claims its rank and publishes
the world size, rank 0 publishes its verdict), then the collectives of the
Go side's "mixed" worker, in the same order.

    python3 peer.py PORT RANK SIZE
"""
import datetime
import os
import sys
import time

import torch
import torch.distributed as dist

port, rank, size = (int(a) for a in sys.argv[1:4])
timeout = datetime.timedelta(seconds=60)
try:  # PyTorch 2.4+ defaults to a libuv server that Debian's build lacks
    store = dist.TCPStore("127.0.0.1", port, size, rank == 0, timeout, use_libuv=False)
except TypeError:  # releases before the option
    store = dist.TCPStore("127.0.0.1", port, size, rank == 0, timeout)
assert store.add(f"edema/rank/{rank}", 1) == 1
store.set(f"edema/size/{rank}", str(size))
if rank == 0:
    for r in range(1, size):
        assert store.get(f"edema/size/{r}").decode() == str(size)
    store.set("edema/verdict", "")
    while store.add("edema/verdict-read", 0) < size - 1:
        time.sleep(0.02)
else:
    assert store.get("edema/verdict") == b""
    store.add("edema/verdict-read", 1)
    assert store.get("edema/size/0").decode() == str(size)

opts = dist.ProcessGroupGloo._Options()
opts._timeout = timeout
opts._devices = [dist.ProcessGroupGloo.create_device(hostname="127.0.0.1")]
pg = dist.ProcessGroupGloo(store, rank, size, opts)

t = torch.tensor([rank + 1.0, 2.0 * (rank + 1)])
pg.allreduce([t]).wait()
b = torch.full((3,), float(rank))
root = dist.BroadcastOptions()
root.rootRank = 0
pg.broadcast([b], root).wait()
outs = [torch.empty(2, dtype=torch.float64) for _ in range(size)]
pg.allgather([outs], [torch.tensor([rank, rank * 0.5], dtype=torch.float64)]).wait()
pg.barrier().wait()
print("sum", t.tolist(), "broadcast", b.tolist(), "gathered", [o.tolist() for o in outs], flush=True)
# Out without libtorch's destructors: PyTorch 2.6's abort (std::terminate)
# when the store's host leaves with a client still connected.
os._exit(0)
