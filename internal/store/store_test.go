package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	db := storetest.Open(t)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestAPIKeysAreStoredHashed(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	p, err := store.CreateProject(ctx, db.Write(), "Acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	key := store.GenerateAPIKey()
	k, err := store.CreateAPIKey(ctx, db.Write(), p.ID, "default", key)
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := db.Read().QueryRow(ctx, `SELECT key_hash FROM api_keys WHERE id = ?`, k.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == key || stored != store.HashAPIKey(key) {
		t.Fatalf("stored key %q is not the hash of the key", stored)
	}
	pid, err := store.ProjectIDForKey(ctx, db.Read(), key)
	if err != nil || pid != p.ID {
		t.Fatalf("lookup = %q, %v; want %q", pid, err, p.ID)
	}
	if err := store.RevokeAPIKey(ctx, db.Write(), k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ProjectIDForKey(ctx, db.Read(), key); parley.ErrorCode(err) != parley.EUNAUTHORIZED {
		t.Fatalf("revoked key: err = %v, want unauthorized", err)
	}
}

func TestCustomersAreScopedAndFiltered(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	p1, _ := store.CreateProject(ctx, db.Write(), "one", nil)
	p2, _ := store.CreateProject(ctx, db.Write(), "two", nil)
	ext := "ext-1"
	for _, c := range []*parley.Customer{
		{ProjectID: p1.ID, Name: "Acme 100%", ExternalCustomerID: &ext},
		{ProjectID: p1.ID, Name: "Globex"},
		{ProjectID: p2.ID, Name: "Acme other"},
	} {
		if err := store.CreateCustomer(ctx, db.Write(), c); err != nil {
			t.Fatal(err)
		}
	}
	got, total, err := store.ListCustomers(ctx, db.Read(), p1.ID, store.CustomerFilter{NameCont: "acme"}, parley.Page{Page: 1, PerPage: 20})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(got) != 1 || got[0].Name != "Acme 100%" {
		t.Fatalf("name_cont acme: total=%d got=%v", total, got)
	}
	got, total, _ = store.ListCustomers(ctx, db.Read(), p1.ID, store.CustomerFilter{NameCont: "%"}, parley.Page{Page: 1, PerPage: 20})
	if total != 1 {
		t.Fatalf("name_cont %%: total=%d, want 1 (wildcard must be literal)", total)
	}
	got, total, _ = store.ListCustomers(ctx, db.Read(), p1.ID, store.CustomerFilter{ExternalCustomerIDEq: &ext}, parley.Page{Page: 1, PerPage: 20})
	if total != 1 || got[0].ExternalCustomerID == nil || *got[0].ExternalCustomerID != ext {
		t.Fatalf("external id filter: %v", got)
	}
	if _, err := store.GetCustomer(ctx, db.Read(), p2.ID, got[0].ID); !parley.IsNotFound(err) {
		t.Fatalf("other project's customer: err=%v, want not found", err)
	}
}

func TestTxGroupIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	p, err := store.CreateProject(ctx, db.Write(), "group", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- db.TxGroup(ctx, func(tx *store.Conn) error {
				c := &parley.Customer{ProjectID: p.ID, Name: fmt.Sprintf("c%d", i)}
				if err := store.CreateCustomer(ctx, tx, c); err != nil {
					return err
				}
				if i%3 == 0 {
					return parley.Invalid("boom") // rolled back alone
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("unexpected error: %v", err)
			}
			failed++
		}
	}
	_, total, err := store.ListCustomers(ctx, db.Read(), p.ID, store.CustomerFilter{}, parley.Page{Page: 1, PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if failed != n/3 || total != n-n/3 {
		t.Fatalf("failed=%d stored=%d, want %d and %d", failed, total, n/3, n-n/3)
	}
}
