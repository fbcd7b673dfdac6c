package distributed

// The same shim as package torch, through the same two ways of finding it
// (cgo_checkout.go, cgo_pkgconfig.go). Every function of edema_c10d.h is
// noescape and nocallback, as in torch/cgo.go; torch's TestShimFunctionsAnnotated
// checks the list.

/*
#cgo CFLAGS: -I${SRCDIR}/..
#cgo LDFLAGS: -Wl,--enable-new-dtags
#cgo noescape et_store_tcp
#cgo nocallback et_store_tcp
#cgo noescape et_store_file
#cgo nocallback et_store_file
#cgo noescape et_store_prefix
#cgo nocallback et_store_prefix
#cgo noescape et_store_set
#cgo nocallback et_store_set
#cgo noescape et_store_get
#cgo nocallback et_store_get
#cgo noescape et_store_add
#cgo nocallback et_store_add
#cgo noescape et_store_free
#cgo nocallback et_store_free
#cgo noescape et_c10d_gloo_available
#cgo nocallback et_c10d_gloo_available
#cgo noescape et_pg_gloo
#cgo nocallback et_pg_gloo
#cgo noescape et_pg_free
#cgo nocallback et_pg_free
#cgo noescape et_pg_sum_autograd
#cgo nocallback et_pg_sum_autograd
#cgo noescape et_pg_allreduce
#cgo nocallback et_pg_allreduce
#cgo noescape et_pg_broadcast
#cgo nocallback et_pg_broadcast
#cgo noescape et_pg_allgather
#cgo nocallback et_pg_allgather
#cgo noescape et_pg_barrier
#cgo nocallback et_pg_barrier
#cgo noescape et_work_wait
#cgo nocallback et_work_wait
#cgo noescape et_work_free
#cgo nocallback et_work_free
*/
import "C"
