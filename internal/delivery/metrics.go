package delivery

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/metrics"
)

// Delivery metrics, on Parley's registry (served at GET /metrics).
var (
	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "parley_webhook_queue_depth",
		Help: "Webhook deliveries waiting, by status (pending, buffered, delivering); sampled every few seconds.",
	}, []string{"status"})
	attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_webhook_attempts_total",
		Help: "Webhook delivery attempts by outcome (success, http_error, timeout, network_error, refused, error).",
	}, []string{"outcome"})
	deliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_webhook_delivery_latency_seconds",
		Help:    "Time from an event's creation to its subscriber's 2xx.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	})
	webhooksPaused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_webhooks_paused_total",
		Help: "Webhooks paused after failing continuously for PARLEY_WEBHOOK_PAUSE_AFTER.",
	})
)

func init() {
	metrics.Registry.MustRegister(queueDepth, attempts, deliveryLatency, webhooksPaused)
}

func recordAttempt(r result) { attempts.WithLabelValues(r.outcome).Inc() }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
