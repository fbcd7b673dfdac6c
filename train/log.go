package train

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/edema/edema/internal/atomicfile"
)

// LogName is the file name of the per-epoch log, as in the original.
const LogName = "dice_epoch.txt"

// logColumns are the original's columns (Dice_1 is the training Dice of
// class 1, Dice_11 its validation Dice, ...) followed by ours. The
// training Dice columns hold the original's figure, the mean over the
// epoch's batches of each batch's Dice smoothed by 0.001; Dice_Train_Pooled
// is the Dice of all the epoch's pixels together, unsmoothed.
var logColumns = []string{
	"Epoch", "Dice_Train", "Dice_Val", "AUC",
	"Dice_1", "Dice_11", "Dice_2", "Dice_22", "Dice_3", "Dice_33",
	"AUC_1", "AUC_2", "AUC_3",
	"Loss_Train", "LR", "Dice_Train_Pooled",
}

// olderLogColumns is the number of columns of logs written before
// Dice_Train_Pooled; ReadLog reads them with that figure NaN.
const olderLogColumns = 15

// Row is one epoch of the log.
type Row struct {
	Epoch          int // counted from 0, as the original logs it
	TrainDice      float64
	ValDice        float64
	AUC            float64
	TrainClassDice [3]float64
	ValClassDice   [3]float64
	ClassAUC       [3]float64
	TrainLoss      float64
	LR             float64
	// TrainPooledDice is the mean over the classes of the training Dice of
	// all the epoch's pixels together.
	TrainPooledDice float64
}

func (r Row) values() []float64 {
	return []float64{
		r.TrainDice, r.ValDice, r.AUC,
		r.TrainClassDice[0], r.ValClassDice[0], r.TrainClassDice[1], r.ValClassDice[1],
		r.TrainClassDice[2], r.ValClassDice[2],
		r.ClassAUC[0], r.ClassAUC[1], r.ClassAUC[2],
		r.TrainLoss, r.LR, r.TrainPooledDice,
	}
}

func rowOf(epoch int, v []float64) Row {
	return Row{
		Epoch: epoch, TrainDice: v[0], ValDice: v[1], AUC: v[2],
		TrainClassDice: [3]float64{v[3], v[5], v[7]},
		ValClassDice:   [3]float64{v[4], v[6], v[8]},
		ClassAUC:       [3]float64{v[9], v[10], v[11]},
		TrainLoss:      v[12], LR: v[13], TrainPooledDice: v[14],
	}
}

// WriteLog writes rows in the original's format (tab-separated, a tab after
// every field, the epoch as %03d and the figures as %6f), replacing path
// atomically.
func WriteLog(path string, rows []Row) error {
	var b bytes.Buffer
	for _, c := range logColumns {
		b.WriteString(c + "\t")
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%03d\t", r.Epoch)
		for _, v := range r.values() {
			fmt.Fprintf(&b, "%6f\t", v)
		}
		b.WriteString("\n")
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b.Bytes())
		return err
	})
}

// ReadLog reads a log written by WriteLog. A missing file is an empty log.
func ReadLog(path string) ([]Row, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	line, columns := 0, 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if line == 1 {
			columns = len(fields)
			if (columns != len(logColumns) && columns != olderLogColumns) || fields[0] != logColumns[0] {
				return nil, fmt.Errorf("%s: not a training log (header %q)", path, sc.Text())
			}
			continue
		}
		if len(fields) == 0 {
			continue
		}
		if len(fields) != columns {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", path, line, len(fields), columns)
		}
		epoch, err := strconv.Atoi(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad epoch %q", path, line, fields[0])
		}
		v := make([]float64, len(logColumns)-1)
		for i := len(fields) - 1; i < len(v); i++ {
			v[i] = math.NaN()
		}
		for i, s := range fields[1:] {
			if v[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("%s:%d: bad number %q in column %s", path, line, s, logColumns[i+1])
			}
		}
		rows = append(rows, rowOf(epoch, v))
	}
	return rows, sc.Err()
}
