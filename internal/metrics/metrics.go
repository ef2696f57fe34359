// Package metrics defines Parley's Prometheus metrics on one registry, served
// at GET /metrics. Each subsystem's metrics live in a file of their own here.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry holds every Parley metric plus the Go and process collectors.
var Registry = prometheus.NewRegistry()

func init() {
	Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// HTTP request metrics, labelled by route pattern (never by raw path, which
// would explode cardinality with ids).
var (
	HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_requests_total",
		Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "status"})
	HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_http_request_duration_seconds",
		Help:    "HTTP request latency by route and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	RateLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_api_rate_limited_total",
		Help: "API requests refused with 429 by the per-key rate limit.",
	})
)

func init() {
	Registry.MustRegister(HTTPRequests, HTTPDuration, RateLimited)
}
