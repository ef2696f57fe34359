package contacts

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// searchContact is what the reference search knows of a contact.
type searchContact struct {
	id, name  string // name "" = no profile name
	createdAt int64
}

// searchNames builds n profile names from a small vocabulary, so fragments
// range from matching most contacts to matching a handful; every tenth
// contact has none.
func searchNames(rng *rand.Rand, n int) []string {
	first := []string{"María", "José", "Sofía", "Ana", "Luis", "Ömer", "Zoë", "Chen", "Priya", "Mar"}
	last := []string{"García", "Pérez", "Patel", "Torres", "Marín", "Nguyen", "Smith", "O'Brien", "Gómez", "Ez"}
	out := make([]string, n)
	for i := range out {
		if i%10 == 9 {
			continue
		}
		out[i] = first[rng.IntN(len(first))] + " " + last[rng.IntN(len(last))]
	}
	// A rare name and names that hold a fragment twice.
	out[3], out[7], out[11] = "Xavier Quixote", "Ezez Marmar", "a"
	return out
}

// insertSearchContacts inserts the contacts with created_at values that
// repeat, so page order relies on the id tie-break.
func insertSearchContacts(t *testing.T, c *store.Conn, projectID string, names []string) []searchContact {
	t.Helper()
	ctx := context.Background()
	var out []searchContact
	for i, name := range names {
		ct := searchContact{id: store.NewID(), name: name, createdAt: 1_700_000_000_000_000 + int64(i/3)}
		var pn any
		if name != "" {
			pn = name
		}
		if _, err := c.Exec(ctx, `INSERT INTO contacts (id, project_id, wa_id, profile_name, profile_name_lc, metadata, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, '{}', ?, ?)`, ct.id, projectID, fmt.Sprintf("5491100%06d", i), pn, lower(strPtr(name)),
			ct.createdAt, ct.createdAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, ct)
	}
	return out
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// expectSearch checks every page of a name search, and the page past the
// end, against the reference: contacts whose lower-cased name contains the
// fragment, newest first, ties by id.
func expectSearch(t *testing.T, c *store.Conn, projectID string, all []searchContact, fragment string) {
	t.Helper()
	var want []searchContact
	for _, ct := range all {
		if ct.name != "" && strings.Contains(strings.ToLower(ct.name), strings.ToLower(fragment)) {
			want = append(want, ct)
		}
	}
	sort.Slice(want, func(i, j int) bool {
		if want[i].createdAt != want[j].createdAt {
			return want[i].createdAt > want[j].createdAt
		}
		return want[i].id > want[j].id
	})
	const perPage = 7
	for page := 1; page <= len(want)/perPage+2; page++ {
		got, total, err := ListContacts(context.Background(), c, projectID, ContactFilter{ProfileNameCont: fragment}, parley.Page{Page: page, PerPage: perPage})
		if err != nil {
			t.Fatalf("%q page %d: %v", fragment, page, err)
		}
		if total != len(want) {
			t.Fatalf("%q page %d: total_count %d, want %d", fragment, page, total, len(want))
		}
		lo, hi := min((page-1)*perPage, len(want)), min(page*perPage, len(want))
		var gotIDs, wantIDs []string
		for _, ct := range got {
			gotIDs = append(gotIDs, ct.ID)
		}
		for _, ct := range want[lo:hi] {
			wantIDs = append(wantIDs, ct.id)
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("%q page %d: got %v, want %v", fragment, page, gotIDs, wantIDs)
		}
	}
}

// searchFragments reach every path of searchByGrams with 300 contacts:
// dense and sparse grams of one to three characters, longer fragments with
// a rare trigram, and ones whose trigrams are all frequent (the scan).
var searchFragments = []string{
	"a", "e", "z", "ö", "'", " ", "q", "w", // one character
	"ez", "ar", "ía", "ia", "a ", " p", "ëq", // two
	"mar", "ez ", "zez", "é p", "o'b", "xav", "qqq", // three
	"maría", "MARÍA", "garcía", "ía ga", "sofía t", "xavier q", "ezez", "marmar", // longer, with a rarer trigram
	"ar", "a ma", "ía m", "ía marín", "josé pérez", "zoë smith", "a a", "chen nguyen!", // and more
}

func TestSearchByName(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	p, err := store.CreateProject(ctx, db.Write(), "Search", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.CreateProject(ctx, db.Write(), "Other", nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 90))
	all := insertSearchContacts(t, db.Write(), p.ID, searchNames(rng, 300))
	// The other project's contacts must never be counted or listed.
	insertSearchContacts(t, db.Write(), other.ID, searchNames(rng, 50))
	for _, f := range searchFragments {
		expectSearch(t, db.Read(), p.ID, all, f)
	}
	checkGrams(t, db)

	// Renames (as the inbound path and PATCH do), names removed and set,
	// and deletes keep the index in step.
	for i := 0; i < len(all); i += 4 {
		name := all[(i*7)%len(all)].name
		if i%8 == 0 {
			name = "Renamed Ezequiel"
		}
		ct := &parley.Contact{ID: all[i].id, ProjectID: p.ID, ProfileName: strPtr(name)}
		if err := UpdateContact(ctx, db.Write(), ct); err != nil {
			t.Fatal(err)
		}
		all[i].name = name
	}
	if _, err := Upsert(ctx, db.Write(), p.ID, nil, "+5491100000005", "Sofía Tapia"); err != nil {
		t.Fatal(err)
	}
	all[5].name = "Sofía Tapia"
	if _, err := Upsert(ctx, db.Write(), p.ID, nil, "+5491100000006", ""); err != nil { // keeps the name
		t.Fatal(err)
	}
	nc, err := Upsert(ctx, db.Write(), p.ID, nil, "+5491199999999", "Nueva Sofía")
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, searchContact{id: nc.ID, name: "Nueva Sofía", createdAt: store.Micros(nc.CreatedAt)})
	for i := 1; i < len(all); i += 9 {
		if _, err := db.Write().Exec(ctx, `DELETE FROM contacts WHERE id = ?`, all[i].id); err != nil {
			t.Fatal(err)
		}
	}
	var kept []searchContact
	for i, ct := range all {
		if i < 1 || (i-1)%9 != 0 {
			kept = append(kept, ct)
		}
	}
	for _, f := range append(searchFragments, "renamed", "ezequiel", "tapia", "nueva") {
		expectSearch(t, db.Read(), p.ID, kept, f)
	}
	checkGrams(t, db)

	// Deleting a project cascades to its contacts and their entries.
	if _, err := db.Write().Exec(ctx, `DELETE FROM projects WHERE id = ?`, other.ID); err != nil {
		t.Fatal(err)
	}
	checkGrams(t, db)
	// A project whose contacts have no name finds nothing.
	empty, err := store.CreateProject(ctx, db.Write(), "Nameless", nil)
	if err != nil {
		t.Fatal(err)
	}
	nameless := insertSearchContacts(t, db.Write(), empty.ID, []string{"", ""})
	expectSearch(t, db.Read(), empty.ID, nameless, "a")
}

