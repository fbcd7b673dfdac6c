package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/models"
	"github.com/edema/edema/torch/pth"
)

// inspectCommand describes a checkpoint file.
func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a checkpoint: format, epoch and dice, key prefix, tensors and parameter count",
		ArgsUsage: "PATH",
		Description: "Reads a checkpoint in any format (torch.save zip or legacy, a pickle of tensors or\n" +
			"safetensors) and prints its format, the checkpoint entries (epoch, best_dice, dice_epoch,\n" +
			"optimizer state, others), whether its keys carry DataParallel's \"module.\" prefix, each\n" +
			"tensor's key (without the prefix), dtype and shape, and the number of parameters.",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("inspect: expected one PATH, got %d arguments", c.NArg())
			}
			path := c.Args().First()
			ckpt, err := models.ReadCheckpoint(path)
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			if c.Bool("json") {
				return writeJSONTo(c.App.Writer, newInspectionJSON(path, ckpt))
			}
			return writeInspection(c.App.Writer, path, ckpt)
		},
	}
}

var formatDescriptions = map[pth.Format]string{
	pth.FormatZip:         "zip (torch.save, PyTorch 1.6 and later)",
	pth.FormatLegacy:      "legacy (torch.save, PyTorch 0.4 to 1.5)",
	pth.FormatSafetensors: "safetensors",
	pth.FormatPickle:      "pickle (pickle.dump of tensors)",
}

// writeInspection prints the report of inspect: the checkpoint's entries,
// then what the state dict tells.
func writeInspection(w io.Writer, path string, c *models.Checkpoint) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("file", path)
	field("format", formatDescriptions[c.Format])
	if c.Bare {
		field("contents", "state dict")
	} else {
		field("contents", "checkpoint dict")
	}
	if c.Prefix != "" {
		field("key prefix", c.Prefix+" (DataParallel)")
	} else {
		field("key prefix", "none")
	}
	if names := models.Identify(c.StateDict); len(names) > 0 {
		field("network", strings.Join(names, " or "))
	} else {
		field("network", "none of "+strings.Join(models.Names(), ", "))
	}
	if c.Epoch != nil {
		field("epoch", strconv.FormatInt(*c.Epoch, 10))
	}
	if c.BestDice != nil {
		field("best_dice", strconv.FormatFloat(*c.BestDice, 'g', -1, 64))
	}
	if c.DiceEpoch != nil {
		field("dice_epoch", strconv.FormatFloat(*c.DiceEpoch, 'g', -1, 64))
	}
	if c.Optimizer != nil {
		field("optimizer", describeOptimizer(c.Optimizer))
	}
	if c.Extra.Len() > 0 {
		var names []string
		for _, k := range c.Extra.Keys() {
			names = append(names, fmt.Sprint(k))
		}
		field("other entries", strings.Join(names, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeStateDictReport(w, c.StateDict)
}

// describeOptimizer summarizes an optimizer's state_dict().
func describeOptimizer(v any) string {
	d, ok := v.(*pth.Dict)
	if !ok {
		return "present"
	}
	state, _ := d.Get("state")
	groups, _ := d.Get("param_groups")
	s, ok1 := state.(*pth.Dict)
	g, ok2 := groups.([]any)
	if !ok1 || !ok2 {
		return "present"
	}
	desc := fmt.Sprintf("state of %d parameters in %d groups", s.Len(), len(g))
	if len(g) > 0 {
		if first, ok := g[0].(*pth.Dict); ok {
			if lr, ok := first.Get("lr"); ok {
				desc += fmt.Sprintf(", lr %v", lr)
			}
		}
	}
	return desc
}

// batchNormBuffers are the keys' last components of BatchNorm's buffers,
// which are state but not parameters.
var batchNormBuffers = []string{"running_mean", "running_var", "num_batches_tracked"}

func isBatchNormBuffer(key string) bool {
	for _, b := range batchNormBuffers {
		if key == b || strings.HasSuffix(key, "."+b) {
			return true
		}
	}
	return false
}

// countParameters counts the elements of a state dict's parameters, and
// the BatchNorm buffers and their elements apart.
func countParameters(sd *pth.StateDict) (params, buffers, bufferElems int64) {
	for _, k := range sd.Keys() {
		t, _ := sd.Get(k)
		if isBatchNormBuffer(k) {
			buffers++
			bufferElems += t.Numel()
			continue
		}
		params += t.Numel()
	}
	return params, buffers, bufferElems
}

// inspectionJSON is what inspect --json prints.
type inspectionJSON struct {
	File       string       `json:"file"`
	Format     string       `json:"format"`
	Bare       bool         `json:"bare_state_dict"`
	Prefix     string       `json:"key_prefix"`
	Networks   []string     `json:"networks"`
	Epoch      *int64       `json:"epoch,omitempty"`
	BestDice   *float64     `json:"best_dice,omitempty"`
	DiceEpoch  *float64     `json:"dice_epoch,omitempty"`
	Optimizer  string       `json:"optimizer,omitempty"`
	Other      []string     `json:"other_entries"`
	Parameters int64        `json:"parameters"`
	Buffers    int64        `json:"batchnorm_buffers"`
	Tensors    []tensorJSON `json:"tensors"`
}

type tensorJSON struct {
	Key   string  `json:"key"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

func newInspectionJSON(path string, c *models.Checkpoint) inspectionJSON {
	params, buffers, _ := countParameters(c.StateDict)
	r := inspectionJSON{
		File: path, Format: c.Format.String(), Bare: c.Bare, Prefix: c.Prefix,
		Networks: append([]string{}, models.Identify(c.StateDict)...),
		Epoch:    c.Epoch, Other: []string{},
		Parameters: params, Buffers: buffers, Tensors: []tensorJSON{},
	}
	if c.BestDice != nil {
		r.BestDice = figure64(*c.BestDice)
	}
	if c.DiceEpoch != nil {
		r.DiceEpoch = figure64(*c.DiceEpoch)
	}
	if c.Optimizer != nil {
		r.Optimizer = describeOptimizer(c.Optimizer)
	}
	for _, k := range c.Extra.Keys() {
		r.Other = append(r.Other, fmt.Sprint(k))
	}
	for _, k := range c.StateDict.Keys() {
		t, _ := c.StateDict.Get(k)
		r.Tensors = append(r.Tensors, tensorJSON{k, t.DType.String(), append([]int64{}, t.Shape...)})
	}
	return r
}

// writeStateDictReport prints the parameter count and the table of
// tensors of a state dict.
func writeStateDictReport(w io.Writer, sd *pth.StateDict) error {
	params, buffers, bufferElems := countParameters(sd)
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "tensors:\t%d\n", sd.Len())
	fmt.Fprintf(tw, "parameters:\t%d", params)
	if buffers > 0 {
		fmt.Fprintf(tw, " (not counting %d BatchNorm buffers of %d elements)", buffers, bufferElems)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "KEY\tDTYPE\tSHAPE")
	for _, k := range sd.Keys() {
		t, _ := sd.Get(k)
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = strconv.FormatInt(d, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t[%s]\n", k, t.DType, strings.Join(dims, ", "))
	}
	return tw.Flush()
}
