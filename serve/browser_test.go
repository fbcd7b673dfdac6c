package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/internal/browsertest"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
)

// TestUploadPageInBrowser uploads a slice of the synthetic data through the
// page in headless Chromium, waits for the overlay, and compares its
// pixels and the detection figures with the prediction made here.
func TestUploadPageInBrowser(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(data, synth.Options{Train: 1, Val: 1, Test: 1, Slices: 3, Width: testW, Height: testH, Seed: 5, Workers: 1})
	require.NoError(t, err)
	cubes, err := oct.Cubes(data, oct.Test)
	require.NoError(t, err)
	slice := filepath.Join(data, oct.Test.OriginalDir(cubes[0]), oct.SliceFile(2))
	body, err := os.ReadFile(slice)
	require.NoError(t, err)

	s, ts := start(t, Config{})
	cube, ref := sequential(t, s.dep, body)
	want, err := inference.SliceOverlay(cube, ref.Prediction, 0)
	require.NoError(t, err)

	ctx := browsertest.Open(t)
	// The first action starts the browser, which lives as long as the
	// context it ran with: the time limit goes on the later ones.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/")))
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	model, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#model")))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{slice})))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("img.overlay"))))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("img.overlay").complete && document.querySelector("img.overlay").naturalWidth > 0`))
	require.NoError(t, err)
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	require.NoError(t, err)
	pixels, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`(() => {
		const img = document.querySelector("img.overlay");
		const c = document.createElement("canvas");
		c.width = img.naturalWidth; c.height = img.naturalHeight;
		const g = c.getContext("2d");
		g.drawImage(img, 0, 0);
		return Array.from(g.getImageData(0, 0, c.width, c.height).data);
	})()`))
	require.NoError(t, err)
	var det [3]string
	for l, name := range oct.LesionNames {
		det[l], err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".det-"+name)))
		require.NoError(t, err)
	}
	assert.Equal(t, "unet", model)
	assert.Equal(t, fmt.Sprintf("2.bmp: 1 slice(s) of %d×%d pixels", testW, testH), status)
	require.Len(t, pixels, len(want.Pix), "the overlay is the slice's size")
	differ := 0
	for i, v := range pixels {
		if uint8(v) != want.Pix[i] {
			differ++
		}
	}
	assert.Zero(t, differ, "overlay bytes that differ from the prediction's overlay")
	for l := range det {
		assert.Equal(t, strconv.FormatFloat(float64(ref.Detections[l]), 'f', 3, 32), det[l], oct.LesionNames[l])
	}
}
