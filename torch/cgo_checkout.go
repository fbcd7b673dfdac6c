//go:build !edema_pkgconfig

package torch

// The shim built in this checkout's build/ folder, found at run time
// through an rpath to it.

// #cgo LDFLAGS: -L${SRCDIR}/../build -ledema_torch -Wl,-rpath,${SRCDIR}/../build
import "C"
