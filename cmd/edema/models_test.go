package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

func runModels(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "edema",
		Commands:       []*cli.Command{modelsCommand()},
		Writer:         &out,
		ErrWriter:      &out,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"edema", "models"}, args...))
	return out.String(), err
}

func TestModelsCommand(t *testing.T) {
	out, err := runModels(t)
	require.NoError(t, err)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	// SPEC §2's table.
	assert.Equal(t, [][]string{
		{"unet", "2466151", "trainable", "parameters", "98", "state-dict", "entries"},
		{"unet_nested", "2953027", "trainable", "parameters", "140", "state-dict", "entries"},
		{"unet_nested_dilated", "5315395", "trainable", "parameters", "168", "state-dict", "entries"},
	}, rows)

	_, err = runModels(t, "extra")
	assert.ErrorContains(t, err, "takes no arguments")
}
