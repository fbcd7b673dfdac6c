// Command service is a minimal HTTP service around an edema checkpoint:
// POST a slice or a cube to /segment and get each slice's lesion
// probabilities as JSON. Every request shares one inference handle, which
// is safe for concurrent use (see package inference). edema serve is the
// full service; this is what embedding the handle in your own takes.
//
//	service -checkpoint model_best.pth.tar [-info info.json] [-addr 127.0.0.1:8081]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

func main() {
	ckpt := flag.String("checkpoint", "", "checkpoint to serve (required)")
	infoPath := flag.String("info", "", "info.json, for the original's checkpoints")
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	flag.Parse()
	var info *oct.Info
	if *infoPath != "" {
		i, err := oct.ReadInfo(*infoPath)
		if err != nil {
			log.Fatal(err)
		}
		info = &i
	}
	dep, err := inference.LoadDeployment(*ckpt, info, torch.CPU, inference.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer dep.Free()
	log.Printf("serving %s on http://%s/segment", dep, *addr)
	log.Fatal(http.ListenAndServe(*addr, handler(dep)))
}

// maxBody bounds a request's body: a cube of 128 slices of 512×1024.
const maxBody = 128 << 20

func handler(dep *inference.Deployment) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /segment", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		cube, err := inference.DecodeCube("body", data)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pred, err := dep.Segment(r.Context(), cube)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := make([]map[string]float32, pred.Slices)
		for i := range out {
			out[i] = map[string]float32{}
			for l, name := range oct.LesionNames {
				out[i][name] = pred.Detections[i*oct.NumLesions+l]
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(out); err != nil {
			log.Print(fmt.Errorf("writing the answer: %w", err))
		}
	})
	return mux
}
