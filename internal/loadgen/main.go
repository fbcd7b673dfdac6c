// Command loadgen sends one request body to an HTTP endpoint from several
// clients at once and prints the throughput and the latency percentiles,
// for scripts/bench_serve.sh. Every answer must be 200; the first other one
// is an error.
//
//	loadgen -url http://127.0.0.1:8080/v1/segment -body slice.bmp -clients 8 -requests 40
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "endpoint to POST to (required)")
	bodyPath := flag.String("body", "", "file to send as every request's body (required)")
	clients := flag.Int("clients", 1, "concurrent clients")
	requests := flag.Int("requests", 10, "requests in all, shared by the clients")
	warmup := flag.Int("warmup", 1, "requests per client before timing starts")
	flag.Parse()
	if err := run(*url, *bodyPath, *clients, *requests, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(url, bodyPath string, clients, requests, warmup int) error {
	if url == "" || bodyPath == "" || clients < 1 || requests < clients {
		return errors.New("give -url, -body, -clients ≥ 1 and -requests ≥ -clients")
	}
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	send := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		return time.Since(start), nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for range warmup {
				if _, err := send(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}

	latencies := make([]time.Duration, requests)
	next := make(chan int, requests)
	for i := range requests {
		next <- i
	}
	close(next)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := range next {
				d, err := send()
				if err != nil {
					errs <- err
					return
				}
				latencies[i] = d
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(latencies)))) - 1
		return float64(latencies[max(i, 0)].Microseconds()) / 1000
	}
	fmt.Printf("requests=%d clients=%d seconds=%.3f rps=%.3f p50_ms=%.1f p99_ms=%.1f\n",
		requests, clients, took.Seconds(), float64(requests)/took.Seconds(), pct(0.5), pct(0.99))
	return nil
}
