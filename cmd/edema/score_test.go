package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/edema/edema/submission"
)

// runScore runs "edema score" with args and returns its output.
func runScore(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "edema",
		Commands:       []*cli.Command{scoreCommand()},
		Writer:         &out,
		ErrWriter:      &out,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"edema", "score"}, args...))
	return out.String(), err
}

// writeScoreExample writes a reference of one cube of two 1×2 slices and a
// zipped submission for it, and returns their paths.
func writeScoreExample(t *testing.T) (ref, zipped string) {
	dir := t.TempDir()
	ref, sub := filepath.Join(dir, "groundtruth"), filepath.Join(dir, "submit")
	require.NoError(t, os.Mkdir(ref, 0o755))
	require.NoError(t, os.Mkdir(sub, 0o755))
	// The reference, in files the submission writer makes (uint8 labels,
	// float32 0/1 targets) renamed to the reference's names.
	truth := submission.Cube{Name: "P0001", Slices: 2, Height: 1, Width: 2,
		Labels:     []uint8{1, 2, 3, 1},
		Detections: []float32{1, 1, 0, 1, 0, 1},
	}
	require.NoError(t, submission.WriteCube(ref, truth))
	require.NoError(t, os.Rename(filepath.Join(ref, submission.VolumesFile("P0001")), filepath.Join(ref, "P0001_volumes.npy")))
	require.NoError(t, os.Rename(filepath.Join(ref, submission.DetectionsFile("P0001")), filepath.Join(ref, "P0001_detections.npy")))

	pred := submission.Cube{Name: "P0001", Slices: 2, Height: 1, Width: 2,
		// REA missed, SRF and PED right.
		Labels:     []uint8{0, 2, 3, 0},
		Detections: []float32{0.2, 0.9, 0.1, 0.4, 0.3, 0.8},
	}
	require.NoError(t, submission.WriteCube(sub, pred))
	zipped, err := submission.Zip(sub, []string{"P0001"})
	require.NoError(t, err)
	return ref, zipped
}

func TestScoreCommand(t *testing.T) {
	ref, zipped := writeScoreExample(t)
	out, err := runScore(t, "--submit", zipped, "--ref", ref, "--per-cube")
	require.NoError(t, err)
	// Detection: REA occurs on both slices, so it has no AUC; SRF 0.9
	// (positive) above 0.3, PED 0.8 (positive) above 0.1. Dice: REA 0, SRF
	// 1, PED 1.
	lines := strings.Split(out, "\n")
	for i := range lines {
		lines[i] = strings.Join(strings.Fields(lines[i]), " ")
	}
	assert.Equal(t, []string{
		"score: cubes 1/1",
		"cube AUC REA AUC SRF AUC PED Dice REA Dice SRF Dice PED",
		"P0001 n/a 1.0000 1.0000 0.0000 1.0000 1.0000",
		"",
		"class detection AUC segmentation Dice (AUC per cube, not scored)",
		"REA n/a 0.0000 n/a",
		"SRF 1.0000 1.0000 1.0000",
		"PED 1.0000 1.0000 1.0000",
		"average 1.0000 0.6667 1.0000",
		"score 0.8333",
		"note: detection AUC of REA is undefined: all 2 slices of the reference cubes contain REA",
		"",
	}, lines)
}

func TestScoreCommandErrors(t *testing.T) {
	ref, zipped := writeScoreExample(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, `Required flags "submit, ref" not set`},
		{"extra argument", []string{"--submit", zipped, "--ref", ref, "more"}, `unexpected argument "more"`},
		{"missing reference", []string{"--submit", zipped, "--ref", filepath.Join(ref, "nowhere")}, "nowhere"},
		{"missing submission", []string{"--submit", zipped + ".missing", "--ref", ref}, "submission.zip.missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runScore(t, tt.args...)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestScoreCommandJSON(t *testing.T) {
	ref, zipped := writeScoreExample(t)
	out, status, err := runCommandSplit(t, scoreCommand(), "--submit", zipped, "--ref", ref, "--json")
	require.NoError(t, err)
	assert.Equal(t, "score: cubes 1/1\n", status, "progress on stderr, the figures alone on stdout")
	var got struct {
		Detection       map[string]*float64 `json:"detection_auc"`
		Segmentation    map[string]*float64 `json:"segmentation_dice"`
		AvgDetection    float64             `json:"avg_detection"`
		AvgSegmentation float64             `json:"avg_segmentation"`
		Score           float64             `json:"score"`
		Undefined       []string
		Cubes           []struct {
			Name string
			Dice map[string]*float64
			AUC  map[string]*float64
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	// The figures of TestScoreCommand; REA's AUC is undefined: null.
	assert.Nil(t, got.Detection["REA"])
	assert.Equal(t, 1.0, *got.Detection["SRF"])
	assert.Equal(t, 0.0, *got.Segmentation["REA"])
	assert.InDelta(t, 2.0/3, got.AvgSegmentation, 1e-12)
	assert.InDelta(t, 0.8333, got.Score, 1e-4)
	assert.Equal(t, []string{"detection AUC of REA is undefined: all 2 slices of the reference cubes contain REA"}, got.Undefined)
	require.Len(t, got.Cubes, 1)
	assert.Equal(t, "P0001", got.Cubes[0].Name)
	assert.Nil(t, got.Cubes[0].AUC["REA"])
}
