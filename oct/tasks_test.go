package oct

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTasks(t *testing.T) {
	for _, tc := range []struct {
		tasks Tasks
		text  string
	}{
		{BothTasks, "segmentation and detection"},
		{Segmentation, "segmentation"},
		{Detection, "detection"},
		{0, "no task"},
	} {
		assert.Equal(t, tc.text, tc.tasks.String())
		if tc.tasks != 0 {
			back, err := ParseTasks(tc.tasks.Names())
			require.NoError(t, err)
			assert.Equal(t, tc.tasks, back)
		}
	}
	assert.True(t, BothTasks.Has(Detection))
	assert.False(t, Segmentation.Has(Detection))
	assert.False(t, Detection.Has(BothTasks))
	_, err := ParseTasks([]string{"detection", "counting"})
	assert.ErrorContains(t, err, `unknown task "counting"`)
	_, err = ParseTasks(nil)
	assert.ErrorContains(t, err, "no task")
}
