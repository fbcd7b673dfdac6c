package distributed

/*
#include <stdlib.h>
#include "edema_c10d.h"
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// Store is a c10d key-value store, through which the processes of a job
// find each other. It is safe for concurrent use.
type Store struct {
	c       C.et_store
	timeout time.Duration
}

// NewTCPStore makes a TCPStore. The server (one per job, usually rank 0)
// listens on port and waits until world processes, itself included, have
// connected; a client connects to host:port and counts itself in. Both
// give up after timeout.
func NewTCPStore(host string, port int, server bool, world int, timeout time.Duration) (*Store, error) {
	h := C.CString(host)
	defer C.free(unsafe.Pointer(h))
	var c C.et_store
	err := C.et_store_tcp(h, C.int(port), cbool(server), C.int64_t(world), 1, millis(timeout), &c)
	if err != nil {
		return nil, shimError(err)
	}
	return newStore(c, timeout), nil
}

// NewFileStore makes a FileStore: world processes that share the file at
// path (on a file system they all see) meet through it. The file must not
// be left from an earlier job.
func NewFileStore(path string, world int, timeout time.Duration) (*Store, error) {
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	var c C.et_store
	if err := C.et_store_file(p, C.int64_t(world), millis(timeout), &c); err != nil {
		return nil, shimError(err)
	}
	return newStore(c, timeout), nil
}

// Prefix is a view of s in which every key is prefixed (c10d's PrefixStore).
func (s *Store) Prefix(prefix string) (*Store, error) {
	p := C.CString(prefix)
	defer C.free(unsafe.Pointer(p))
	var c C.et_store
	err := C.et_store_prefix(p, s.c, &c)
	runtime.KeepAlive(s)
	if err != nil {
		return nil, shimError(err)
	}
	return newStore(c, s.timeout), nil
}

func newStore(c C.et_store, timeout time.Duration) *Store {
	s := &Store{c: c, timeout: timeout}
	runtime.AddCleanup(s, func(c C.et_store) { C.et_store_free(c) }, c)
	return s
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	err := C.et_store_set(s.c, k, p, C.size_t(len(value)))
	runtime.KeepAlive(s)
	return shimError(err)
}

// Get returns the value under key, waiting up to the store's timeout for
// some process to set it.
func (s *Store) Get(key string) ([]byte, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var p unsafe.Pointer
	var n C.size_t
	err := C.et_store_get(s.c, k, &p, &n)
	runtime.KeepAlive(s)
	if err != nil {
		return nil, shimError(err)
	}
	defer C.free(p)
	return C.GoBytes(p, C.int(n)), nil
}

// Add adds delta to the counter under key and returns its new value.
func (s *Store) Add(key string, delta int64) (int64, error) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	var v C.int64_t
	err := C.et_store_add(s.c, k, C.int64_t(delta), &v)
	runtime.KeepAlive(s)
	return int64(v), shimError(err)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func millis(d time.Duration) C.int64_t { return C.int64_t(d.Milliseconds()) }

// shimError takes a shim error string (freeing it) and returns it as a
// cause, or nil.
func shimError(err C.et_error) error {
	if err == nil {
		return nil
	}
	msg := C.GoString(err)
	C.free(unsafe.Pointer(err))
	return cause(msg)
}

// cause is libtorch's message for a failure, before the rank is known.
type cause string

func (c cause) Error() string { return string(c) }
