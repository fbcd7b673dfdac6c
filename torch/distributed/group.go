package distributed

/*
#include <stdlib.h>
#include "edema_c10d.h"
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/internal/handle"
)

// DefaultTimeout bounds every rendezvous and collective unless Options
// says otherwise; it is PyTorch's. A collective waits for the slowest rank,
// and the ranks of a sharded evaluation can finish minutes apart.
const DefaultTimeout = 30 * time.Minute

// Options tune Init and NewGroup.
type Options struct {
	// Timeout bounds the rendezvous and each collective (DefaultTimeout
	// when zero).
	Timeout time.Duration
	// Hostname is the address this process's Gloo device binds to and
	// announces to its peers. When empty: the first IPv4 address of the
	// interface GLOO_SOCKET_IFNAME names, as in PyTorch; else 127.0.0.1
	// when the store's host is a loopback address; else this machine's
	// host name.
	Hostname string
	// InitFile, when set, makes the processes meet through a FileStore at
	// this path instead of a TCPStore (PyTorch's file:// init method).
	InitFile string
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// Error is a failure of a rendezvous or a collective.
type Error struct {
	Rank, Size int    // this process's rank and the job's world size
	Op         string // what failed: "rendezvous", "all-reduce", ...
	Cause      string // why, in libtorch's words or in edema's
}

func (e *Error) Error() string {
	return fmt.Sprintf("distributed: rank %d of %d: %s: %s", e.Rank, e.Size, e.Op, e.Cause)
}

// Group is one process's end of a job's process group. Its collectives must
// be called in the same order on every rank; a Group serialises the calls
// of concurrent goroutines, but only the program can keep the order the
// same across ranks.
type Group struct {
	rank, size int
	timeout    time.Duration
	store      *Store

	failures atomic.Int64 // collectives that failed, numbering the store's reports

	mu      sync.Mutex
	gloo    C.et_pg
	cleanup runtime.Cleanup // frees gloo when the group is dropped unclosed
}

// Init joins the job the environment describes (see EnvFromOS): it makes
// or reaches the TCPStore at MASTER_ADDR:MASTER_PORT (or the FileStore of
// o.InitFile) and the Gloo group over it.
func Init(env Env, o Options) (*Group, error) {
	fail := func(err error) (*Group, error) {
		return nil, &Error{Rank: env.Rank, Size: env.WorldSize, Op: "rendezvous", Cause: err.Error()}
	}
	if err := env.validate(); err != nil {
		return fail(err)
	}
	var store *Store
	var err error
	switch {
	case o.InitFile != "":
		store, err = NewFileStore(o.InitFile, env.WorldSize, o.timeout())
	case env.UseAgentStore:
		store, err = NewTCPStore(env.MasterAddr, env.MasterPort, false, env.WorldSize, o.timeout())
		if err == nil {
			store, err = store.Prefix("/worker/attempt_" + strconv.Itoa(env.RestartCount))
		}
	default:
		store, err = NewTCPStore(env.MasterAddr, env.MasterPort, env.Rank == 0, env.WorldSize, o.timeout())
	}
	if err != nil {
		where := fmt.Sprintf("the store at %s", net.JoinHostPort(env.MasterAddr, strconv.Itoa(env.MasterPort)))
		if o.InitFile != "" {
			where = "the file store " + o.InitFile
		}
		return fail(fmt.Errorf("%s: %w", where, err))
	}
	if o.Hostname == "" {
		o.Hostname, err = glooHostname(env.MasterAddr)
		if err != nil {
			return fail(err)
		}
	}
	return NewGroup(store, env.Rank, env.WorldSize, o)
}

// glooHostname picks the address a Gloo device binds to (see
// Options.Hostname).
func glooHostname(master string) (string, error) {
	if name := os.Getenv("GLOO_SOCKET_IFNAME"); name != "" {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return "", fmt.Errorf("GLOO_SOCKET_IFNAME=%s: %w", name, err)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return "", fmt.Errorf("GLOO_SOCKET_IFNAME=%s: %w", name, err)
		}
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil {
				return ip.IP.String(), nil
			}
		}
		return "", fmt.Errorf("GLOO_SOCKET_IFNAME=%s has no IPv4 address", name)
	}
	if ips, err := net.LookupIP(master); err == nil && len(ips) > 0 && ips[0].IsLoopback() {
		return "127.0.0.1", nil
	}
	return os.Hostname()
}

// NewGroup makes this process's end of a Gloo group of size processes
// meeting through store. Before Gloo connects, every rank checks through
// the store that no other process claims its rank and that all agree on
// the world size, so that a mistaken launch fails with its reason rather
// than a timeout.
func NewGroup(store *Store, rank, size int, o Options) (*Group, error) {
	g := &Group{rank: rank, size: size, timeout: o.timeout(), store: store}
	if rank < 0 || rank >= size {
		return nil, g.error("rendezvous", fmt.Sprintf("rank %d is not in [0, %d)", rank, size))
	}
	if C.et_c10d_gloo_available() == 0 {
		return nil, g.error("rendezvous", "this shim was built without c10d's Gloo backend: install Gloo's headers (Debian's libgloo-dev) and rebuild it")
	}
	if err := g.agree(); err != nil {
		return nil, err
	}
	if o.Hostname == "" {
		o.Hostname = "127.0.0.1"
	}
	h := C.CString(o.Hostname)
	defer C.free(unsafe.Pointer(h))
	err := C.et_pg_gloo(store.c, C.int(rank), C.int(size), h, millis(g.timeout), &g.gloo)
	runtime.KeepAlive(store)
	if err != nil {
		return nil, g.error("rendezvous", "gloo: "+shimError(err).Error())
	}
	g.cleanup = runtime.AddCleanup(g, func(c C.et_pg) { C.et_pg_free(c) }, g.gloo)
	return g, nil
}

// agree checks the job's shape through the store before Gloo connects:
// each rank claims its rank and publishes the world size it was given;
// rank 0 reads every rank's and publishes its verdict, which every other
// rank reads (and acknowledges, so that rank 0, the store's host, stays
// until all have) before comparing its own size with rank 0's.
func (g *Group) agree() error {
	s := g.store
	storeErr := func(err error) error { return g.error("rendezvous", "the store: "+err.Error()) }
	n, err := s.Add("edema/rank/"+strconv.Itoa(g.rank), 1)
	if err != nil {
		return storeErr(err)
	}
	if n > 1 {
		return g.error("rendezvous", fmt.Sprintf("another process already joined as rank %d", g.rank))
	}
	if err := s.Set("edema/size/"+strconv.Itoa(g.rank), []byte(strconv.Itoa(g.size))); err != nil {
		return storeErr(err)
	}
	if g.rank != 0 {
		verdict, err := s.Get("edema/verdict")
		if err != nil {
			return g.error("rendezvous", fmt.Sprintf("rank 0 did not join within %v (%v)", g.timeout, err))
		}
		if _, err := s.Add("edema/verdict-read", 1); err != nil {
			return storeErr(err)
		}
		size0, err := s.Get("edema/size/0")
		if err != nil {
			return storeErr(err)
		}
		if string(size0) != strconv.Itoa(g.size) {
			return g.error("rendezvous", fmt.Sprintf("the world size is %d here but %s on rank 0", g.size, size0))
		}
		if len(verdict) > 0 {
			return g.error("rendezvous", "rank 0 refused the job: "+string(verdict))
		}
		return nil
	}
	var problems []string
	for r := 1; r < g.size; r++ {
		v, err := s.Get("edema/size/" + strconv.Itoa(r))
		if err != nil {
			return g.error("rendezvous", fmt.Sprintf("rank %d did not join within %v (%v)", r, g.timeout, err))
		}
		if string(v) != strconv.Itoa(g.size) {
			problems = append(problems, fmt.Sprintf("the world size is %d here but %s on rank %d", g.size, v, r))
		}
	}
	verdict := strings.Join(problems, "; ")
	if err := s.Set("edema/verdict", []byte(verdict)); err != nil {
		return storeErr(err)
	}
	for deadline := time.Now().Add(g.timeout); ; time.Sleep(20 * time.Millisecond) {
		read, err := s.Add("edema/verdict-read", 0)
		if err != nil {
			return storeErr(err)
		}
		if read >= int64(g.size-1) {
			break
		}
		if time.Now().After(deadline) {
			return g.error("rendezvous", fmt.Sprintf("only %d of the other %d ranks read rank 0's verdict within %v", read, g.size-1, g.timeout))
		}
	}
	if verdict != "" {
		return g.error("rendezvous", verdict)
	}
	return nil
}

// reportWindow is how long the survivors of a failed collective wait for
// each other's reports (see failed).
const reportWindow = 5 * time.Second

// failed is the error of a collective that failed, with the ranks that
// have likely stopped. Gloo names a peer by its address only; so each
// rank that sees a collective fail reports through the store, waits
// reportWindow for the others' reports, and names the ranks that made
// none. A store that cannot be reached names rank 0, its host.
func (g *Group) failed(op, cause string) *Error {
	n := g.failures.Add(1)
	key := func(r int) string { return fmt.Sprintf("edema/failed/%d/%d", n, r) }
	if _, err := g.store.Add(key(g.rank), 1); err != nil {
		return g.error(op, cause+" (the store cannot be reached either: rank 0, its host, has likely stopped)")
	}
	deadline := time.Now().Add(reportWindow)
	var silent []string
	for scanned := false; ; scanned = true {
		// The store's host, rank 0, may end its own window and exit
		// before this one ends: the last answers it gave stand then.
		now, closed := []string(nil), false
		for r := range g.size {
			v, err := g.store.Add(key(r), 0)
			if err != nil {
				closed = true
				break
			}
			if v == 0 {
				now = append(now, strconv.Itoa(r))
			}
		}
		if !closed {
			silent = now
		} else if !scanned {
			return g.error(op, cause+" (the store closed before the other ranks' reports could be read)")
		}
		if len(silent) == 0 {
			return g.error(op, cause+" (every rank reports the failure)")
		}
		if closed || time.Now().After(deadline) {
			ranks := "rank " + silent[0]
			if len(silent) > 1 {
				ranks = "ranks " + strings.Join(silent, ", ")
			}
			return g.error(op, fmt.Sprintf("%s (%s made no report within %v: likely stopped)", cause, ranks, reportWindow))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *Group) error(op, cause string) *Error {
	return &Error{Rank: g.rank, Size: g.size, Op: op, Cause: cause}
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.rank }

// Size is the number of processes in the job.
func (g *Group) Size() int { return g.size }

// Timeout is how long each collective may take.
func (g *Group) Timeout() time.Duration { return g.timeout }

// Store is the store the group met through, for a program's own
// coordination (keys under "edema/" are the group's).
func (g *Group) Store() *Store { return g.store }

// Close releases the group's connections. Peers still in a collective with
// this process fail.
func (g *Group) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gloo != nil {
		g.cleanup.Stop()
		C.et_pg_free(g.gloo)
		g.gloo = nil
	}
}

// ReduceOp is how AllReduce combines the ranks' tensors.
type ReduceOp int

const (
	Sum     ReduceOp = iota // the sum over ranks
	Average                 // the sum over ranks divided by the world size (as ReduceOp.AVG)
)

// Work is a collective in flight.
type Work struct {
	g    *Group
	c    C.et_work
	op   string
	keep []*torch.Tensor // the tensors libtorch works on
	then func()          // what Wait does once the collective is done
}

// Wait waits for the collective, up to the group's timeout.
func (w *Work) Wait() error {
	if w.c == nil {
		return w.g.error(w.op, "waited for twice")
	}
	err := C.et_work_wait(w.c, millis(w.g.timeout))
	C.et_work_free(w.c)
	w.c = nil
	runtime.KeepAlive(w.keep)
	if err != nil {
		return w.g.failed(w.op, shimError(err).Error())
	}
	if w.then != nil {
		return torch.Try(w.then)
	}
	return nil
}

// drop releases a collective's handle without waiting for it.
func (w *Work) drop() {
	if w.c != nil {
		C.et_work_free(w.c)
		w.c = nil
	}
}

// start issues one collective through call, which gets the group's
// backend, and returns its Work.
func (g *Group) start(op string, keep []*torch.Tensor, call func(pg C.et_pg, w *C.et_work) C.et_error) (w *Work, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gloo == nil {
		return nil, g.error(op, "the group is closed")
	}
	for _, t := range keep {
		if t == nil {
			return nil, g.error(op, "nil tensor")
		}
	}
	// The work handle is a local, filled before the Work exists.
	var c C.et_work
	if err := torch.Try(func() {
		if e := call(g.gloo, &c); e != nil {
			err = g.error(op, shimError(e).Error())
		}
	}); err != nil {
		return nil, g.error(op, err.Error())
	}
	if err != nil {
		return nil, err
	}
	return &Work{g: g, c: c, op: op, keep: keep}, nil
}

func tensorHandle(op string, t *torch.Tensor) C.et_tensor { return C.et_tensor(handle.Of(op, t)) }

// AllReduceAsync starts reducing t in place over the ranks: on return
// from Wait, t holds the combination of every rank's t.
func (g *Group) AllReduceAsync(op ReduceOp, t *torch.Tensor) (*Work, error) {
	if op != Sum && op != Average {
		return nil, g.error("all-reduce", fmt.Sprintf("unknown reduce op %d", op))
	}
	w, err := g.start("all-reduce", []*torch.Tensor{t}, func(pg C.et_pg, w *C.et_work) C.et_error {
		return C.et_pg_allreduce(pg, tensorHandle("all-reduce", t), 0, w)
	})
	if err == nil && op == Average {
		// Gloo has no average; PyTorch's DDP too divides the sum.
		w.then = func() { t.DivScalarInPlace(float64(g.size)) }
	}
	return w, err
}

// SumWithGradient returns the sum of t over the ranks as a new tensor that
// autograd differentiates, as torch.distributed.nn.functional.all_reduce
// does: the backward pass sums the output's gradients over the ranks into
// the gradient of t. Every rank calls it, and runs the backward pass
// through it, in the same order; a failure in the backward pass panics
// there with a *torch.Error, as any failed operation does. The autograd
// graph keeps the group's backend alive until the backward pass is done.
func (g *Group) SumWithGradient(t *torch.Tensor) (*torch.Tensor, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gloo == nil {
		return nil, g.error("all-reduce", "the group is closed")
	}
	if t == nil {
		return nil, g.error("all-reduce", "nil tensor")
	}
	var sum *torch.Tensor
	var failure string
	if err := torch.Try(func() {
		var out C.et_tensor
		if e := C.et_pg_sum_autograd(g.gloo, tensorHandle("all-reduce", t), millis(g.timeout), &out); e != nil {
			failure = shimError(e).Error()
			return
		}
		sum = handle.Wrap(unsafe.Pointer(out)).(*torch.Tensor)
	}); err != nil {
		return nil, g.error("all-reduce", err.Error())
	}
	runtime.KeepAlive(t)
	if failure != "" {
		return nil, g.failed("all-reduce", failure)
	}
	return sum, nil
}

// AllReduce reduces t in place over the ranks.
func (g *Group) AllReduce(op ReduceOp, t *torch.Tensor) error {
	return wait(g.AllReduceAsync(op, t))
}

// Broadcast copies root's t into every rank's t (same shape and dtype).
func (g *Group) Broadcast(root int, t *torch.Tensor) error {
	if root < 0 || root >= g.size {
		return g.error("broadcast", fmt.Sprintf("root %d is not a rank of %d", root, g.size))
	}
	return wait(g.start("broadcast", []*torch.Tensor{t}, func(pg C.et_pg, w *C.et_work) C.et_error {
		return C.et_pg_broadcast(pg, tensorHandle("broadcast", t), C.int(root), w)
	}))
}

// AllGather returns every rank's t, in rank order; t has the same shape
// and dtype on every rank.
func (g *Group) AllGather(t *torch.Tensor) ([]*torch.Tensor, error) {
	if t == nil {
		return nil, g.error("all-gather", "nil tensor")
	}
	outs := make([]*torch.Tensor, g.size)
	hs := make([]C.et_tensor, g.size)
	if err := torch.Try(func() {
		for r := range outs {
			outs[r] = torch.Empty(t.Shape(), torch.Options{DType: t.DType(), Device: t.Device()})
			hs[r] = tensorHandle("all-gather", outs[r])
		}
	}); err != nil {
		return nil, g.error("all-gather", err.Error())
	}
	keep := append([]*torch.Tensor{t}, outs...)
	err := wait(g.start("all-gather", keep, func(pg C.et_pg, w *C.et_work) C.et_error {
		return C.et_pg_allgather(pg, tensorHandle("all-gather", t), &hs[0], C.int64_t(len(hs)), w)
	}))
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// AllGatherBytes returns every rank's b, in rank order; the lengths may
// differ. Programs gather their results with it (a rank's figures as
// JSON, say).
func (g *Group) AllGatherBytes(b []byte) (out [][]byte, err error) {
	defer func() {
		if e := recover(); e != nil {
			te, ok := e.(*torch.Error)
			if !ok {
				panic(e)
			}
			out, err = nil, g.error("all-gather", te.Error())
		}
	}()
	lengths, err := g.AllGather(torch.FromSlice([]int64{int64(len(b))}, 1))
	if err != nil {
		return nil, err
	}
	longest := int64(0)
	sizes := make([]int64, len(lengths))
	for r, l := range lengths {
		sizes[r] = l.Int64s()[0]
		longest = max(longest, sizes[r])
	}
	padded := make([]byte, longest+1) // never empty, so that the tensor has data
	copy(padded, b)
	parts, err := g.AllGather(torch.FromSlice(padded, longest+1))
	if err != nil {
		return nil, err
	}
	out = make([][]byte, len(parts))
	for r, p := range parts {
		out[r] = torch.Data[uint8](p)[:sizes[r]]
	}
	return out, nil
}

// Barrier returns once every rank has reached it.
func (g *Group) Barrier() error {
	return wait(g.start("barrier", nil, func(pg C.et_pg, w *C.et_work) C.et_error {
		return C.et_pg_barrier(pg, w)
	}))
}

func wait(w *Work, err error) error {
	if err != nil {
		return err
	}
	return w.Wait()
}

// Shard is this rank's part [lo, hi) of n items split into contiguous
// blocks in rank order, the first n mod size ranks taking one more. Parts
// gathered in rank order are then the items in their order.
func (g *Group) Shard(n int) (lo, hi int) {
	return shard(n, g.rank, g.size)
}

func shard(n, rank, size int) (lo, hi int) {
	q, r := n/size, n%size
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}

// AllGatherResults gathers the parts of a sharded computation that can
// fail: each rank gives its result or its error, and every rank gets
// every result in rank order, or an error naming each rank that failed
// and why. No rank waits out the timeout for a peer whose part failed.
func (g *Group) AllGatherResults(result []byte, err error) ([][]byte, error) {
	msg := append([]byte{0}, result...)
	if err != nil {
		msg = append([]byte{1}, err.Error()...)
	}
	parts, gerr := g.AllGatherBytes(msg)
	if gerr != nil {
		if err != nil {
			return nil, fmt.Errorf("%w (and gathering the ranks' results failed: %v)", err, gerr)
		}
		return nil, gerr
	}
	var failed []string
	out := make([][]byte, len(parts))
	for r, p := range parts {
		if len(p) == 0 {
			return nil, g.error("all-gather", fmt.Sprintf("rank %d sent an empty result", r))
		}
		if p[0] == 1 {
			failed = append(failed, fmt.Sprintf("rank %d: %s", r, p[1:]))
		}
		out[r] = p[1:]
	}
	if len(failed) > 0 {
		return nil, &ResultsError{Msg: strings.Join(failed, "; "), Err: err}
	}
	return out, nil
}

// ResultsError is AllGatherResults's failure: Msg names each rank that
// failed and why; Err is this rank's own error, if it failed too (so that
// errors.Is finds a context.Canceled of its own).
type ResultsError struct {
	Msg string
	Err error
}

func (e *ResultsError) Error() string { return e.Msg }
func (e *ResultsError) Unwrap() error { return e.Err }
