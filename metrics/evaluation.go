package metrics

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math"
	"slices"

	"github.com/edema/edema/oct"
)

// CubeScores are the figures of one cube.
type CubeScores struct {
	Name string
	// Dice per lesion class, NaN where the class is absent from the cube's
	// ground truth.
	Dice PerLesion
	// AUC per lesion class of the cube's per-slice detection probabilities
	// against its per-slice targets, NaN where the targets of the class are
	// all 0 or all 1. The challenge pools the slices of all cubes instead
	// (Evaluation.PooledAUC).
	AUC PerLesion
}

// Evaluation accumulates the scores of a set of cubes. Only the per-cube
// figures and the per-slice detection probabilities are kept, never the
// volumes. The zero value is an empty evaluation.
type Evaluation struct {
	// Absent holds the tasks the evaluated network or fusion does not do
	// (models.Prediction.Absent): their figures are NaN everywhere, and
	// the predictions given for them are not scored.
	Absent oct.Tasks

	cubes   []CubeScores
	scores  [oct.NumLesions][]float64
	targets [oct.NumLesions][]bool
}

// Add scores one cube: pred and truth are its predicted and true label
// volumes (S×H×W), detections its per-slice detection probabilities (S×3,
// row-major) and targets its per-slice detection targets (S×3, values 0 or
// 1). A nil targets is derived from truth with SliceTargets. On an error the
// evaluation is left unchanged.
func (e *Evaluation) Add(name string, pred, truth []uint8, detections, targets []float32) error {
	return addCube(e, name, pred, truth, detections, targets)
}

// Add64 is Add for float64 detection probabilities, such as a submission's:
// rounding them to float32 could tie scores that differ and change an AUC.
func (e *Evaluation) Add64(name string, pred, truth []uint8, detections, targets []float64) error {
	return addCube(e, name, pred, truth, detections, targets)
}

func addCube[T float32 | float64](e *Evaluation, name string, pred, truth []uint8, detections, targets []T) error {
	if len(detections) == 0 || len(detections)%oct.NumLesions != 0 {
		return fmt.Errorf("cube %s: %d detection probabilities do not make rows of %d", name, len(detections), oct.NumLesions)
	}
	nslices := len(detections) / oct.NumLesions
	if len(pred) != len(truth) {
		return fmt.Errorf("cube %s: prediction has %d voxels, ground truth %d", name, len(pred), len(truth))
	}
	if len(truth)%nslices != 0 {
		return fmt.Errorf("cube %s: %d voxels do not split into the %d slices of its detections", name, len(truth), nslices)
	}
	if targets == nil {
		derived, err := SliceTargets(truth, nslices)
		if err != nil {
			return fmt.Errorf("cube %s: %w", name, err)
		}
		targets = make([]T, len(derived))
		for i, t := range derived {
			targets[i] = T(t)
		}
	}
	if len(targets) != len(detections) {
		return fmt.Errorf("cube %s: %d detection targets for %d probabilities", name, len(targets), len(detections))
	}
	for i, d := range detections {
		if math.IsNaN(float64(d)) {
			return fmt.Errorf("cube %s: detection probability of slice %d, class %s is NaN", name, i/oct.NumLesions, oct.LesionNames[i%oct.NumLesions])
		}
		if t := targets[i]; t != 0 && t != 1 {
			return fmt.Errorf("cube %s: detection target of slice %d, class %s is %g, want 0 or 1", name, i/oct.NumLesions, oct.LesionNames[i%oct.NumLesions], t)
		}
	}
	dice, err := Dice(pred, truth)
	if err != nil {
		return fmt.Errorf("cube %s: %w", name, err)
	}

	cube := CubeScores{Name: name, Dice: dice}
	for c := range oct.NumLesions {
		scores, positive := column(detections, c), positiveColumn(targets, c)
		// addCube has ruled out what ROC rejects (NaN, mismatched lengths).
		curve, _ := ROC(scores, positive)
		cube.AUC[c] = curve.AUC()
		e.scores[c] = append(e.scores[c], scores...)
		e.targets[c] = append(e.targets[c], positive...)
	}
	e.cubes = append(e.cubes, cube)
	return nil
}

func column[T float32 | float64](rows []T, c int) []float64 {
	col := make([]float64, len(rows)/oct.NumLesions)
	for s := range col {
		col[s] = float64(rows[s*oct.NumLesions+c])
	}
	return col
}

func positiveColumn[T float32 | float64](rows []T, c int) []bool {
	col := make([]bool, len(rows)/oct.NumLesions)
	for s := range col {
		col[s] = rows[s*oct.NumLesions+c] == 1
	}
	return col
}

// Cubes returns the figures of every cube added, in order.
func (e *Evaluation) Cubes() []CubeScores {
	cubes := slices.Clone(e.cubes)
	for i := range cubes {
		if e.Absent.Has(oct.Segmentation) {
			cubes[i].Dice = absent()
		}
		if e.Absent.Has(oct.Detection) {
			cubes[i].AUC = absent()
		}
	}
	return cubes
}

