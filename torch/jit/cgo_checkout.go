//go:build !edema_pkgconfig

package jit

// #cgo LDFLAGS: -L${SRCDIR}/../../build -ledema_torch -Wl,-rpath,${SRCDIR}/../../build
import "C"
