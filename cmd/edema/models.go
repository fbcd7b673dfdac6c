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
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return fmt.Errorf("models: takes no arguments, got %d", c.NArg())
			}
			return writeModels(c.App.Writer)
		},
	}
}

func writeModels(w io.Writer) error {
	for _, name := range models.Names() {
		m, err := models.New(name)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		params, entries := m.NumParameters(), len(m.StateDict())
		m.Free()
		if _, err := fmt.Fprintf(w, "%-20s %9d trainable parameters %4d state-dict entries\n", name, params, entries); err != nil {
			return err
		}
	}
	return nil
}
