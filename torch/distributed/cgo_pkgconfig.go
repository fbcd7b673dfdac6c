//go:build edema_pkgconfig

package distributed

// #cgo pkg-config: edema-torch
import "C"
