package distributed

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"
)

// The tests start real processes: this test binary, run again with
// EDEMA_DIST_WORKER naming what to do, meets its peers over c10d on
// loopback. A worker reports a failure on stdout and exits 1.
const workerVar = "EDEMA_DIST_WORKER"

func TestMain(m *testing.M) {
	if name := os.Getenv(workerVar); name != "" {
		if err := runWorker(name); err != nil {
			fmt.Println("worker error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var workers = map[string]func(g *Group) error{
	"collectives": collectives,
	"killed":      killed,
	"ddp":         dataParallel,
	"mixed":       mixed,
}

func runWorker(name string) error {
	env, ok, err := EnvFromOS()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no job in the environment")
	}
	timeout, _ := time.ParseDuration(os.Getenv("EDEMA_DIST_TIMEOUT"))
	g, err := Init(env, Options{Timeout: timeout, InitFile: os.Getenv("EDEMA_DIST_FILE")})
	if err != nil {
		return err
	}
	defer g.Close()
	if name == "join" {
		return nil
	}
	w, ok := workers[name]
	if !ok {
		return fmt.Errorf("no worker %q", name)
	}
	return w(g)
}

// collectives checks each collective's values: rank r contributes r+1.
func collectives(g *Group) (err error) {
	defer torch.Recover(&err)
	r, n := float32(g.Rank()), float32(g.Size())
	sum := n * (n + 1) / 2
	check := func(what string, got []float32, want ...float32) error {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s: got %v, want %v", what, got, want)
		}
		return nil
	}
	t := torch.FromSlice([]float32{r + 1, 2 * (r + 1)}, 2)
	if err := g.AllReduce(Sum, t); err != nil {
		return err
	}
	if err := check("sum", t.Float32s(), sum, 2*sum); err != nil {
		return err
	}
	t = torch.FromSlice([]float32{r + 1}, 1)
	if err := g.AllReduce(Average, t); err != nil {
		return err
	}
	if err := check("average", t.Float32s(), sum/n); err != nil {
		return err
	}
	t = torch.FromSlice([]float32{r, r}, 2)
	if err := g.Broadcast(g.Size()-1, t); err != nil {
		return err
	}
	if err := check("broadcast", t.Float32s(), n-1, n-1); err != nil {
		return err
	}
	parts, err := g.AllGather(torch.FromSlice([]float32{r * 10}, 1))
	if err != nil {
		return err
	}
	var got []float32
	for _, p := range parts {
		got = append(got, p.Float32s()...)
	}
	var want []float32
	for i := range g.Size() {
		want = append(want, float32(i*10))
	}
	if err := check("all-gather", got, want...); err != nil {
		return err
	}
	bs, err := g.AllGatherBytes([]byte(strings.Repeat("x", g.Rank())))
	if err != nil {
		return err
	}
	for i, b := range bs {
		if string(b) != strings.Repeat("x", i) {
			return fmt.Errorf("all-gather bytes: rank %d's part is %q", i, b)
		}
	}
	var mine error
	if g.Rank() == 1 {
		mine = fmt.Errorf("cube 7 is damaged")
	}
	if _, err := g.AllGatherResults([]byte("fine"), mine); err == nil || err.Error() != "rank 1: cube 7 is damaged" {
		return fmt.Errorf("all-gather results: %v, want rank 1's failure", err)
	}
	if res, err := g.AllGatherResults([]byte{byte(g.Rank())}, nil); err != nil || len(res) != g.Size() || res[g.Size()-1][0] != byte(g.Size()-1) {
		return fmt.Errorf("all-gather results: %v, %v", res, err)
	}
	return g.Barrier()
}

// killed: the last rank stops answering after one all-reduce (the test
// kills it); the others' next all-reduce must fail, naming their rank.
func killed(g *Group) error {
	if err := g.AllReduce(Sum, torch.Ones([]int64{4}, torch.Options{DType: torch.Float32})); err != nil {
		return err
	}
	if g.Rank() == g.Size()-1 {
		fmt.Println("ready")
		time.Sleep(time.Hour)
	}
	err := g.AllReduce(Sum, torch.Ones([]int64{4}, torch.Options{DType: torch.Float32}))
	if err == nil {
		return fmt.Errorf("an all-reduce with a killed peer succeeded")
	}
	fmt.Println("failed as expected:", err)
	return nil
}

// dataParallel trains a least-squares model y = xW + b on a batch of 8
// split in halves between 2 ranks, whose replicas start from different
// weights. After DataParallel, the first step must equal the step one
// process takes on the whole batch, and the replicas stay identical over
// 10 steps.
func dataParallel(g *Group) (err error) {
	defer torch.Recover(&err)
	f32 := torch.Options{DType: torch.Float32}
	torch.ManualSeed(7)
	x, y := torch.Randn([]int64{8, 4}, f32), torch.Randn([]int64{8, 3}, f32)
	torch.ManualSeed(uint64(100 + g.Rank())) // replicas start apart
	w := torch.Randn([]int64{4, 3}, f32).SetRequiresGrad(true)
	b := torch.Randn([]int64{3}, f32).SetRequiresGrad(true)
	params := []*torch.Tensor{w, b}
	// DataParallel's buckets are one parameter each here (48 and 12 bytes
	// against a cap of 16), so that the reverse order is exercised.
	d, err := NewDataParallel(g, params, nil, 16)
	if err != nil {
		return err
	}
	if d.Buckets() != 2 {
		return fmt.Errorf("%d buckets, want 2", d.Buckets())
	}
	half := int64(8 / g.Size())
	xs, ys := x.Narrow(0, int64(g.Rank())*half, half), y.Narrow(0, int64(g.Rank())*half, half)
	loss := func(x, y *torch.Tensor, w, b *torch.Tensor) *torch.Tensor {
		return x.Matmul(w).Add(b).Sub(y).Pow(2).Mean()
	}

	// The one-process reference: the whole batch, from rank 0's weights.
	rw, rb := w.Detach().Clone().SetRequiresGrad(true), b.Detach().Clone().SetRequiresGrad(true)
	loss(x, y, rw, rb).Backward()
	want := []float32{}
	for _, p := range []*torch.Tensor{rw, rb} {
		want = append(want, p.Detach().Sub(p.Grad().MulScalar(0.1)).Float32s()...)
	}
	const lr = 0.1
	step := func() error {
		for _, p := range params {
			p.ZeroGrad()
		}
		loss(xs, ys, w, b).Backward()
		if err := d.SyncGradients(); err != nil {
			return err
		}
		torch.NoGrad(func() {
			for _, p := range params {
				p.SubInPlace(p.Grad(), lr)
			}
		})
		return nil
	}
	if err := step(); err != nil {
		return err
	}
	got := append(w.Detach().Float32s(), b.Detach().Float32s()...)
	for i := range want {
		if diff := math.Abs(float64(got[i] - want[i])); diff > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
			return fmt.Errorf("parameter %d after one step: %v, one process gives %v", i, got[i], want[i])
		}
	}
	for range 9 {
		if err := step(); err != nil {
			return err
		}
	}
	for i, p := range params {
		parts, err := g.AllGather(p.Detach())
		if err != nil {
			return err
		}
		for r, q := range parts {
			if fmt.Sprint(q.Float32s()) != fmt.Sprint(parts[0].Float32s()) {
				return fmt.Errorf("after 10 steps, parameter %d differs between ranks 0 and %d", i, r)
			}
		}
	}
	return nil
}

