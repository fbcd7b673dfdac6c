package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/models"
)

// modelsCommand lists the networks with their sizes.
func modelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "list the networks: name, trainable parameters, state-dict entries",
		Description: "Builds each network (unet, unet_nested, unet_nested_dilated) and prints one line\n" +
			"per network with its name, its exact number of trainable parameters and the number\n" +
			"of entries of its state dict, as PyTorch counts them.",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return fmt.Errorf("models: takes no arguments, got %d", c.NArg())
			}
			return writeModels(c.App.Writer, c.Bool("json"))
		},
	}
}

// networkSize is a line of models.
type networkSize struct {
	Name       string `json:"name"`
	Parameters int64  `json:"trainable_parameters"`
	Entries    int    `json:"state_dict_entries"`
}

func writeModels(w io.Writer, asJSON bool) error {
	var sizes []networkSize
	for _, name := range models.Names() {
		m, err := models.New(name)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		sizes = append(sizes, networkSize{name, m.NumParameters(), len(m.StateDict())})
		m.Free()
	}
	if asJSON {
		return writeJSONTo(w, sizes)
	}
	for _, s := range sizes {
		if _, err := fmt.Fprintf(w, "%-20s %9d trainable parameters %4d state-dict entries\n", s.Name, s.Parameters, s.Entries); err != nil {
			return err
		}
	}
	return nil
}
