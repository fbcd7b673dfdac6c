package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/torch"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"edema"}, args...))
	return out.String(), err
}

func TestHostCacheFlag(t *testing.T) {
	defer torch.DisableHostCache()
	for _, tc := range []struct {
		args  []string
		limit int64
	}{
		{[]string{"models"}, torch.DefaultHostCacheLimit()},
		{[]string{"--host-cache-mb", "64", "models"}, 64 << 20},
		{[]string{"--host-cache-mb", "0", "models"}, 0},
	} {
		torch.DisableHostCache()
		_, err := runApp(t, tc.args...)
		require.NoError(t, err, "%v", tc.args)
		assert.Equal(t, tc.limit, torch.HostCacheStatistics().Limit, "%v", tc.args)
	}
	t.Setenv("EDEMA_HOST_CACHE_MB", "32")
	_, err := runApp(t, "models")
	require.NoError(t, err)
	assert.Equal(t, int64(32<<20), torch.HostCacheStatistics().Limit)
}

func TestBadFlagsAreOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"--host-cache-mb", "-5", "models"},
		{"--host-cache-mb", "many", "models"},
		{"--bogus", "models"},
		{"train", "--epochs", "abc"},
	} {
		out, err := runApp(t, args...)
		require.Error(t, err, "%v", args)
		assert.NotContains(t, out, "Incorrect Usage", "%v", args)
		assert.NotContains(t, out, "USAGE:", "%v: no help text for a bad flag", args)
	}
}
