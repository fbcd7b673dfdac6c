package jit

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// reference holds what testdata/modules.py wrote and printed.
type reference struct {
	dir     string
	X       []float32
	Train   [2][]float32
	Eval    [2][]float32
	Traced  []float32
	Params  []string
	Buffers []string
}

func (r *reference) path(name string) string { return filepath.Join(r.dir, name) }

func (r *reference) input() *torch.Tensor { return torch.FromSlice(r.X, 2, 3, 8, 8) }

func writeModules(t *testing.T) *reference {
	t.Helper()
	dir := t.TempDir()
	out := pytorchtest.RunFile(t, filepath.Join("testdata", "modules.py"), dir)
	r := &reference{dir: dir}
	require.NoError(t, json.Unmarshal([]byte(out), r))
	return r
}

// assertTensor checks a result is a tensor of the given values.
func assertTensor(t *testing.T, want []float32, got any, msg string) {
	t.Helper()
	tensor, ok := got.(*torch.Tensor)
	require.True(t, ok, "%s: a %T, want a tensor", msg, got)
	assert.InDeltaSlice(t, want, tensor.Float32s(), 1e-5, msg)
}

func TestScriptedModule(t *testing.T) {
	r := writeModules(t)
	m, err := Load(r.path("scripted.pt"), torch.CPU)
	require.NoError(t, err)
	defer m.Free()

	methods, err := m.Methods()
	require.NoError(t, err)
	assert.Subset(t, methods, []string{"forward", "mix", "info", "codes"})
	schema, err := m.Schema("forward")
	require.NoError(t, err)
	assert.Contains(t, schema, "forward(")
	assert.Contains(t, schema, "Tensor x, float scale) -> ((Tensor, Tensor))")

	// Saved in training mode: batch norm on the batch's statistics, which
	// also updates the running ones, as in PyTorch; then evaluation mode.
	training, err := m.Training()
	require.NoError(t, err)
	assert.True(t, training)
	x := r.input()
	out, err := m.Forward(x, 0.5)
	require.NoError(t, err)
	require.IsType(t, Tuple{}, out)
	require.Len(t, out, 2)
	assertTensor(t, r.Train[0], out.(Tuple)[0], "training forward, first output")
	assertTensor(t, r.Train[1], out.(Tuple)[1], "training forward, second output")
	require.NoError(t, m.Eval())
	training, err = m.Training()
	require.NoError(t, err)
	assert.False(t, training)
	var eval any
	torch.NoGrad(func() { eval, err = m.Forward(x, 0.5) })
	require.NoError(t, err)
	assertTensor(t, r.Eval[0], eval.(Tuple)[0], "evaluation forward")
	assertTensor(t, r.Eval[1], eval.(Tuple)[1], "evaluation forward")

	params, err := m.NamedParameters()
	require.NoError(t, err)
	buffers, err := m.NamedBuffers()
	require.NoError(t, err)
	var got []string
	for _, p := range params {
		got = append(got, p.Name)
	}
	assert.Equal(t, r.Params, got)
	got = nil
	for _, b := range buffers {
		got = append(got, b.Name)
	}
	assert.Equal(t, r.Buffers, got)
	sd, err := m.StateDict()
	require.NoError(t, err)
	assert.Len(t, sd, len(params)+len(buffers))
	assert.Equal(t, []int64{4, 3, 3, 3}, params[0].Tensor.Shape())
	assert.Equal(t, 1.0, buffers[len(buffers)-1].Tensor.Item(), "num_batches_tracked after one training pass")

	// Containers and scalars both ways.
	a, b := torch.FromSlice([]float32{1, 2}, 2), torch.FromSlice([]float32{10, 20}, 2)
	mixed, err := m.Run("mix", []*torch.Tensor{a, b}, map[string]*torch.Tensor{"p": a, "q": b}, 3, true, "sum")
	require.NoError(t, err)
	require.IsType(t, map[string]*torch.Tensor{}, mixed)
	dict := mixed.(map[string]*torch.Tensor)
	assert.Equal(t, []float32{33, 66}, dict["sum"].Float32s())
	assert.Equal(t, []float32{2, 3}, dict["p"].Float32s())
	assert.Equal(t, []float32{11, 21}, dict["q"].Float32s())

	info, err := m.Run("info", x)
	require.NoError(t, err)
	var sum float64
	for _, v := range r.X {
		sum += float64(v)
	}
	require.Len(t, info, 6)
	assert.Equal(t, int64(4), info.(Tuple)[0])
	assert.InDelta(t, sum, info.(Tuple)[1], 1e-4)
	assert.Equal(t, Tuple{true, "ok", []any{int64(2), int64(3), int64(8), int64(8)}, nil}, info.(Tuple)[2:])

	codes, err := m.Run("codes", []string{"REA", "SRF"})
	require.NoError(t, err)
	assert.Equal(t, map[int64]any{0: "REA", 1: "SRF"}, codes)

	// Saved and read back, through a file and through a stream: the same
	// module, in the same mode, with the same statistics.
	saved := filepath.Join(t.TempDir(), "saved.pt")
	require.NoError(t, m.Save(saved))
	var buf bytes.Buffer
	require.NoError(t, m.Write(&buf))
	for name, load := range map[string]func() (*Module, error){
		"file":   func() (*Module, error) { return Load(saved, torch.CPU) },
		"stream": func() (*Module, error) { return Read(&buf, torch.CPU) },
	} {
		back, err := load()
		require.NoError(t, err, name)
		training, err := back.Training()
		require.NoError(t, err)
		assert.False(t, training, name)
		again, err := back.Forward(x, 0.5)
		require.NoError(t, err, name)
		assertTensor(t, r.Eval[0], again.(Tuple)[0], name)
		back.Free()
	}
}

