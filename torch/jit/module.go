// Package jit runs TorchScript modules: the files that torch.jit.save
// writes from a scripted (torch.jit.script) or traced (torch.jit.trace)
// PyTorch module, code and weights together. It is the way to run in Go a
// model that edema has no Go network for, as tch-rs's CModule and libtorch's
// torch::jit::Module do, and a second way to port one: a module's
// StateDict loads into an nn.Store of the same layout.
//
// Methods take and return TorchScript values, which cross as Go values:
// tensors as *torch.Tensor, tuples as Tuple, lists as slices, dicts as
// maps, and None, bool, int, float and str as nil, bool, int64, float64
// and string (see Module.Run).
package jit

/*
#include <stdlib.h>
#include "edema_jit.h"
*/
import "C"

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/edema/edema/internal/atomicfile"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/internal/handle"
	"github.com/edema/edema/torch/nn"
)

// Module is a loaded TorchScript module.
//
// Run and the methods that read the module may be called from several
// goroutines at once (TorchScript's interpreter allows concurrent calls);
// Train, Eval, To and Free wait for the calls in flight and hold off new
// ones.
type Module struct {
	mu      sync.RWMutex
	c       C.et_module
	cleanup runtime.Cleanup
}

// Load reads the TorchScript file at path, its tensors mapped onto device
// as torch.jit.load's map_location does.
func Load(path string, device torch.Device) (*Module, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jit: %w", err)
	}
	m, err := load(data, device)
	if err != nil {
		return nil, fmt.Errorf("jit: %s: %w", path, err)
	}
	return m, nil
}

// Read reads a TorchScript module from r (to its end), its tensors mapped
// onto device.
func Read(r io.Reader, device torch.Device) (*Module, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("jit: %w", err)
	}
	m, err := load(data, device)
	if err != nil {
		return nil, fmt.Errorf("jit: %w", err)
	}
	return m, nil
}

func load(data []byte, device torch.Device) (*Module, error) {
	if err := checkArchive(data); err != nil {
		return nil, err
	}
	var c C.et_module
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	if err := shimError(C.et_module_load_bytes(p, C.size_t(len(data)), C.int(device.Type), C.int(device.Index), &c)); err != nil {
		return nil, err
	}
	m := &Module{c: c}
	m.cleanup = runtime.AddCleanup(m, func(c C.et_module) { C.et_module_free(c) }, c)
	return m, nil
}

// checkArchive says what a file is when it is not a TorchScript archive,
// before libtorch reads it: TorchScript files are zip archives holding
// their code (code/) and constants (constants.pkl); torch.save's
// archives, which hold only data.pkl and the tensors, are checkpoints.
func checkArchive(data []byte) error {
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("not a TorchScript file (torch.jit.save writes a zip archive; this is not one: %v)", err)
	}
	var constants, pickle bool
	for _, f := range z.File {
		constants = constants || strings.HasSuffix(f.Name, "/constants.pkl")
		pickle = pickle || strings.HasSuffix(f.Name, "/data.pkl")
	}
	switch {
	case constants:
		return nil
	case pickle:
		return errors.New("not a TorchScript file: a PyTorch archive of torch.save, without TorchScript code; load it as a checkpoint")
	default:
		return errors.New("not a TorchScript file: a zip archive without TorchScript's constants.pkl")
	}
}

// shimError turns a shim error into a Go error and frees its message.
func shimError(e C.et_error) error {
	if e == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(e))
	return errors.New(C.GoString(e))
}

// handle returns the module's shim handle, or an error once it is freed.
// The caller holds m.mu.
func (m *Module) handle() (C.et_module, error) {
	if m.c == nil {
		return nil, errors.New("jit: use of a freed module")
	}
	return m.c, nil
}

// Free releases the module now. Tensors it returned, and those of its
// StateDict, stay valid. Freeing twice is harmless.
func (m *Module) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c != nil {
		m.cleanup.Stop()
		C.et_module_free(m.c)
		m.c = nil
	}
}

// Forward runs the module's forward method (see Run).
func (m *Module) Forward(args ...any) (any, error) { return m.Run("forward", args...) }

