package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, all named edema_*.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec   // by endpoint and code
	latency  *prometheus.HistogramVec // by endpoint
	batch    prometheus.Histogram     // slices per forward pass
	pass     prometheus.Histogram     // seconds per forward pass
	queued   prometheus.Gauge         // slices waiting for a pass
	rejected prometheus.Counter       // requests refused because the queue was full
}

func newMetrics(reg *prometheus.Registry, loadTime time.Duration) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edema_http_requests_total", Help: "HTTP requests answered, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edema_http_request_duration_seconds", Help: "Time from a request's arrival to its answer, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"endpoint"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edema_batch_size", Help: "Slices per forward pass.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		pass: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edema_forward_duration_seconds", Help: "Time of one forward pass of a batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edema_queue_slices", Help: "Slices waiting for a forward pass.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edema_rejected_requests_total", Help: "Requests answered 503 because as many as --max-queue were in progress.",
		}),
	}
	load := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edema_model_load_seconds", Help: "Time it took to load the networks.",
	})
	load.Set(loadTime.Seconds())
	reg.MustRegister(m.requests, m.latency, m.batch, m.pass, m.queued, m.rejected, load)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(endpoint string, code int, took time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(took.Seconds())
}

func (m *metrics) observePass(size int, took time.Duration) {
	m.batch.Observe(float64(size))
	m.pass.Observe(took.Seconds())
}

func (m *metrics) setQueued(n int) { m.queued.Set(float64(n)) }
