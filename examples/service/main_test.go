package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/edema/edema/examples/internal/fixture"
	"github.com/edema/edema/inference"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

func TestService(t *testing.T) {
	ckpt, infoPath, slice := fixture.Files(t)
	info, err := oct.ReadInfo(infoPath)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := inference.LoadDeployment(ckpt, &info, torch.CPU, inference.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Free()
	ts := httptest.NewServer(handler(dep))
	defer ts.Close()
	body, err := os.ReadFile(slice)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent clients share the handle and get the same answer.
	answers := make([][]map[string]float32, 4)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			resp, err := http.Post(ts.URL+"/segment", "image/bmp", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
				return
			}
			if err := json.NewDecoder(resp.Body).Decode(&answers[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, a := range answers[1:] {
		if len(a) != 1 || a[0]["REA"] != answers[0][0]["REA"] || a[0]["PED"] != answers[0][0]["PED"] {
			t.Errorf("answers differ: %v vs %v", a, answers[0])
		}
	}
	resp, err := http.Post(ts.URL+"/segment", "image/bmp", bytes.NewReader([]byte("junk")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("junk: status %d, want 400", resp.StatusCode)
	}
}
