package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edema/edema/examples/internal/fixture"
)

func TestPredict(t *testing.T) {
	ckpt, info, slice := fixture.Files(t)
	mask := filepath.Join(t.TempDir(), "mask.png")
	var out strings.Builder
	if err := run(&out, ckpt, slice, info, mask); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 slice(s) of 32×64, unet") || !strings.Contains(out.String(), "slice 1: REA p=") {
		t.Errorf("unexpected output:\n%s", out.String())
	}
	f, err := os.Open(mask)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 64 {
		t.Errorf("mask is %v, want 32×64", b)
	}
	if err := run(&out, ckpt, slice, "", ""); err == nil || !strings.Contains(err.Error(), "records no normalisation") {
		t.Errorf("an original checkpoint without -info: got %v", err)
	}
}
