package main

import (
	"encoding/json"
	"io"
	"math"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/metrics"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
)

// --json prints a command's result as one JSON document on stdout, for
// scripts; what the command says while it works then goes to stderr.

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout (undefined figures are null); progress goes to stderr"}
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// figure is a figure for JSON: NaN, which JSON cannot hold, is null.
func figure64(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// perLesionJSON names a figure per lesion class: {"REA": …, "SRF": …, "PED": …}.
func perLesionJSON(p metrics.PerLesion) map[string]*float64 {
	m := make(map[string]*float64, oct.NumLesions)
	for c, name := range oct.LesionNames {
		m[name] = figure64(p[c])
	}
	return m
}

// scoreJSON is the official score as score --json and eval --json print it.
type scoreJSON struct {
	Detection       map[string]*float64 `json:"detection_auc"`
	Segmentation    map[string]*float64 `json:"segmentation_dice"`
	AvgDetection    *float64            `json:"avg_detection"`
	AvgSegmentation *float64            `json:"avg_segmentation"`
	Score           *float64            `json:"score"`
	CubeAUC         map[string]*float64 `json:"cube_auc_not_scored"`
	Undefined       []string            `json:"undefined"`
	Cubes           []cubeJSON          `json:"cubes"`
}

type cubeJSON struct {
	Name string              `json:"name"`
	Dice map[string]*float64 `json:"dice"`
	AUC  map[string]*float64 `json:"auc"`
}

func newScoreJSON(r submission.Result) scoreJSON {
	s := scoreJSON{
		Detection:       perLesionJSON(r.Detection),
		Segmentation:    perLesionJSON(r.Segmentation),
		AvgDetection:    figure64(r.AvgDetection),
		AvgSegmentation: figure64(r.AvgSegmentation),
		Score:           figure64(r.Score),
		CubeAUC:         perLesionJSON(r.CubeAUC),
		Undefined:       append([]string{}, r.Undefined...),
		Cubes:           make([]cubeJSON, len(r.Cubes)),
	}
	for i, c := range r.Cubes {
		s.Cubes[i] = cubeJSON{Name: c.Name, Dice: perLesionJSON(c.Dice), AUC: perLesionJSON(c.AUC)}
	}
	return s
}
