// Package browsertest runs web pages of the tests in a real headless
// browser: Debian's Chromium, which scripts/install-deps.sh installs,
// driven by chromedp. Without Chromium the tests skip, except under CI,
// where it is a failure.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the browser's path, or skips (fails under CI).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium on PATH: scripts/install-deps.sh installs Debian's chromium")
	}
	t.Skip("no Chromium on PATH (Debian: apt install chromium)")
	return ""
}

// Open starts a headless Chromium (skipping as Chromium does) and returns
// a chromedp context for it, closed at the end of the test.
func Open(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}
