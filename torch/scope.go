package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/petermattis/goid"
)

// Scope frees, when closed, every tensor that its goroutine made while it
// was the goroutine's innermost open scope, except the tensors kept:
//
//	s := torch.NewScope()
//	defer s.Close()
//	loss := step(batch)    // intermediate tensors belong to s
//	s.Keep(loss)           // loss outlives s
//
// Scopes nest; Keep hands a tensor to the enclosing scope, or, at the
// outermost level, to the caller (who frees it, or leaves it to the runtime
// cleanup). A scope belongs to the goroutine that opened it: tensors made by
// other goroutines are not its own, and it must be closed on its goroutine,
// innermost first.
//
// An open scope also locks its goroutine to its OS thread, so that all the
// libtorch calls inside it run on one thread: libtorch numbers autograd
// nodes from a counter kept per OS thread and orders the backward pass by
// those numbers, so a forward pass, its loss and their backward pass spread
// over several threads would accumulate gradients in an order that changes
// from run to run (see the package doc). A training step or an inference
// in one scope is therefore a function of its inputs.
type Scope struct {
	parent  *Scope
	gid     int64
	tensors []*Tensor
	handles []C.et_tensor // Close's list of handles to free
	closed  bool
}

// scopeBuffer holds the slices of a closed scope for the next one: a
// training step opens a scope per batch and fills it with hundreds of
// tensors, and growing the slices anew each time cost more than the
// bookkeeping itself.
type scopeBuffer struct {
	tensors []*Tensor
	handles []C.et_tensor
}

var scopeBuffers = sync.Pool{New: func() any { return new(scopeBuffer) }}

// innermost records a goroutine's innermost open scope (nil for none).
type innermost struct {
	gid   int64
	scope *Scope
}

// Scopes are found by goroutine id, which Go does not expose:
// github.com/petermattis/goid reads it from the runtime's goroutine
// structure, at a cost of a nanosecond, where the alternatives (parsing
// runtime.Stack, or a scope value passed to every operation) cost a
// microsecond per operation or a parameter on every call. goid is kept up
// to date with each Go release; TestGoroutineIDs checks it against the id
// that runtime.Stack prints, so a Go upgrade that breaks it fails the
// tests instead of mixing up scopes.
var (
	scopes     sync.Map     // goroutine id -> innermost open *Scope
	openScopes atomic.Int64 // lets the common, scope-free path skip the lookup
	// latest caches the entry of scopes that changed last. Every operation
	// looks up its goroutine's scope, and usually one goroutine does the
	// tensor work. Only goroutine gid ever stores an entry for gid, so an
	// entry found here with the caller's gid is the caller's latest.
	latest atomic.Pointer[innermost]
)

// setInnermost makes s (nil for none) the innermost scope of goroutine gid.
func setInnermost(gid int64, s *Scope) {
	if s != nil {
		scopes.Store(gid, s)
	} else {
		scopes.Delete(gid)
	}
	latest.Store(&innermost{gid: gid, scope: s})
}

// NewScope opens a scope on the current goroutine and locks the goroutine
// to its OS thread until the scope is closed.
func NewScope() *Scope {
	runtime.LockOSThread()
	gid := goid.Get()
	buf := scopeBuffers.Get().(*scopeBuffer)
	s := &Scope{gid: gid, tensors: buf.tensors[:0], handles: buf.handles[:0]}
	if p, ok := scopes.Load(gid); ok {
		s.parent = p.(*Scope)
	}
	setInnermost(gid, s)
	openScopes.Add(1)
	return s
}

func currentScope() *Scope {
	if openScopes.Load() == 0 {
		return nil
	}
	gid := goid.Get()
	if e := latest.Load(); e != nil && e.gid == gid {
		return e.scope
	}
	if s, ok := scopes.Load(gid); ok {
		return s.(*Scope)
	}
	return nil
}

func (s *Scope) add(t *Tensor) {
	t.scope = s
	s.tensors = append(s.tensors, t)
}

// Keep moves tensors out of the scope so that Close leaves them alone. They
// join the enclosing scope if there is one.
func (s *Scope) Keep(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.scope != s {
			continue
		}
		t.scope = nil
		if s.parent != nil {
			s.parent.add(t)
		} else if t.c != nil {
			t.manage()
		}
	}
}

// Close frees the scope's tensors and makes the enclosing scope current
// again. Closing twice is harmless. Closing a scope on another goroutine,
// or before the scopes opened inside it, panics with a *Error and frees
// nothing.
func (s *Scope) Close() {
	if s.closed {
		return
	}
	if goid.Get() != s.gid {
		panic(&Error{Op: "scope", Msg: "closed on a goroutine other than the one that opened it"})
	}
	if cur, _ := scopes.Load(s.gid); cur != s {
		panic(&Error{Op: "scope", Msg: "closed before the scopes opened inside it"})
	}
	s.closed = true
	// One cgo call frees them all: per-tensor calls would cost as much as
	// the small operations that made them.
	hs := s.handles
	for _, t := range s.tensors {
		if t.scope != s {
			continue // kept: it belongs to the enclosing scope or the caller now
		}
		t.scope = nil
		if t.c != nil {
			hs = append(hs, t.c)
			t.c = nil
		}
	}
	if len(hs) > 0 {
		C.et_free_many(&hs[0], C.int64_t(len(hs)))
	}
	clear(s.tensors)
	clear(hs)
	scopeBuffers.Put(&scopeBuffer{tensors: s.tensors[:0], handles: hs[:0]})
	s.tensors, s.handles = nil, nil
	setInnermost(s.gid, s.parent)
	openScopes.Add(-1)
	runtime.UnlockOSThread()
}

// Scoped runs f inside a new scope and closes it afterwards; f keeps what
// should outlive it with s.Keep.
func Scoped(f func(s *Scope)) {
	s := NewScope()
	defer s.Close()
	f(s)
}

// Unscope takes t out of the scope that would free it, so that only Free,
// or the runtime cleanup once t is unreachable, releases it. Stores of model
// parameters use it: a model built inside a scope outlives the scope.
func (t *Tensor) Unscope() *Tensor {
	t.handle("unscope")
	if t.scope != nil {
		t.scope = nil
		t.manage()
	}
	return t
}