// mixed runs the collectives of testdata/peer.py, whose PyTorch process
// is another rank of the job, and prints what it got.
func mixed(g *Group) (err error) {
	defer torch.Recover(&err)
	r := float32(g.Rank())
	t := torch.FromSlice([]float32{r + 1, 2 * (r + 1)}, 2)
	if err := g.AllReduce(Sum, t); err != nil {
		return err
	}
	b := torch.Full([]int64{3}, float64(r), torch.Options{DType: torch.Float32})
	if err := g.Broadcast(0, b); err != nil {
		return err
	}
	parts, err := g.AllGather(torch.FromSlice([]float64{float64(r), float64(r) * 0.5}, 2))
	if err != nil {
		return err
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	var gathered [][]float64
	for _, p := range parts {
		gathered = append(gathered, p.Float64s())
	}
	fmt.Println("sum", t.Float32s(), "broadcast", b.Float32s(), "gathered", gathered)
	return nil
}

// job runs n workers of this test binary through Launch.
func job(t *testing.T, n int, worker string, env ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Launch(ctx, n, os.Args[0], []string{"-test.run=^$"}, LaunchOptions{
		Stdout: &out, Stderr: &out, Env: append([]string{workerVar + "=" + worker}, env...)})
	return out.String(), err
}

func TestCollectives(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			out, err := job(t, n, "collectives")
			require.NoError(t, err, out)
		})
	}
}