// Run runs a method of the module on args and returns its result. Each
// argument is a *torch.Tensor, a Tuple, a slice ([]*torch.Tensor, []any,
// []int64, []float64, []bool, []string), a map with string keys
// (map[string]*torch.Tensor, map[string]any), nil (None), a bool, an
// integer, a float or a string. The result comes back the same way: a
// List[Tensor] as []*torch.Tensor, other lists as []any, a Dict[str,
// Tensor] as map[string]*torch.Tensor, other dicts as map[string]any or
// map[int64]any. Go values carry no element types for empty containers:
// an empty slice or map goes as a List[Tensor] or a Dict[str, Tensor], and
// an empty dict comes back as a map[string]any.
//
// Autograd records the method's operations as the calling OS thread's
// grad mode says: run inference inside torch.NoGrad or
// torch.InferenceMode, which pin the goroutine to its thread.
func (m *Module) Run(method string, args ...any) (any, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, err := m.handle()
	if err != nil {
		return nil, err
	}
	var values ivalues
	defer values.free()
	in := make([]C.et_ivalue, len(args))
	for i, a := range args {
		v, err := values.from(a)
		if err != nil {
			return nil, fmt.Errorf("jit: %s: argument %d: %w", method, i+1, err)
		}
		in[i] = v
	}
	var inp *C.et_ivalue
	if len(in) > 0 {
		inp = &in[0]
	}
	name := C.CString(method)
	defer C.free(unsafe.Pointer(name))
	var out C.et_ivalue
	err = shimError(C.et_module_run(c, name, inp, C.int64_t(len(in)), &out))
	runtime.KeepAlive(args)
	if err != nil {
		return nil, runError(method, err.Error())
	}
	values.keep(out)
	result, err := toGo(out)
	if err != nil {
		return nil, fmt.Errorf("jit: %s: its result: %w", method, err)
	}
	return result, nil
}

// RunError is a method that failed in libtorch: arguments that do not fit
// its schema, or an exception inside its code.
type RunError struct {
	Method string
	// Msg is libtorch's message; for an exception inside the module's
	// code, the exception alone ("RuntimeError: ...").
	Msg string
	// Traceback is, for an exception inside the module's code, where it
	// happened: TorchScript's tracebacks of the serialised and (when the
	// file keeps it) the original Python code.
	Traceback string
}

func (e *RunError) Error() string { return "jit: " + e.Method + ": " + e.Msg }

// interpreterFailure starts libtorch's message for an exception raised
// inside a module's code, which its traceback follows, the exception last.
const interpreterFailure = "The following operation failed in the TorchScript interpreter."

func runError(method, msg string) *RunError {
	e := &RunError{Method: method, Msg: strings.TrimSpace(msg)}
	if strings.HasPrefix(e.Msg, interpreterFailure) {
		lines := strings.Split(e.Msg, "\n")
		last := len(lines) - 1
		// The exception may span lines; it starts at the last line that
		// names one ("RuntimeError: ...").
		for i := last; i > 0; i-- {
			if name, _, ok := strings.Cut(lines[i], ": "); ok && strings.HasSuffix(name, "Error") && !strings.Contains(name, " ") {
				last = i
				break
			}
		}
		e.Msg = strings.Join(lines[last:], " ")
		e.Traceback = strings.TrimSpace(strings.Join(lines[1:last], "\n"))
	}
	return e
}

// Methods returns the names of the module's methods.
func (m *Module) Methods() ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, err := m.handle()
	if err != nil {
		return nil, err
	}
	var out *C.char
	if err := shimError(C.et_module_methods(c, &out)); err != nil {
		return nil, fmt.Errorf("jit: methods: %w", err)
	}
	return splitNames(out), nil
}

