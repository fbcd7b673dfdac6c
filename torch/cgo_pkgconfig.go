//go:build edema_pkgconfig

package torch

// An installed shim (make install PREFIX=...), which pkg-config finds
// through PKG_CONFIG_PATH=PREFIX/lib/pkgconfig; its Libs give the rpath.

// #cgo pkg-config: edema-torch
import "C"
