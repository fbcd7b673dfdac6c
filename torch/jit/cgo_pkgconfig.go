//go:build edema_pkgconfig

package jit

// #cgo pkg-config: edema-torch
import "C"
