package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
)

// The Open Inference Protocol, version 2 (KServe's, which Triton serves):
// health, metadata and inference with JSON tensors. The model takes one
// input, "input": FP32 N×3×H×W slices normalised as the networks were
// trained (each channel (v/255 - mean)/std, see info.json); it gives
// "labels", UINT8 N×H×W classes 0..3, and "detections", FP32 N×3
// probabilities of REA, SRF and PED.

const (
	v2Input      = "input"
	v2Labels     = "labels"
	v2Detections = "detections"
)

// v2Tensor is a tensor of a request or a response.
type v2Tensor struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type v2Output struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"`
}

type v2Request struct {
	ID      string     `json:"id,omitempty"`
	Inputs  []v2Tensor `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

type v2Response struct {
	ModelName string     `json:"model_name"`
	ID        string     `json:"id,omitempty"`
	Outputs   []v2Output `json:"outputs"`
}

type v2TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

func (s *Server) v2Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) {
		version := "devel"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			version = info.Main.Version
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": "edema", "version": version, "extensions": []string{}})
	})
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	})
	mux.HandleFunc("GET /v2/health/ready", s.v2Ready)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.withModel(s.v2Ready))
	mux.HandleFunc("GET /v2/models/{name}", s.withModel(s.v2Metadata))
	mux.HandleFunc("POST /v2/models/{name}/infer", s.withModel(s.v2Infer))
}

// withModel answers 404 for a model this server does not serve.
func (s *Server) withModel(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("name"); name != s.name {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no model %q: this server serves %q", name, s.name))
			return
		}
		h(w, r)
	}
}

func (s *Server) v2Ready(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not ready: shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

func (s *Server) v2Metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":     s.name,
		"versions": []string{"1"},
		"platform": "edema_libtorch",
		"inputs":   []v2TensorMeta{{v2Input, "FP32", []int64{-1, 3, -1, -1}}},
		"outputs": []v2TensorMeta{
			{v2Labels, "UINT8", []int64{-1, -1, -1}},
			{v2Detections, "FP32", []int64{-1, oct.NumLesions}},
		},
	})
}

func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	s.admitted(w, func() error {
		body, err := s.readBody(r)
		if err != nil {
			return err
		}
		var req v2Request
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return errorf(http.StatusBadRequest, "request is not a v2 inference request: %v", err)
		}
		images, n, h, wd, err := v2Images(req.Inputs)
		if err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		want := []string{v2Labels, v2Detections}
		if len(req.Outputs) > 0 {
			want = nil
			for _, o := range req.Outputs {
				if o.Name != v2Labels && o.Name != v2Detections {
					return errorf(http.StatusBadRequest, "unknown output %q: want %q or %q", o.Name, v2Labels, v2Detections)
				}
				want = append(want, o.Name)
			}
		}
		pred, err := s.run(r.Context(), images, n, h, wd)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v2Response{ModelName: s.name, ID: req.ID, Outputs: v2Outputs(pred, want)})
		return nil
	})
}

// v2Images checks the request's one input and returns its values.
func v2Images(inputs []v2Tensor) (images []float32, n, h, w int, err error) {
	if len(inputs) != 1 || inputs[0].Name != v2Input {
		var names []string
		for _, in := range inputs {
			names = append(names, fmt.Sprintf("%q", in.Name))
		}
		return nil, 0, 0, 0, fmt.Errorf("want one input %q, got %d %v", v2Input, len(inputs), names)
	}
	in := inputs[0]
	if in.Datatype != "FP32" {
		return nil, 0, 0, 0, fmt.Errorf("input %q is %s, want FP32", in.Name, in.Datatype)
	}
	sh := in.Shape
	if len(sh) != 4 || sh[1] != 3 || sh[0] < 1 || sh[0] > oct.MaxCubeSlices || sh[2] < 1 || sh[3] < 1 ||
		sh[2] > oct.MaxImageSide || sh[3] > oct.MaxImageSide || sh[2]%models.DivisibleBy != 0 || sh[3]%models.DivisibleBy != 0 {
		return nil, 0, 0, 0, fmt.Errorf("input shape %v: want N×3×H×W, 1 ≤ N ≤ %d, H and W positive multiples of %d up to %d", sh, oct.MaxCubeSlices, models.DivisibleBy, oct.MaxImageSide)
	}
	count := sh[0] * 3 * sh[2] * sh[3]
	images, err = flatFloats(in.Data, count)
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("input %q: %w", in.Name, err)
	}
	return images, int(sh[0]), int(sh[2]), int(sh[3]), nil
}

// flatFloats reads the data of a tensor, flat or nested in row-major
// order as the protocol allows, expecting count numbers.
func flatFloats(raw json.RawMessage, count int64) ([]float32, error) {
	if len(raw) == 0 {
		return nil, errors.New("no data")
	}
	out := make([]float32, 0, count)
	dec := json.NewDecoder(bytes.NewReader(raw))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("data: %v", err)
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '[' {
				depth++
			} else if t == ']' {
				depth--
			} else {
				return nil, errors.New("data holds an object, want numbers")
			}
		case float64:
			if int64(len(out)) == count {
				return nil, fmt.Errorf("data holds more than the %d numbers of its shape", count)
			}
			out = append(out, float32(t))
		default:
			return nil, fmt.Errorf("data holds %v, want numbers", tok)
		}
	}
	if int64(len(out)) != count {
		return nil, fmt.Errorf("data holds %d numbers, its shape needs %d", len(out), count)
	}
	return out, nil
}

func v2Outputs(pred *models.Prediction, want []string) []v2Output {
	var outs []v2Output
	for _, name := range want {
		switch name {
		case v2Labels:
			labels := make([]int, len(pred.Labels)) // JSON numbers, not base64 bytes
			for i, l := range pred.Labels {
				labels[i] = int(l)
			}
			outs = append(outs, v2Output{v2Labels, []int64{int64(pred.Slices), int64(pred.H), int64(pred.W)}, "UINT8", labels})
		case v2Detections:
			outs = append(outs, v2Output{v2Detections, []int64{int64(pred.Slices), oct.NumLesions}, "FP32", pred.Detections})
		}
	}
	return outs
}
