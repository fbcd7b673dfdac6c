package train

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScheduleLR(t *testing.T) {
	step := Schedule{Mode: "step", Base: 1e-3, Step: 20}
	poly := Schedule{Mode: "poly", Base: 1e-3, Epochs: 100}
	for _, c := range []struct {
		s     Schedule
		epoch int
		want  float64
	}{
		{step, 0, 1e-3}, {step, 19, 1e-3}, {step, 20, 1e-4}, {step, 45, 1e-5},
		{poly, 0, 1e-3}, {poly, 50, 1e-3 * 0.5358867312681466}, {poly, 99, 1e-3 * 0.015848931924611134},
	} {
		assert.InDelta(t, c.want, c.s.LR(c.epoch), 1e-15, "%+v epoch %d", c.s, c.epoch)
	}
}

func TestScheduleValidate(t *testing.T) {
	assert.NoError(t, Schedule{Mode: "step", Base: 0.01, Step: 200}.Validate())
	assert.ErrorContains(t, Schedule{Mode: "cosine", Base: 0.01}.Validate(), "unknown LRMode")
	assert.ErrorContains(t, Schedule{Mode: "step", Base: 0.01}.Validate(), "Step")
	assert.ErrorContains(t, Schedule{Mode: "poly", Base: 0.01}.Validate(), "Epochs")
	assert.ErrorContains(t, Schedule{Mode: "poly", Base: -1, Epochs: 3}.Validate(), "LR")
}