// absent is the figures of a task that was not done.
func absent() PerLesion { return PerLesion{math.NaN(), math.NaN(), math.NaN()} }

// Dice returns per lesion class the mean Dice over the cubes where the class
// is defined.
func (e *Evaluation) Dice() PerLesion {
	if e.Absent.Has(oct.Segmentation) {
		return absent()
	}
	dice := make([]PerLesion, len(e.cubes))
	for i, cube := range e.cubes {
		dice[i] = cube.Dice
	}
	return MeanOverCubes(dice)
}

// CubeAUC returns per lesion class the mean over cubes of each cube's own
// detection AUC, over the cubes where it is defined. It is not the
// challenge's figure (that is PooledAUC) but shows how well the detection
// ranks the slices within a cube, whatever its calibration across cubes.
func (e *Evaluation) CubeAUC() PerLesion {
	if e.Absent.Has(oct.Detection) {
		return absent()
	}
	auc := make([]PerLesion, len(e.cubes))
	for i, cube := range e.cubes {
		auc[i] = cube.AUC
	}
	return MeanOverCubes(auc)
}

// PooledROC returns per lesion class the ROC curve of the detection
// probabilities of all slices of all cubes together, as the original
// evaluation script and the organisers' scorer compute it; nothing
// meaningful when detection is Absent.
func (e *Evaluation) PooledROC() [oct.NumLesions]ROCCurve {
	var curves [oct.NumLesions]ROCCurve
	for c := range curves {
		// Add has ruled out what ROC rejects (NaN, mismatched lengths).
		curves[c], _ = ROC(e.scores[c], e.targets[c])
	}
	return curves
}

// PooledTargets returns per lesion class the number of slices, over all
// cubes, whose target is positive, and the number of slices in all: what
// decides whether a pooled AUC is defined.
func (e *Evaluation) PooledTargets() (positive [oct.NumLesions]int, slices int) {
	for c := range positive {
		for _, p := range e.targets[c] {
			if p {
				positive[c]++
			}
		}
	}
	return positive, len(e.targets[0])
}

// PooledAUC returns per lesion class the AUC of PooledROC: the challenge's
// official detection figure.
func (e *Evaluation) PooledAUC() PerLesion {
	if e.Absent.Has(oct.Detection) {
		return absent()
	}
	var auc PerLesion
	for c, curve := range e.PooledROC() {
		auc[c] = curve.AUC()
	}
	return auc
}

// Summary gathers the figures of an evaluation. Each mean is over the
// defined per-class figures (see PerLesion.Mean).
type Summary struct {
	Cubes int
	// Absent holds the tasks whose figures are absent (NaN): see
	// Evaluation.Absent.
	Absent        oct.Tasks
	Dice          PerLesion
	MeanDice      float64
	PooledAUC     PerLesion
	MeanPooledAUC float64
	CubeAUC       PerLesion
	MeanCubeAUC   float64
}

// Summary returns the figures of the cubes added so far.
func (e *Evaluation) Summary() Summary {
	s := Summary{
		Cubes:     len(e.cubes),
		Absent:    e.Absent,
		Dice:      e.Dice(),
		PooledAUC: e.PooledAUC(),
		CubeAUC:   e.CubeAUC(),
	}
	s.MeanDice = s.Dice.Mean()
	s.MeanPooledAUC = s.PooledAUC.Mean()
	s.MeanCubeAUC = s.CubeAUC.Mean()
	return s
}

// Append adds other's cubes after e's, as if each had been added to e in
// turn: an evaluation sharded by cube over several processes, with its
// parts appended in the order of the shards, is the evaluation of one
// process.
func (e *Evaluation) Append(other *Evaluation) {
	e.Absent |= other.Absent
	e.cubes = append(e.cubes, other.cubes...)
	for c := range oct.NumLesions {
		e.scores[c] = append(e.scores[c], other.scores[c]...)
		e.targets[c] = append(e.targets[c], other.targets[c]...)
	}
}

// evaluationWire is an Evaluation's encoding.
type evaluationWire struct {
	Absent  oct.Tasks
	Cubes   []CubeScores
	Scores  [oct.NumLesions][]float64
	Targets [oct.NumLesions][]bool
}

// MarshalBinary encodes e (with encoding/gob, which keeps NaN), for the
// processes of a sharded evaluation to send their parts to each other.
func (e *Evaluation) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(evaluationWire{e.Absent, e.cubes, e.scores, e.targets})
	return b.Bytes(), err
}

// UnmarshalBinary decodes what MarshalBinary encoded into e.
func (e *Evaluation) UnmarshalBinary(data []byte) error {
	var w evaluationWire
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&w); err != nil {
		return fmt.Errorf("decoding an evaluation: %w", err)
	}
	for c := range oct.NumLesions {
		if len(w.Scores[c]) != len(w.Targets[c]) {
			return fmt.Errorf("decoding an evaluation: class %d has %d scores and %d targets", c, len(w.Scores[c]), len(w.Targets[c]))
		}
	}
	e.Absent, e.cubes, e.scores, e.targets = w.Absent, w.Cubes, w.Scores, w.Targets
	return nil
}