func TestTracedModule(t *testing.T) {
	r := writeModules(t)
	f, err := os.Open(r.path("traced.pt"))
	require.NoError(t, err)
	defer f.Close()
	m, err := Read(f, torch.CPU)
	require.NoError(t, err)
	defer m.Free()
	x := r.input()

	// Several goroutines at once, each on its own thread's grad mode.
	var wg sync.WaitGroup
	outs := make([]any, 4)
	errs := make([]error, 4)
	for i := range outs {
		wg.Go(func() { torch.InferenceMode(func() { outs[i], errs[i] = m.Forward(x) }) })
	}
	wg.Wait()
	for i := range outs {
		require.NoError(t, errs[i])
		assertTensor(t, r.Traced, outs[i], "traced forward")
	}

	// Porting: the module's weights load into Go layers of the same
	// layout, which then compute what the module does.
	sd, err := m.StateDict()
	require.NoError(t, err)
	store := nn.NewStore()
	root := store.Root()
	conv := nn.NewConv2d(root.Sub("conv"), 3, 4, nn.Conv2dConfig{Kernel: 3, Padding: 1})
	bn := nn.NewBatchNorm2d(root.Sub("bn"), 4)
	require.NoError(t, store.LoadStateDict(sd, true))
	store.Eval()
	assert.InDeltaSlice(t, r.Traced, bn.Forward(conv.Forward(x)).Relu().Float32s(), 1e-5)
}

func TestModuleErrors(t *testing.T) {
	r := writeModules(t)
	m, err := Load(r.path("scripted.pt"), torch.CPU)
	require.NoError(t, err)
	defer m.Free()
	x := r.input()

	calls := []struct {
		name   string
		method string
		args   []any
		want   string
	}{
		{"too few arguments", "forward", []any{x}, "jit: forward: forward() is missing value for argument 'scale'. Declaration: forward(__torch__.Net self, Tensor x, float scale)"},
		{"too many arguments", "forward", []any{x, 0.5, 1}, "received 4 argument(s)"},
		{"wrong type", "forward", []any{"x", 0.5}, "Expected a value of type 'Tensor' for argument 'x' but instead found type 'str'"},
		{"wrong list type", "mix", []any{[]int64{1}, map[string]*torch.Tensor{}, 1, true, "s"}, "argument 'xs'"},
		{"Go type", "forward", []any{struct{}{}, 0.5}, "jit: forward: argument 1: a Go struct {} has no TorchScript value"},
		{"nil tensor", "forward", []any{(*torch.Tensor)(nil), 0.5}, "argument 1: a nil tensor"},
		{"nested Go type", "mix", []any{[]any{x, 3i}}, "argument 1: item 1: a Go complex128 has no TorchScript value"},
		{"no such method", "nosuch", nil, "jit: nosuch: Method 'nosuch' is not defined"},
		{"wrong shape", "forward", []any{torch.FromSlice([]float32{1, 2}, 2), 0.5}, "jit: forward:"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Run(c.method, c.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}

	// An exception inside the module's code: the exception as the
	// message, TorchScript's traceback beside it.
	_, err = m.Forward(torch.FromSlice([]float32{1, 2}, 2), 0.5)
	var runErr *RunError
	require.ErrorAs(t, err, &runErr)
	assert.Equal(t, "forward", runErr.Method)
	assert.Regexp(t, `^RuntimeError: .*conv`, runErr.Msg)
	assert.NotContains(t, runErr.Msg, "\n")
	assert.Contains(t, runErr.Traceback, "code/__torch__")
	assert.Contains(t, runErr.Traceback, "self.conv")

	scripted, err := os.ReadFile(r.path("scripted.pt"))
	require.NoError(t, err)
	garbled := bytes.Clone(scripted)
	for i := len(garbled) / 3; i < len(garbled)/2; i++ {
		garbled[i] ^= 0x5a
	}
	var zipped bytes.Buffer
	z := zip.NewWriter(&zipped)
	for _, name := range []string{"archive/constants.pkl", "archive/data.pkl"} {
		w, err := z.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte("not a pickle"))
		require.NoError(t, err)
	}
	require.NoError(t, z.Close())
	checkpoint, err := os.ReadFile(r.path("checkpoint.pth"))
	require.NoError(t, err)
	files := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a TorchScript file (torch.jit.save writes a zip archive"},
		{"text", []byte("def forward(self, x): return x\n"), "not a TorchScript file (torch.jit.save writes a zip archive"},
		{"truncated", scripted[:len(scripted)/2], "not a TorchScript file"},
		{"torch.save", checkpoint, "a PyTorch archive of torch.save, without TorchScript code; load it as a checkpoint"},
		{"garbled", garbled, "jit: "},
		{"hostile pickles", zipped.Bytes(), "jit: "},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "module.pt")
			require.NoError(t, os.WriteFile(path, f.data, 0o644))
			_, err := Load(path, torch.CPU)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "jit: "+path+": ")
			assert.Contains(t, err.Error(), f.want)
			_, err = Read(bytes.NewReader(f.data), torch.CPU)
			assert.ErrorContains(t, err, f.want)
		})
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.pt"), torch.CPU)
	assert.ErrorContains(t, err, "no such file or directory")

	m.Free()
	m.Free()
	_, err = m.Forward(x, 0.5)
	assert.EqualError(t, err, "jit: use of a freed module")
	assert.EqualError(t, m.Eval(), "jit: use of a freed module")
}
