package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/models"
	"github.com/edema/edema/torch/pth"
)

// convertCommand rewrites a checkpoint in another format or key style.
func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a checkpoint between torch.save's zip and legacy formats and safetensors",
		ArgsUsage: "IN OUT",
		Description: "Reads IN, a checkpoint in any format (torch.save zip or legacy, a pickle of tensors or\n" +
			"safetensors, told apart by content), and writes its model state, epoch, dice figures, optimizer\n" +
			"state and other entries to OUT in the chosen format. With --prefix module (the default) the keys\n" +
			"carry the \"module.\" prefix of the original DataParallel models, so the original scripts load OUT\n" +
			"unchanged; --prefix none writes plain keys. Safetensors keeps the tensors and, as metadata\n" +
			"strings, the epoch, the dice figures and the other entries that are numbers or strings, but not\n" +
			"the optimizer state. OUT is replaced atomically.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "zip", Usage: "output format: zip (PyTorch 1.6+), legacy (PyTorch 0.4-1.5) or safetensors"},
			&cli.StringFlag{Name: "prefix", Value: "module", Usage: `key prefix: "module" (DataParallel, as the original scripts saved) or "none"`},
		},
		Action: func(c *cli.Context) error {
			// The usage puts the flags after IN and OUT, where urfave/cli no
			// longer looks for them.
			fs := flag.NewFlagSet("convert", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			format := fs.String("format", c.String("format"), "")
			fs.StringVar(format, "f", *format, "")
			prefix := fs.String("prefix", c.String("prefix"), "")
			var args []string
			for rest := c.Args().Slice(); ; rest = rest[1:] {
				if err := fs.Parse(rest); err != nil {
					return fmt.Errorf("convert: %w", err)
				}
				if rest = fs.Args(); len(rest) == 0 {
					break
				}
				args = append(args, rest[0])
			}
			if len(args) != 2 {
				return fmt.Errorf("convert: expected IN and OUT, got %d arguments", len(args))
			}
			in, out := args[0], args[1]
			opts, err := saveOptions(*format, *prefix)
			if err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			ckpt, err := models.ReadCheckpoint(in)
			if err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			if opts.Format == pth.FormatSafetensors {
				if dropped := ckpt.SafetensorsLeavesOut(); len(dropped) > 0 {
					fmt.Fprintf(c.App.ErrWriter, "edema: convert: safetensors has no room for %s; left out\n", strings.Join(dropped, ", "))
				}
			}
			if err := ckpt.Save(out, opts); err != nil {
				return fmt.Errorf("convert: writing %s: %w", out, err)
			}
			keys := "plain keys"
			if !opts.PlainKeys {
				keys = "keys prefixed " + pth.DataParallelPrefix
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %s, %d tensors, %s\n", out, opts.Format, ckpt.StateDict.Len(), keys)
			return nil
		},
	}
}

// saveOptions parses the --format and --prefix flags.
func saveOptions(format, prefix string) (models.SaveOptions, error) {
	var opts models.SaveOptions
	switch format {
	case "zip":
		opts.Format = pth.FormatZip
	case "legacy":
		opts.Format = pth.FormatLegacy
	case "safetensors":
		opts.Format = pth.FormatSafetensors
	default:
		return opts, fmt.Errorf("--format %q: want zip, legacy or safetensors", format)
	}
	switch prefix {
	case "module":
	case "none":
		opts.PlainKeys = true
	default:
		return opts, fmt.Errorf("--prefix %q: want module or none", prefix)
	}
	return opts, nil
}
