/*
 * edema_c10d.h: the plain-C interface of the shim's part over c10d, the
 * distributed engine of libtorch (the one under torch.distributed).
 *
 * The conventions are edema_torch.h's: every function that can fail
 * returns an et_error (NULL or a malloc'd message), results come back
 * through out-parameters, and no C++ type crosses this header.
 *
 * An et_store is a c10d key-value store (TCPStore, FileStore or a
 * PrefixStore over one), through which the processes of a job meet. An
 * et_pg is one process's end of a c10d backend (ProcessGroupGloo): the
 * collectives start on its worker threads and return an et_work, which
 * et_work_wait waits for. c10d keeps its own references to the tensors
 * handed to a collective, so freeing their et_tensor handles, or the work,
 * early is safe.
 *
 * A shim built without Gloo's headers (Debian's libgloo-dev) has every
 * function here; et_c10d_gloo_available reports 0 and et_pg_gloo fails
 * with a message saying so.
 */
#ifndef EDEMA_C10D_H
#define EDEMA_C10D_H

#include "edema_torch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_store_s *et_store;
typedef struct et_pg_s *et_pg;
typedef struct et_work_s *et_work;

/* Stores. A TCPStore server (is_server) listens on port and, when
 * wait_workers, waits until world processes have connected; a client
 * connects to host:port, retrying until timeout_ms. */
et_error et_store_tcp(const char *host, int port, int is_server, int64_t world, int wait_workers, int64_t timeout_ms,
                      et_store *out);
et_error et_store_file(const char *path, int64_t world, int64_t timeout_ms, et_store *out);
et_error et_store_prefix(const char *prefix, et_store base, et_store *out);
et_error et_store_set(et_store s, const char *key, const void *data, size_t n);
/* et_store_get waits up to the store's timeout for key; *data is malloc'd. */
et_error et_store_get(et_store s, const char *key, void **data, size_t *n);
et_error et_store_add(et_store s, const char *key, int64_t delta, int64_t *out);
void et_store_free(et_store s);

/* Gloo. hostname is the address this process's Gloo device binds to and
 * announces to its peers. */
int et_c10d_gloo_available(void);
et_error et_pg_gloo(et_store s, int rank, int size, const char *hostname, int64_t timeout_ms, et_pg *out);
void et_pg_free(et_pg pg);

/* Collectives, on one tensor each (c10d's tensor lists stand for one
 * tensor per device of a process). op is a c10d::ReduceOp code, 0 for sum.
 * broadcast sends root's tensor; allgather fills outs[r] with rank r's
 * input (n = the group's size). */
/* The sum of t over the ranks, as a new tensor that autograd
 * differentiates: the backward pass sums the gradients over the ranks,
 * with the same timeout. Synchronous; the graph keeps the backend alive. */
et_error et_pg_sum_autograd(et_pg pg, et_tensor t, int64_t timeout_ms, et_tensor *out);
et_error et_pg_allreduce(et_pg pg, et_tensor t, int op, et_work *out);
et_error et_pg_broadcast(et_pg pg, et_tensor t, int root, et_work *out);
et_error et_pg_allgather(et_pg pg, et_tensor in, const et_tensor *outs, int64_t n, et_work *out);
et_error et_pg_barrier(et_pg pg, et_work *out);
et_error et_work_wait(et_work w, int64_t timeout_ms);
void et_work_free(et_work w);

#ifdef __cplusplus
}
#endif

#endif
