package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/edema/edema/models"
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
	// The figures are package models' (whose tests check them against the
	// original); the command prints them, one network a line.
	var want [][]string
	for _, name := range models.Names() {
		m, err := models.New(name)
		require.NoError(t, err)
		want = append(want, []string{name, strconv.FormatInt(m.NumParameters(), 10), "trainable", "parameters",
			strconv.Itoa(len(m.StateDict())), "state-dict", "entries"})
		m.Free()
	}
	assert.Equal(t, want, rows)

	_, err = runModels(t, "extra")
	assert.ErrorContains(t, err, "takes no arguments")
}

func TestModelsCommandJSON(t *testing.T) {
	out, err := runModels(t, "--json")
	require.NoError(t, err)
	var got []networkSize
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got, len(models.Names()))
	for i, name := range models.Names() {
		m, err := models.New(name)
		require.NoError(t, err)
		assert.Equal(t, networkSize{name, m.NumParameters(), len(m.StateDict())}, got[i])
		m.Free()
	}
}
