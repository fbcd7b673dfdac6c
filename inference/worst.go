package inference

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"image/png"
	"slices"

	"github.com/edema/edema/metrics"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

// DefaultWorstSlices is how many slices of lowest Dice per class a report
// shows.
const DefaultWorstSlices = 4

// WorstSlice is a slice whose Dice for one lesion class is among the
// lowest of an evaluation.
type WorstSlice struct {
	Cube        string
	CubeIndex   int // the cube's place in the evaluated list
	Slice       int // from 0
	Dice        float64
	Truth, Pred int    // the class's pixels in the ground truth and in the prediction
	PNG         []byte // the slice's picture (SliceFigure)
}

// WorstSlices collects, for each lesion class, the K slices with the
// lowest Dice of the class among the slices whose ground truth holds it,
// with their pictures, for an evaluation's report. Ties go to the earlier
// cube and slice, so the choice does not depend on how an evaluation was
// sharded. Set EvalOptions.Worst to one to fill it.
type WorstSlices struct {
	K       int
	Classes [oct.NumLesions][]WorstSlice // lowest Dice first
}

// before orders the candidates: lower Dice first, then list order.
func before(a, b WorstSlice) bool {
	if a.Dice != b.Dice {
		return a.Dice < b.Dice
	}
	if a.CubeIndex != b.CubeIndex {
		return a.CubeIndex < b.CubeIndex
	}
	return a.Slice < b.Slice
}

// add considers every slice of a predicted cube, at index in the list;
// opaque is SliceFigure's.
func (w *WorstSlices) add(index int, cube *oct.Cube, pred *models.Prediction, opaque bool) error {
	if w.K <= 0 || !cube.Labelled() {
		return nil
	}
	area := cube.H * cube.W
	for s := range cube.Slices() {
		truth, labels := cube.Labels[s*area:(s+1)*area], pred.Labels[s*area:(s+1)*area]
		var conf metrics.Confusion
		if err := conf.Add(labels, truth); err != nil {
			return fmt.Errorf("cube %s, slice %d: %w", cube.Name, s, err)
		}
		dice := conf.Dice()
		for c := range oct.NumLesions {
			g, p := conf.Counts(c + 1)
			if g == 0 {
				continue
			}
			cand := WorstSlice{Cube: cube.Name, CubeIndex: index, Slice: s, Dice: dice[c], Truth: int(g), Pred: int(p)}
			list := w.Classes[c]
			if len(list) == w.K && !before(cand, list[len(list)-1]) {
				continue
			}
			fig := SliceFigure(cube, pred, s)
			fig.Opaque = opaque
			img, err := fig.Draw()
			if err != nil {
				return fmt.Errorf("cube %s, slice %d: %w", cube.Name, s, err)
			}
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				return err
			}
			cand.PNG = b.Bytes()
			w.insert(c, cand)
		}
	}
	return nil
}

func (w *WorstSlices) insert(c int, cand WorstSlice) {
	list := w.Classes[c]
	at, _ := slices.BinarySearchFunc(list, cand, func(a, b WorstSlice) int {
		if before(a, b) {
			return -1
		}
		if before(b, a) {
			return 1
		}
		return 0
	})
	list = slices.Insert(list, at, cand)
	if len(list) > w.K {
		list = list[:w.K]
	}
	w.Classes[c] = list
}

// merge takes the candidates of other (another shard's) into w.
func (w *WorstSlices) merge(other *WorstSlices) {
	for c := range oct.NumLesions {
		for _, s := range other.Classes[c] {
			if len(w.Classes[c]) < w.K || before(s, w.Classes[c][len(w.Classes[c])-1]) {
				w.insert(c, s)
			}
		}
	}
}

func (w *WorstSlices) encode() ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(w)
	return b.Bytes(), err
}

func decodeWorst(data []byte) (*WorstSlices, error) {
	var w WorstSlices
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&w); err != nil {
		return nil, fmt.Errorf("decoding the lowest-Dice slices: %w", err)
	}
	return &w, nil
}
