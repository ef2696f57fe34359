package store

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrationFilesPerEngine(t *testing.T) {
	versions := func(engine string) map[int]string {
		files, err := migrationFiles(migrationFS, engine)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]string{}
		last := -1
		for _, m := range files {
			if m.version <= last {
				t.Fatalf("%s: %s out of order", engine, m.base)
			}
			last = m.version
			out[m.version] = m.base
		}
		return out
	}
	lite, pg := versions(SQLite), versions(Postgres)
	if lite[1] != "0001_init.sql" || pg[1] != "0001_init.sql" {
		t.Fatalf("0001_init.sql applies on both engines: %v / %v", lite[1], pg[1])
	}
	if lite[90] != "0090_contact_search.sqlite.sql" {
		t.Fatalf("SQLite misses 0090: %v", lite)
	}
	if _, ok := pg[90]; ok {
		t.Fatalf("PostgreSQL applies the SQLite-only %s", pg[90])
	}
	for v, f := range lite {
		if strings.HasSuffix(f, ".postgres.sql") {
			t.Fatalf("SQLite applies %s (version %d)", f, v)
		}
	}
}

func TestSplitStatementsKeepsTriggers(t *testing.T) {
	got := splitStatements(`-- a comment
CREATE TABLE t (a INTEGER);
CREATE TRIGGER t_ins AFTER INSERT ON t
BEGIN
    INSERT INTO u VALUES (new.a);
    DELETE FROM v;
END;
create trigger t_del after delete on t begin
    DELETE FROM u WHERE a = old.a;
end;
DROP INDEX IF EXISTS x;
`)
	want := []string{
		"CREATE TABLE t (a INTEGER);",
		"CREATE TRIGGER t_ins AFTER INSERT ON t\nBEGIN\n    INSERT INTO u VALUES (new.a);\n    DELETE FROM v;\nEND;",
		"create trigger t_del after delete on t begin\n    DELETE FROM u WHERE a = old.a;\nend;",
		"DROP INDEX IF EXISTS x;",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestMigrationFilesSuffixes(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0001_a.sql":          {},
		"migrations/0002_b.sqlite.sql":   {},
		"migrations/0002_b.postgres.sql": {},
		"migrations/0003_c.postgres.sql": {},
	}
	for engine, want := range map[string][]string{
		SQLite:   {"0001_a.sql", "0002_b.sqlite.sql"},
		Postgres: {"0001_a.sql", "0002_b.postgres.sql", "0003_c.postgres.sql"},
	} {
		files, err := migrationFiles(fsys, engine)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range files {
			got = append(got, m.base)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %v, want %v", engine, got, want)
		}
	}
	for name, bad := range map[string]fstest.MapFS{
		"shared version": {"migrations/0001_a.sql": {}, "migrations/0001_b.sqlite.sql": {}},
		"unknown suffix": {"migrations/0001_a.mysql.sql": {}},
		"no version":     {"migrations/init.sql": {}},
	} {
		if _, err := migrationFiles(bad, SQLite); err == nil {
			t.Fatalf("%s: no error", name)
		}
	}
}