// Schema returns a method's signature as TorchScript prints it, such as
// "forward(__torch__.Net self, Tensor x) -> (Tensor, Tensor)".
func (m *Module) Schema(method string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, err := m.handle()
	if err != nil {
		return "", err
	}
	name := C.CString(method)
	defer C.free(unsafe.Pointer(name))
	var out *C.char
	if err := shimError(C.et_module_schema(c, name, &out)); err != nil {
		return "", fmt.Errorf("jit: %s: %w", method, err)
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoString(out), nil
}

// splitNames turns a shim list of names, each followed by '\n', into a
// slice, and frees it.
func splitNames(s *C.char) []string {
	defer C.free(unsafe.Pointer(s))
	names := strings.Split(C.GoString(s), "\n")
	return names[:len(names)-1]
}

// NamedParameters returns the parameters of the module and its
// submodules by their dotted names, in the module's order. They are the
// module's own tensors, not copies.
func (m *Module) NamedParameters() ([]nn.Named, error) { return m.named(false) }

// NamedBuffers returns the buffers (batch-norm statistics and the like)
// of the module and its submodules, as NamedParameters does.
func (m *Module) NamedBuffers() ([]nn.Named, error) { return m.named(true) }

// StateDict returns the parameters, then the buffers: what
// nn.Store.LoadStateDict takes to load the module's weights into a Go
// network of the same layout.
func (m *Module) StateDict() ([]nn.Named, error) {
	params, err := m.NamedParameters()
	if err != nil {
		return nil, err
	}
	buffers, err := m.NamedBuffers()
	if err != nil {
		return nil, err
	}
	return append(params, buffers...), nil
}

func (m *Module) named(buffers bool) ([]nn.Named, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, err := m.handle()
	if err != nil {
		return nil, err
	}
	var tensors *C.et_tensor
	var names *C.char
	var n C.int64_t
	if err := shimError(C.et_module_named_tensors(c, flag(buffers), &tensors, &names, &n)); err != nil {
		return nil, fmt.Errorf("jit: named tensors: %w", err)
	}
	defer C.free(unsafe.Pointer(tensors))
	keys := splitNames(names)
	handles := unsafe.Slice(tensors, int(n))
	named := make([]nn.Named, len(handles))
	for i, h := range handles {
		named[i] = nn.Named{Name: keys[i], Tensor: handle.Wrap(unsafe.Pointer(h)).(*torch.Tensor)}
	}
	return named, nil
}

// Train puts the module and its submodules in training mode (dropout on,
// batch norm on batch statistics), as module.train() does.
func (m *Module) Train() error { return m.setTraining(true) }

// Eval puts the module in evaluation mode, as module.eval() does.
func (m *Module) Eval() error { return m.setTraining(false) }

func (m *Module) setTraining(on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.handle()
	if err != nil {
		return err
	}
	if err := shimError(C.et_module_train(c, flag(on))); err != nil {
		return fmt.Errorf("jit: train: %w", err)
	}
	return nil
}

// Training reports whether the module is in training mode.
func (m *Module) Training() (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, err := m.handle()
	if err != nil {
		return false, err
	}
	var out C.int
	if err := shimError(C.et_module_is_training(c, &out)); err != nil {
		return false, fmt.Errorf("jit: is_training: %w", err)
	}
	return out != 0, nil
}

// To moves the module's parameters and buffers onto device.
func (m *Module) To(device torch.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.handle()
	if err != nil {
		return err
	}
	if err := shimError(C.et_module_to(c, C.int(device.Type), C.int(device.Index))); err != nil {
		return fmt.Errorf("jit: to %s: %w", device, err)
	}
	return nil
}

// Save writes the module to path as torch.jit.save does, replacing the
// file atomically.
func (m *Module) Save(path string) error {
	return atomicfile.Write(path, m.Write)
}

// Write writes the module to w as torch.jit.save does.
func (m *Module) Write(w io.Writer) error {
	m.mu.RLock()
	c, err := m.handle()
	if err != nil {
		m.mu.RUnlock()
		return err
	}
	var data unsafe.Pointer
	var n C.size_t
	err = shimError(C.et_module_save_bytes(c, &data, &n))
	m.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("jit: save: %w", err)
	}
	defer C.free(data)
	_, err = w.Write(unsafe.Slice((*byte)(data), int(n)))
	return err
}

func flag(on bool) C.int {
	if on {
		return 1
	}
	return 0
}
