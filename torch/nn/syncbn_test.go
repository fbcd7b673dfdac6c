package nn

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/distributed"
)

// The synchronised batch norm's test runs this test binary again, as
// the ranks of a job over c10d on loopback, with syncWorkerVar set.
const syncWorkerVar = "EDEMA_NN_SYNC_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(syncWorkerVar) != "" {
		if err := syncBatchNormWorker(); err != nil {
			fmt.Println("worker error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSyncBatchNormStepsAsOneProcess: two processes, each with half of a
// batch, a network with batch norm synchronised between them and its
// gradients averaged, end one SGD step with the parameters and running
// statistics of one process taking the step on the whole batch, and stay
// identical over 10 steps.
func TestSyncBatchNormStepsAsOneProcess(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := distributed.Launch(ctx, 2, os.Args[0], []string{"-test.run=^$"}, distributed.LaunchOptions{
		Stdout: &out, Stderr: &out, Env: []string{syncWorkerVar + "=1"}})
	require.NoError(t, err, out.String())
}

// syncNet is a small network with batch norm between two convolutions,
// built at seed 7, so that every rank and the reference start alike.
func syncNet() (*Store, *Sequential) {
	torch.ManualSeed(7)
	s := NewStore()
	net := NewSequential(s.Root()).
		Conv2d(3, 4, Conv2dConfig{Kernel: 3, Padding: 1}).
		BatchNorm2d(4).
		ReLU().
		Conv2d(4, 2, Conv2dConfig{Kernel: 1})
	return s, net
}

func syncBatchNormWorker() (err error) {
	defer torch.Recover(&err)
	env, ok, err := distributed.EnvFromOS()
	if err != nil || !ok {
		return fmt.Errorf("no job in the environment (%v)", err)
	}
	g, err := distributed.Init(env, distributed.Options{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer g.Close()

	f32 := torch.Options{DType: torch.Float32}
	torch.ManualSeed(11)
	x, target := torch.Randn([]int64{8, 3, 5, 5}, f32).MulScalar(2).AddScalar(1), torch.Randn([]int64{8, 2, 5, 5}, f32)
	loss := func(net *Sequential, x, target *torch.Tensor) *torch.Tensor {
		return net.Forward(x).Sub(target).Pow(2).Mean()
	}
	const lr = 0.1
	sgd := func(s *Store) {
		torch.NoGrad(func() {
			for _, p := range s.Parameters() {
				p.SubInPlace(p.Grad(), lr)
				p.ZeroGrad()
			}
		})
	}

	// The reference: one process, the whole batch.
	ref, refNet := syncNet()
	loss(refNet, x, target).Backward()
	sgd(ref)

	s, net := syncNet()
	if n := ConvertSyncBatchNorm(s, g); n != 1 {
		return fmt.Errorf("converted %d batch norms, want 1", n)
	}
	var params []*torch.Tensor
	for _, p := range s.NamedParameters() {
		params = append(params, p.Tensor)
	}
	d, err := distributed.NewDataParallel(g, params, nil, 0)
	if err != nil {
		return err
	}
	half := int64(8 / g.Size())
	xs, ts := x.Narrow(0, int64(g.Rank())*half, half), target.Narrow(0, int64(g.Rank())*half, half)
	step := func() error {
		loss(net, xs, ts).Backward()
		if err := d.SyncGradients(); err != nil {
			return err
		}
		sgd(s)
		return nil
	}
	if err := step(); err != nil {
		return err
	}
	want := ref.StateDict()
	for i, n := range s.StateDict() {
		w, got := values(want[i].Tensor), values(n.Tensor)
		for j := range w {
			if diff := math.Abs(got[j] - w[j]); diff > 1e-6*math.Max(1, math.Abs(w[j])) {
				return fmt.Errorf("rank %d: %s[%d] after one step is %g, one process gives %g", g.Rank(), n.Name, j, got[j], w[j])
			}
		}
	}
	for range 9 {
		if err := step(); err != nil {
			return err
		}
	}
	for _, n := range s.StateDict() {
		parts, err := g.AllGather(n.Tensor.Detach().To(torch.Float64))
		if err != nil {
			return err
		}
		if fmt.Sprint(parts[0].Float64s()) != fmt.Sprint(parts[1].Float64s()) {
			return fmt.Errorf("after 10 steps, %s differs between the ranks", n.Name)
		}
	}
	return nil
}
