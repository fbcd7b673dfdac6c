package torch

/*
#include "edema_torch.h"
*/
import "C"

import (
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
type Scope struct {
	parent  *Scope
	gid     int64
	tensors []*Tensor
	closed  bool
}

var (
	scopes     sync.Map     // goroutine id -> innermost open *Scope
	openScopes atomic.Int64 // lets the common, scope-free path skip the lookup
)

// NewScope opens a scope on the current goroutine.
func NewScope() *Scope {
	gid := goid.Get()
	s := &Scope{gid: gid}
	if p, ok := scopes.Load(gid); ok {
		s.parent = p.(*Scope)
	}
	scopes.Store(gid, s)
	openScopes.Add(1)
	return s
}

func currentScope() *Scope {
	if openScopes.Load() == 0 {
		return nil
	}
	if s, ok := scopes.Load(goid.Get()); ok {
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
// again. Closing twice is harmless.
func (s *Scope) Close() {
	if s.closed {
		return
	}
	s.closed = true
	// One cgo call frees them all: per-tensor calls would cost as much as
	// the small operations that made them.
	hs := make([]C.et_tensor, 0, len(s.tensors))
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
	s.tensors = nil
	if cur, ok := scopes.Load(s.gid); ok && cur.(*Scope) == s {
		if s.parent != nil {
			scopes.Store(s.gid, s.parent)
		} else {
			scopes.Delete(s.gid)
		}
	} else {
		panic(&Error{Op: "scope", Msg: "scopes closed out of order or on another goroutine"})
	}
	openScopes.Add(-1)
}

// Scoped runs f inside a new scope and closes it afterwards; f keeps what
// should outlive it with s.Keep.
func Scoped(f func(s *Scope)) {
	s := NewScope()
	defer s.Close()
	f(s)
}
