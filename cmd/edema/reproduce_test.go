package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/reproduce"
)

// TestReproduceQuick runs the whole table on its quick synthetic set:
// every row trains, each figure is there where the row does the task and
// absent (–) where it does not, the fusion row is there, and a second run
// keeps what the first trained.
func TestReproduceQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("trains seven rows")
	}
	out := filepath.Join(t.TempDir(), "reproduce")
	stdout, err := runCommand(t, reproduceCommand(), "--quick", "--out", out, "--threads", "2")
	require.NoError(t, err)
	t.Log(stdout)
	// The table follows the log; it starts at its header.
	_, table, ok := strings.Cut(stdout, "\nmodel ")
	require.True(t, ok, stdout)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	rows := reproduce.Rows()
	require.GreaterOrEqual(t, len(lines), 1+len(rows), stdout)
	// Per row: which of val Dice, val AUC, test Dice, test AUC it has.
	has := map[string][4]bool{
		"ResNet18 (*pre)": {false, true, false, true},
		"UNet no":         {true, false, true, false},
	}
	for i, row := range rows {
		line := lines[1+i]
		require.True(t, strings.HasPrefix(line, row.Model), line)
		fields := strings.Fields(strings.TrimPrefix(line, row.Model))
		// multi-task, loss, then four "got (published)" pairs and the score.
		require.Len(t, fields, 2+8+1, line)
		want := [4]bool{true, true, true, true}
		if w, ok := has[row.Model]; ok {
			want = w
		} else if w, ok := has[row.Model+" "+fields[0]]; ok {
			want = w
		}
		for k := range 4 {
			got := fields[2+2*k]
			assert.Equal(t, want[k], got != "–", "%s, column %d: %q", row.Model, k, got)
		}
		assert.Equal(t, want == [4]bool{true, true, true, true}, fields[10] != "–", "%s: official score", row.Model)
	}
	md, err := os.ReadFile(filepath.Join(out, reproduce.TableName))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| Fusion (UNet++ & UNet) | yes |")
	assert.Contains(t, string(md), "(UNet++'s: none published)")
	assert.Contains(t, string(md), "from scratch (the original started from ImageNet weights: --pretrained)")
	for _, row := range rows[:len(rows)-1] {
		assert.FileExists(t, filepath.Join(out, row.Key, "train", "checkpoint", "checkpoint_latest.pth.tar"))
		assert.FileExists(t, filepath.Join(out, row.Key, "val", "score.txt"))
	}

	// The detector's checkpoint, by edema eval and test: its segmentation
	// is absent, and test writes its detections alone.
	data := filepath.Join(out, "data")
	detector := filepath.Join(out, "resnet18_bce", "train", "checkpoint", "model_best.pth.tar")
	ev, err := runCommand(t, evalCommand(), "-d", data, "-l", filepath.Join(data, "data_path"), "--seg-name", "resnet18", "--seg-path", detector, "--out", filepath.Join(t.TempDir(), "eval"))
	require.NoError(t, err)
	assert.Contains(t, ev, "Dice absent (the network does not segment)")
	assert.Contains(t, ev, "note: segmentation is absent")
	testOut := filepath.Join(t.TempDir(), "test")
	written, err := runCommand(t, testCommand(), "-d", data, "-l", filepath.Join(data, "data_path"), "--seg-name", "resnet18", "--seg-path", detector, "--out", testOut)
	require.NoError(t, err)
	assert.Contains(t, written, "wrote <CUBE>_labelMark_detections.npy for 1 cubes")
	_, err = runCommand(t, testCommand(), "-d", data, "-l", filepath.Join(data, "data_path"), "--seg-name", "resnet18", "--seg-path", detector, "--seg", "--out", testOut)
	assert.ErrorContains(t, err, "resnet18 does not segment: it has no label volumes to write")

	// Again: nothing is trained anew, the table is the same.
	again, err := runCommand(t, reproduceCommand(), "--quick", "--out", out, "--threads", "2")
	require.NoError(t, err)
	_, tableAgain, _ := strings.Cut(again, "\nmodel ")
	assert.Equal(t, table, tableAgain)
	assert.Contains(t, again, "unet_nested_mix_33: trained already (2 epochs")
}

func TestReproduceFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data-dir", "x"}, "--data-dir and --list-dir go together"},
		{[]string{"--quick", "-d", "x", "-l", "y"}, "--quick runs on its own synthetic data set"},
		{[]string{"--device", "cuda:9"}, "reproduce: device cuda:9"},
		{[]string{"extra"}, `reproduce: unexpected argument "extra"`},
		{[]string{"-d", "/nonexistent", "-l", "/nonexistent"}, "/nonexistent"},
	} {
		_, err := runCommand(t, reproduceCommand(), append([]string{"--out", filepath.Join(t.TempDir(), "r")}, tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
}
