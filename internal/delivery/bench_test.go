package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/events"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// BenchmarkClaimAndRecord measures the database work of one delivery
// without HTTP: claiming due deliveries of ten webhooks (64 at a time) and
// recording their successful outcomes in batches, as a busy service does.
// ns/op is per delivery.
//
//	go test ./internal/delivery -run '^$' -bench ClaimAndRecord
//	PARLEY_TEST_POSTGRES_URL=postgres://… go test ./internal/delivery -run '^$' -bench ClaimAndRecord
func BenchmarkClaimAndRecord(b *testing.B) {
	ctx := context.Background()
	e := newEnvOn(b, storetest.Open(b))
	db := e.db
	for i := 0; i < 10; i++ {
		e.addWebhook(fmt.Sprintf("http://127.0.0.1:1/%d", i), hookOpts{})
	}
	cfg := config.Defaults()
	s := New(db, e.box, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	// Enough events for b.N deliveries, written in large transactions.
	events_ := b.N/10 + 1
	for done := 0; done < events_; {
		if err := db.Tx(ctx, func(tx *store.Conn) error {
			for i := 0; i < 200 && done < events_; i, done = i+1, done+1 {
				ev := msgEvent(parley.EventMessageReceived, fmt.Sprintf("conv-%d", done%500), int64(done/500+1), "bench")
				ev.ProjectID, ev.ConfigID = e.project, e.config
				if _, err := events.Emit(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for n < b.N {
		jobs, err := s.claim(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			b.Fatalf("nothing to claim after %d deliveries", n)
		}
		now := time.Now()
		var batch []*outcome
		for _, j := range jobs {
			batch = append(batch, &outcome{j: j, res: succeeded(now)})
		}
		for len(batch) > 0 {
			k := min(len(batch), 16) // outcomes arrive a few at a time
			if _, err := s.finishBatch(ctx, batch[:k]); err != nil {
				b.Fatal(err)
			}
			batch = batch[k:]
		}
		for _, j := range jobs {
			s.release(j)
		}
		n += len(jobs)
	}
	b.StopTimer()
	// CPU time says more than wall time on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/op")
}

// cpuTime is the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