// checkGrams compares the SQLite gram index with the grams of every named
// contact computed in Go: each distinct substring of one to three
// characters of the lower-cased name.
func checkGrams(t *testing.T, db *store.DB) {
	t.Helper()
	if db.Engine != store.SQLite {
		return
	}
	ctx := context.Background()
	want := map[string]bool{}
	rows, err := db.Read().Query(ctx, `SELECT project_id, id, profile_name_lc FROM contacts WHERE profile_name_lc IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]int{}
	for rows.Next() {
		var pid, id, name string
		if err := rows.Scan(&pid, &id, &name); err != nil {
			t.Fatal(err)
		}
		named[pid]++
		r := []rune(name)
		for i := range r {
			for n := 1; n <= 3 && i+n <= len(r); n++ {
				want[pid+"|"+string(r[i:i+n])+"|"+id] = true
			}
		}
	}
	rows.Close()
	got := map[string]bool{}
	rows, err = db.Read().Query(ctx, `SELECT p.project_id, g.gram, s.contact_id FROM contact_grams g
		JOIN contact_search_projects p ON p.key = g.project_key JOIN contact_search s ON s.key = g.contact_key`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid, gram, id string
		if err := rows.Scan(&pid, &gram, &id); err != nil {
			t.Fatal(err)
		}
		got[pid+"|"+gram+"|"+id] = true
	}
	rows.Close()
	for k := range want {
		if !got[k] {
			t.Fatalf("gram entry %q missing", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Fatalf("stale gram entry %q", k)
		}
	}
	var stale int
	if err := db.Read().QueryRow(ctx, `SELECT COUNT(*) FROM contact_search s WHERE NOT EXISTS (SELECT 1 FROM contacts c
		WHERE c.id = s.contact_id AND c.profile_name_lc = s.name_lc AND c.created_at = s.created_at)`).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Fatalf("%d contact_search rows out of step with contacts", stale)
	}
	rows, err = db.Read().Query(ctx, `SELECT project_id, contacts FROM contact_search_projects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid string
		var n int
		if err := rows.Scan(&pid, &n); err != nil {
			t.Fatal(err)
		}
		if n != named[pid] {
			t.Fatalf("project %s: contacts %d, want %d", pid, n, named[pid])
		}
	}
}

// TestSearchIndexBackfill upgrades a database whose contacts predate
// migration 0090: the migration builds their entries.
func TestSearchIndexBackfill(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	if db.Engine != store.SQLite {
		t.Skip("the gram index is SQLite's")
	}
	// Back to the schema before 0090.
	for _, stmt := range []string{
		`DROP TRIGGER contacts_search_insert`, `DROP TRIGGER contacts_search_update`, `DROP TRIGGER contacts_search_delete`,
		`DROP TABLE contact_grams`, `DROP TABLE contact_search`, `DROP TABLE contact_search_projects`,
		`DELETE FROM schema_migrations WHERE version = 90`,
	} {
		if _, err := db.Write().Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	p, err := store.CreateProject(ctx, db.Write(), "Old", nil)
	if err != nil {
		t.Fatal(err)
	}
	all := insertSearchContacts(t, db.Write(), p.ID, searchNames(rand.New(rand.NewPCG(9, 0)), 120))
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkGrams(t, db)
	for _, f := range searchFragments {
		expectSearch(t, db.Read(), p.ID, all, f)
	}
}

// TestPostgresTrigramIndex: on PostgreSQL with pg_trgm available, the
// migrations leave a trigram index on the lower-cased names, which the name
// search (its pattern written into the statement) can read; the search's
// results are those of the scan either way (TestSearchByName).
func TestPostgresTrigramIndex(t *testing.T) {
	db := storetest.Open(t)
	c := db.Read()
	if !c.Postgres() {
		t.Skip("PostgreSQL only: SQLite has the gram index of migration 0090")
	}
	ctx := context.Background()
	var available int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'pg_trgm'`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'contacts'
		AND indexname = 'contacts_name_trgm' AND indexdef LIKE '%gin_trgm_ops%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != available {
		t.Fatalf("contacts_name_trgm indexes: %d, pg_trgm available: %d", n, available)
	}
}
