package main

import (
	"context"
	"net"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// benchAppName tags the benchmark's PostgreSQL connections, so their server
// processes can be found in pg_stat_activity.
const benchAppName = "parley-bench-lists"

// pgCPU reads the CPU time the PostgreSQL server processes serving the
// benchmark's connections have used, from /proc/<pid>/schedstat. It only
// works when the server runs on this machine (Linux); otherwise it reads 0.
type pgCPU struct {
	db   *store.DB
	pids []int
}

// newPGCPU returns nil when the server is not on this machine.
func newPGCPU(db *store.DB, dbURL string) *pgCPU {
	if db.Engine != store.Postgres {
		return nil
	}
	u, err := neturl.Parse(dbURL)
	if err != nil {
		return nil
	}
	if h := u.Hostname(); h != "" && h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return nil
		}
	}
	if _, err := os.Stat("/proc/self/schedstat"); err != nil {
		return nil
	}
	return &pgCPU{db: db}
}

// refresh lists the server processes of the benchmark's connections; it
// runs between requests, as the pool may have opened new ones.
func (p *pgCPU) refresh(ctx context.Context) {
	if p == nil {
		return
	}
	rows, err := p.db.Read().Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = ? AND datname = current_database()`, benchAppName)
	if err != nil {
		return
	}
	defer rows.Close()
	p.pids = p.pids[:0]
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			p.pids = append(p.pids, pid)
		}
	}
}

// used is the CPU time the listed processes have used so far.
func (p *pgCPU) used() time.Duration {
	if p == nil {
		return 0
	}
	var sum time.Duration
	for _, pid := range p.pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}