func TestDataParallelStepsAsOneProcess(t *testing.T) {
	out, err := job(t, 2, "ddp")
	require.NoError(t, err, out)
}

// TestWithPyTorch: ranks of edema and of PyTorch (Debian's python3-torch,
// testdata/peer.py) in one job, over the same c10d TCPStore and Gloo.
// Each side hosts the store once; both see the same values.
func TestWithPyTorch(t *testing.T) {
	python := pytorchtest.Python(t)
	for _, goRank := range []int{0, 1} {
		t.Run(fmt.Sprintf("edema rank %d", goRank), func(t *testing.T) {
			port, err := FreePort()
			require.NoError(t, err)
			py := exec.Command(python, "testdata/peer.py", strconv.Itoa(port), strconv.Itoa(1-goRank), "2")
			var pyOut bytes.Buffer
			py.Stdout, py.Stderr = &pyOut, &pyOut
			require.NoError(t, py.Start())
			goSide := exec.Command(os.Args[0], "-test.run=^$")
			goSide.Env = append(os.Environ(), workerVar+"=mixed", "EDEMA_DIST_TIMEOUT=60s")
			goSide.Env = append(goSide.Env, Env{MasterAddr: "127.0.0.1", MasterPort: port, Rank: goRank, WorldSize: 2,
				LocalRank: goRank, LocalWorldSize: 2}.Environ()...)
			goOut, err := goSide.CombinedOutput()
			if err != nil {
				_ = py.Wait()
			}
			require.NoError(t, err, string(goOut)+"\nPyTorch's rank: "+pyOut.String())
			require.NoError(t, py.Wait(), pyOut.String())
			want := "sum [3 6] broadcast [0 0 0] gathered [[0 0] [1 0.5]]"
			assert.Contains(t, string(goOut), want)
			assert.Contains(t, pyOut.String(), "sum [3.0, 6.0] broadcast [0.0, 0.0, 0.0] gathered [[0.0, 0.0], [1.0, 0.5]]")
		})
	}
}

func TestFileStore(t *testing.T) {
	out, err := job(t, 2, "collectives", "EDEMA_DIST_FILE="+filepath.Join(t.TempDir(), "store"))
	require.NoError(t, err, out)
}

// TestKilledPeer kills a rank between two all-reduces; the survivors fail
// with an error that names them, well within the timeout.
func TestKilledPeer(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	cmds := make([]*exec.Cmd, 3)
	outs := make([]*bytes.Buffer, 3)
	for r := range cmds {
		cmds[r] = exec.Command(os.Args[0], "-test.run=^$")
		outs[r] = new(bytes.Buffer)
		cmds[r].Stdout, cmds[r].Stderr = outs[r], outs[r]
		cmds[r].Env = append(os.Environ(), workerVar+"=killed", "EDEMA_DIST_TIMEOUT=60s")
		cmds[r].Env = append(cmds[r].Env, Env{MasterAddr: "127.0.0.1", MasterPort: port, Rank: r, WorldSize: 3,
			LocalRank: r, LocalWorldSize: 3}.Environ()...)
		require.NoError(t, cmds[r].Start())
	}
	last := cmds[2]
	require.Eventually(t, func() bool { return strings.Contains(outs[2].String(), "ready") }, time.Minute, 50*time.Millisecond)
	start := time.Now()
	require.NoError(t, last.Process.Kill())
	_ = last.Wait()
	for r := range 2 {
		require.NoError(t, cmds[r].Wait(), outs[r].String())
		assert.Contains(t, outs[r].String(), fmt.Sprintf("failed as expected: distributed: rank %d of 3: all-reduce: ", r))
		assert.Regexp(t, `\(ranks? ([0-9], )*2 made no report within 5s: likely stopped\)`, outs[r].String())
	}
	assert.Less(t, time.Since(start), 30*time.Second, "the survivors took longer than half their timeout to notice")
}

