package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/jobs"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func TestRunRetryAndUnique(t *testing.T) {
	db := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := jobs.NewRunner(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Poll = 10 * time.Millisecond
	var ok, flaky atomic.Int32
	done := make(chan struct{}, 10)
	r.Register("ok", func(ctx context.Context, j *jobs.Job) error { ok.Add(1); done <- struct{}{}; return nil })
	r.Register("flaky", func(ctx context.Context, j *jobs.Job) error {
		if flaky.Add(1) < 3 {
			return jobs.RetryAfter(time.Millisecond, errors.New("try again"))
		}
		done <- struct{}{}
		return nil
	})
	for i := 0; i < 2; i++ { // the second insert with the same key is a no-op
		if _, err := jobs.Enqueue(ctx, db.Write(), "ok", map[string]int{"n": i}, jobs.Options{UniqueKey: "once"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := jobs.Enqueue(ctx, db.Write(), "flaky", nil, jobs.Options{}); err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	for i := 0; i < 2; i++ {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("jobs did not run")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if ok.Load() != 1 || flaky.Load() != 3 {
		t.Fatalf("ok ran %d times (want 1), flaky %d (want 3)", ok.Load(), flaky.Load())
	}
	var left int
	if err := db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("jobs left: %d %v", left, err)
	}
}

func TestScheduleReplacesTimer(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	at := time.Now().Add(time.Hour)
	if err := jobs.Schedule(ctx, db.Write(), "timer", "conv-1", map[string]int{"v": 1}, at); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Schedule(ctx, db.Write(), "timer", "conv-1", map[string]int{"v": 2}, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	var payload string
	var runAt int64
	if err := db.Read().QueryRow(ctx, `SELECT COUNT(*), MAX(payload), MAX(run_at) FROM jobs WHERE unique_key = 'conv-1'`).Scan(&n, &payload, &runAt); err != nil {
		t.Fatal(err)
	}
	if n != 1 || payload != `{"v":2}` || runAt != at.Add(time.Hour).UnixMicro() {
		t.Fatalf("n=%d payload=%s runAt=%d", n, payload, runAt)
	}
}

// TestLeaseRenewedAndTakenOver: a job running longer than its lease is not
// run a second time by another process while its runner lives (the lease is
// renewed), and a job whose runner died (here: stopped renewing while its
// handler hangs, as a process killed with SIGKILL) is run by another runner
// within seconds, not after minutes.
func TestLeaseRenewedAndTakenOver(t *testing.T) {
	db := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	release := make(chan struct{})
	defer close(release)
	var runs atomic.Int32
	startedA := make(chan struct{}, 1)
	a := jobs.NewRunner(db, log)
	a.Poll = 10 * time.Millisecond
	a.Register("long", func(ctx context.Context, j *jobs.Job) error {
		runs.Add(1)
		startedA <- struct{}{}
		<-release // hangs, whatever its context says
		return nil
	})
	if _, err := jobs.Enqueue(context.Background(), db.Write(), "long", nil, jobs.Options{}); err != nil {
		t.Fatal(err)
	}
	go a.Run(ctxA)
	select {
	case <-startedA:
	case <-time.After(10 * time.Second):
		t.Fatal("job did not start")
	}
	ranB := make(chan struct{}, 1)
	b := jobs.NewRunner(db, log)
	b.Poll = 10 * time.Millisecond
	b.Register("long", func(ctx context.Context, j *jobs.Job) error {
		runs.Add(1)
		ranB <- struct{}{}
		return nil
	})
	go b.Run(ctxB)
	select {
	case <-ranB:
		t.Fatalf("job taken over while its runner was alive and renewing (runs: %d)", runs.Load())
	case <-time.After(2 * jobs.DefaultLease):
	}
	stopA() // A's process "dies": its handler hangs and nothing renews the lease
	select {
	case <-ranB:
	case <-time.After(4 * jobs.DefaultLease):
		t.Fatal("a dead runner's job was not taken over within 4 leases")
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("runs: %d, want 2", n)
	}
}

// A job cut short by shutdown gets its attempt back and stays, even on its
// last attempt: a restarted runner runs it again at once.
func TestShutdownGivesTheAttemptBack(t *testing.T) {
	db := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	r := jobs.NewRunner(db, log)
	r.Poll = 10 * time.Millisecond
	started := make(chan struct{})
	r.Register("send", func(ctx context.Context, j *jobs.Job) error {
		close(started)
		<-ctx.Done() // the send is in flight when the process stops
		return ctx.Err()
	})
	id, err := jobs.Enqueue(context.Background(), db.Write(), "send", nil, jobs.Options{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { r.Run(ctx); close(stopped) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not start")
	}
	cancel()
	<-stopped
	var attempts int
	var locked sql.NullString
	if err := db.Read().QueryRow(context.Background(), `SELECT attempts, locked_by FROM jobs WHERE id = ?`, id).Scan(&attempts, &locked); err != nil {
		t.Fatalf("the job cut short by shutdown is gone: %v", err)
	}
	if attempts != 0 || locked.Valid {
		t.Fatalf("attempts %d, locked by %v: want 0 and unlocked", attempts, locked)
	}
	// A new runner (the process restarted) runs it.
	ran := make(chan struct{})
	r2 := jobs.NewRunner(db, log)
	r2.Poll = 10 * time.Millisecond
	r2.Register("send", func(ctx context.Context, j *jobs.Job) error { close(ran); return nil })
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go r2.Run(ctx2)
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the restarted runner did not run the job")
	}
}
