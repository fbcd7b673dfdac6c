// c10d: stores, the Gloo backend and its collectives, one libtorch call
// each.
//
// libtorch 1.13's backends derive from c10d::ProcessGroup; from 2.0 they
// derive from c10d::Backend, which c10d::ProcessGroup dispatches to by
// device. Both have the same collective methods, so the shim holds the
// backend itself, through the base class of its version.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#ifdef EDEMA_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <chrono>
#include <vector>

#include "edema_c10d.h"
#include "shim.hpp"

#if TORCH_VERSION_MAJOR >= 2
using et_backend = c10d::Backend;
#else
using et_backend = c10d::ProcessGroup;
#endif

struct et_store_s {
  c10::intrusive_ptr<c10d::Store> s;
};
struct et_pg_s {
  c10::intrusive_ptr<et_backend> pg;
};
struct et_work_s {
  c10::intrusive_ptr<c10d::Work> w;
};

namespace {
// libtorch 2.4 and later default TCPStore to its libuv server, which
// builds without libuv (Debian's) refuse; the classic server of every
// release serves a job of this size as well. Older releases have no such
// option, hence the overloads.
template <typename O>
auto classic_server(O &o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <typename O>
void classic_server(O &, long) {}

std::vector<at::Tensor> tensors(const et_tensor *ts, int64_t n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v.push_back(ts[i]->t);
  return v;
}
// SumAcrossRanks is the all-reduce (sum) as an autograd operation, as
// torch.distributed.nn.functional.all_reduce is: every rank's output is
// the sum of the inputs, so the gradient of an input is the sum of the
// outputs' gradients, which the backward pass all-reduces in turn. The
// context keeps a reference to the backend (as a capsule: saved_data holds
// IValues), so that it outlives the Go group if the graph does.
struct SumAcrossRanks : torch::autograd::Function<SumAcrossRanks> {
  static at::Tensor sum(const c10::intrusive_ptr<et_backend> &pg, at::Tensor t, int64_t timeout_ms) {
    std::vector<at::Tensor> v{t};
    pg->allreduce(v)->wait(std::chrono::milliseconds(timeout_ms));
    return t;
  }
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x,
                            c10::intrusive_ptr<et_backend> pg, int64_t timeout_ms) {
    ctx->saved_data["pg"] = c10::IValue::make_capsule(pg);
    ctx->saved_data["timeout_ms"] = timeout_ms;
    return sum(pg, x.clone(at::MemoryFormat::Contiguous), timeout_ms);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto pg = c10::static_intrusive_pointer_cast<et_backend>(ctx->saved_data["pg"].toCapsule());
    return {sum(pg, grads[0].clone(at::MemoryFormat::Contiguous), ctx->saved_data["timeout_ms"].toInt()), at::Tensor(),
            at::Tensor()};
  }
};
}  // namespace

extern "C" {

et_error et_pg_sum_autograd(et_pg pg, et_tensor t, int64_t timeout_ms, et_tensor *out) {
  ET_TRY(*out = et_wrap(SumAcrossRanks::apply(t->t, pg->pg, timeout_ms)))
}

et_error et_store_tcp(const char *host, int port, int is_server, int64_t world, int wait_workers, int64_t timeout_ms,
                      et_store *out) {
  ET_TRY({
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    if (world > 0) o.numWorkers = static_cast<std::size_t>(world);
    o.waitWorkers = wait_workers != 0;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    classic_server(o, 0);
    *out = new et_store_s{c10::make_intrusive<c10d::TCPStore>(host, o)};
  })
}

et_error et_store_file(const char *path, int64_t world, int64_t timeout_ms, et_store *out) {
  ET_TRY({
    auto s = c10::make_intrusive<c10d::FileStore>(path, static_cast<int>(world));
    s->setTimeout(std::chrono::milliseconds(timeout_ms));
    *out = new et_store_s{s};
  })
}

et_error et_store_prefix(const char *prefix, et_store base, et_store *out) {
  ET_TRY(*out = new et_store_s{c10::make_intrusive<c10d::PrefixStore>(prefix, base->s)})
}

et_error et_store_set(et_store s, const char *key, const void *data, size_t n) {
  ET_TRY({
    auto p = static_cast<const uint8_t *>(data);
    s->s->set(key, std::vector<uint8_t>(p, p + n));
  })
}

et_error et_store_get(et_store s, const char *key, void **data, size_t *n) {
  ET_TRY({
    std::vector<uint8_t> v = s->s->get(key);
    *data = std::malloc(v.empty() ? 1 : v.size());
    if (*data == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(*data, v.data(), v.size());
    *n = v.size();
  })
}

et_error et_store_add(et_store s, const char *key, int64_t delta, int64_t *out) {
  ET_TRY(*out = s->s->add(key, delta))
}

void et_store_free(et_store s) { delete s; }

int et_c10d_gloo_available(void) {
#ifdef EDEMA_WITH_GLOO
  return 1;
#else
  return 0;
#endif
}

et_error et_pg_gloo(et_store s, int rank, int size, const char *hostname, int64_t timeout_ms, et_pg *out) {
#ifdef EDEMA_WITH_GLOO
  ET_TRY({
    auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    *out = new et_pg_s{c10::make_intrusive<c10d::ProcessGroupGloo>(s->s, rank, size, opts)};
  })
#else
  (void)s, (void)rank, (void)size, (void)hostname, (void)timeout_ms, (void)out;
  return et_message("this shim was built without c10d's Gloo backend: install Gloo's headers (Debian's libgloo-dev) and rebuild it");
#endif
}

void et_pg_free(et_pg pg) { delete pg; }

et_error et_pg_allreduce(et_pg pg, et_tensor t, int op, et_work *out) {
  ET_TRY({
    std::vector<at::Tensor> v{t->t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp(static_cast<c10d::ReduceOp::RedOpType>(op));
    *out = new et_work_s{pg->pg->allreduce(v, o)};
  })
}

et_error et_pg_broadcast(et_pg pg, et_tensor t, int root, et_work *out) {
  ET_TRY({
    std::vector<at::Tensor> v{t->t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    *out = new et_work_s{pg->pg->broadcast(v, o)};
  })
}

et_error et_pg_allgather(et_pg pg, et_tensor in, const et_tensor *outs, int64_t n, et_work *out) {
  ET_TRY({
    std::vector<std::vector<at::Tensor>> o{tensors(outs, n)};
    std::vector<at::Tensor> i{in->t};
    *out = new et_work_s{pg->pg->allgather(o, i)};
  })
}

et_error et_pg_barrier(et_pg pg, et_work *out) { ET_TRY(*out = new et_work_s{pg->pg->barrier()}) }

et_error et_work_wait(et_work w, int64_t timeout_ms) {
  ET_TRY({
    if (!w->w->wait(std::chrono::milliseconds(timeout_ms))) throw std::runtime_error("timed out");
  })
}

void et_work_free(et_work w) { delete w; }

}  // extern "C"