// TestBadSetUps: each mistaken launch ends in an error that names the
// rank and the cause within the timeout, never a hang.
func TestBadSetUps(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	other, err := FreePort()
	require.NoError(t, err)
	env := func(rank, world, port int) []string {
		return Env{MasterAddr: "127.0.0.1", MasterPort: port, Rank: rank, WorldSize: world, LocalRank: rank,
			LocalWorldSize: world}.Environ()
	}
	// A missing rank 1, in the words of libtorch 1.13 (whose TCPStore
	// server stops waiting silently, and edema's check says it) or 2.x.
	missing := `rank 0 of 2: rendezvous: (rank 1 did not join within 3s|.*Timed out after \d+ seconds waiting for clients. 1/2 clients joined)`
	cases := []struct {
		name  string
		ranks [][]string // each process's environment
		want  []string   // what each one's error says (a regular expression)
	}{
		{"one process of two", [][]string{env(0, 2, port)}, []string{missing}},
		{"wrong port", [][]string{env(0, 2, port), env(1, 2, other)},
			[]string{missing, "rank 1 of 2: rendezvous: the store at 127.0.0.1:" + strconv.Itoa(other)}},
		{"world sizes differ", [][]string{env(0, 2, port), env(1, 3, port)},
			[]string{"rank 0 of 2: rendezvous: ", "rank 1 of 3: rendezvous: the world size is 3 here but 2 on rank 0"}},
		{"rank twice", [][]string{env(0, 2, port), env(0, 2, port)},
			[]string{"rendezvous", "rendezvous"}},
		{"rank out of range", [][]string{env(2, 2, port)},
			[]string{`RANK 2 is not below WORLD_SIZE 2`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			cmds := make([]*exec.Cmd, len(c.ranks))
			outs := make([]*bytes.Buffer, len(c.ranks))
			for i, e := range c.ranks {
				cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
				outs[i] = new(bytes.Buffer)
				cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
				cmds[i].Env = append(append(os.Environ(), workerVar+"=join", "EDEMA_DIST_TIMEOUT=3s"), e...)
				require.NoError(t, cmds[i].Start())
			}
			for i, cmd := range cmds {
				assert.Error(t, cmd.Wait(), outs[i].String())
				assert.Regexp(t, c.want[i], outs[i].String())
			}
			assert.Less(t, time.Since(start), 30*time.Second)
		})
	}
}

func TestLaunchReportsTheFailedRank(t *testing.T) {
	out, err := job(t, 2, "nosuch-worker")
	require.Error(t, err, out)
	assert.Regexp(t, `distributed: rank [01] of 2 exited with status 1`, err.Error())
}

func TestEnvFromOS(t *testing.T) {
	full := map[string]string{"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "RANK": "3", "WORLD_SIZE": "4",
		"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range full {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name string
		vars map[string]string
		ok   bool
		err  string
	}{
		{"alone", map[string]string{}, false, ""},
		{"torchrun", full, true, ""},
		{"no rank", with("RANK", ""), false, "RANK is not set"},
		{"bad port", with("MASTER_PORT", "http"), false, `MASTER_PORT="http" is not a whole number`},
		{"port range", with("MASTER_PORT", "70000"), true, "MASTER_PORT 70000 is not a TCP port"},
		{"rank range", with("RANK", "4"), true, "RANK 4 is not below WORLD_SIZE 4"},
		{"no address", with("MASTER_ADDR", ""), false, "MASTER_ADDR is not set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, ok, err := envFrom(func(k string) (string, bool) { v, set := c.vars[k]; return v, set })
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.ok, ok)
			if ok {
				assert.Equal(t, Env{MasterAddr: "10.0.0.1", MasterPort: 29500, Rank: 3, WorldSize: 4, LocalRank: 1,
					LocalWorldSize: 2}, env)
			}
		})
	}
	env, ok, err := envFrom(func(k string) (string, bool) {
		v, set := with("TORCHELASTIC_USE_AGENT_STORE", "True")[k]
		return v, set
	})
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, env.UseAgentStore)
}

func TestShard(t *testing.T) {
	for _, c := range []struct{ n, size int }{{10, 3}, {2, 3}, {0, 2}, {7, 1}, {16, 4}} {
		next := 0
		for r := range c.size {
			lo, hi := shard(c.n, r, c.size)
			require.Equal(t, next, lo, "n=%d size=%d rank %d starts where rank %d ended", c.n, c.size, r, r-1)
			require.LessOrEqual(t, hi-lo, c.n/c.size+1)
			require.GreaterOrEqual(t, hi-lo, c.n/c.size)
			next = hi
		}
		require.Equal(t, c.n, next)
	}
}
