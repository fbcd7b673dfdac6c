// Command edema trains, evaluates and serves the retinal-edema OCT networks
// (UNet, UNet++, dilated UNet++) of the AI Challenger 2018 pipeline.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "edema",
		Usage: "retinal edema segmentation and detection in OCT scans",
		Commands: []*cli.Command{
			// In the order of the workflow; each lives in its own file.
			demoCommand(),
			synthCommand(),
			prepCommand(),
			listsCommand(),
			trainCommand(),
			evalCommand(),
			testCommand(),
			scoreCommand(),
			modelsCommand(),
			inspectCommand(),
			convertCommand(),
			forwardCommand(),
		},
		// Repeated flags such as --fusion-model carry paths, which may hold commas.
		DisableSliceFlagSeparator: true,
		// Errors are printed once, below, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "edema:", err)
		os.Exit(1)
	}
}
