package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// The contact search on SQLite (issue 4) reads the gram index of migration
// 0090_contact_search.sqlite.sql: contact_grams holds, per project, every
// distinct substring of one to three characters of each contact's
// lower-cased name, keyed (project_key, gram, contact_key); contact_search
// holds each named contact's key, id, created_at and lower-cased name.

// Costs in units of one contacts_list entry stepped through and tested by
// the scan (about 0.2 µs in the pure-Go SQLite on the benchmark machine),
// measured with cmd/parley-bench-lists.
const (
	// gramSeekCost is a gram entry followed to its contact_search row:
	// a search of the integer key, and an instr or a sort for the page.
	gramSeekCost = 8
	// gramTrigramsMax bounds the trigrams of a long fragment looked at to
	// find its rarest: any of them leads to every match.
	gramTrigramsMax = 12
)

// searchByGrams answers a name search, fragment lower-cased and no other
// filter, from the gram index. ok is false when the index does not help (a
// long fragment made only of frequent trigrams): the caller then scans.
//
// A fragment of one to three characters is a gram: the contacts holding it
// are exactly the matches, counted without testing a name. The page is
// then read from the gram index (the matches sorted by created_at, id)
// when there are few matches, and by the scan of contacts_list in page
// order otherwise, which fills the page after about (offset + per_page) ×
// contacts / matches entries and stops.
//
// A longer fragment holds each of its trigrams, so its matches are among
// the contacts holding its rarest trigram: each is tested with instr as
// the scan does.
func searchByGrams(ctx context.Context, c *store.Conn, projectID, fragment string, p parley.Page) (out []*parley.Contact, total int, ok bool, err error) {
	out = []*parley.Contact{}
	var key, named int
	err = c.QueryRow(ctx, `SELECT key, contacts FROM contact_search_projects WHERE project_id = ?`, projectID).Scan(&key, &named)
	if errors.Is(err, sql.ErrNoRows) {
		return out, 0, true, nil // no contact of the project has a name
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("contacts: search: %w", err)
	}
	const matches = ` FROM contact_grams g JOIN contact_search s ON s.key = g.contact_key WHERE g.project_key = ? AND g.gram = ?`
	const order = ` ORDER BY s.created_at DESC, s.contact_id DESC LIMIT ? OFFSET ?`
	// "+project_id" keeps the planner on the primary key for the page's
	// ids; with project_id indexed it would scan the project's contacts
	// and test each against the list.
	const byID = ` AND +contacts.project_id = ? ORDER BY created_at DESC, id DESC`

	runes := []rune(fragment)
	if len(runes) <= 3 {
		err := c.QueryRow(ctx, `SELECT COUNT(*) FROM contact_grams WHERE project_key = ? AND gram = ?`, key, fragment).Scan(&total)
		if err != nil {
			return nil, 0, false, fmt.Errorf("contacts: count by name: %w", err)
		}
		if total == 0 || p.Offset() >= total {
			return out, total, true, nil
		}
		if total*gramSeekCost*total > (p.Offset()+p.PerPage)*named {
			out, _, err := listContactsPage(ctx, c, ` WHERE project_id = ? AND `+containsCond(c, "profile_name_lc"),
				[]any{projectID, containsArg(c, fragment)}, p, total)
			return out, total, err == nil, err
		}
		out, err = queryContacts(ctx, c, `SELECT `+contactCols+` FROM contacts WHERE id IN (SELECT s.contact_id`+matches+order+`)`+byID,
			key, fragment, p.PerPage, p.Offset(), projectID)
		return out, total, err == nil, err
	}

	// Testing the candidates must cost less than scanning.
	limit := named/gramSeekCost + 1
	gram, candidates, err := rarestTrigram(ctx, c, key, runes, limit)
	if err != nil {
		return nil, 0, false, err
	}
	if candidates == 0 {
		return out, 0, true, nil
	}
	if candidates >= limit {
		return nil, 0, false, nil
	}
	// One pass tests the candidates and returns the matches' ids in page
	// order: their number is the count, and the page's ids are then read
	// by primary key. (COUNT(*) OVER () buffers every match at a higher
	// cost per row, and a COUNT then a sorted page test them twice.)
	rows, err := c.Query(ctx, `SELECT s.contact_id`+matches+` AND instr(s.name_lc, ?) > 0 ORDER BY s.created_at DESC, s.contact_id DESC`,
		key, gram, fragment)
	if err != nil {
		return nil, 0, false, fmt.Errorf("contacts: search by name: %w", err)
	}
	defer rows.Close()
	var ids []any
	for rows.Next() {
		if total >= p.Offset() && total < p.Offset()+p.PerPage {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, 0, false, err
			}
			ids = append(ids, id)
		}
		total++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, err
	}
	rows.Close()
	if len(ids) == 0 {
		return out, total, true, nil
	}
	out, err = queryContacts(ctx, c, `SELECT `+contactCols+` FROM contacts WHERE id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`)`+byID,
		append(ids, projectID)...)
	return out, total, err == nil, err
}

// queryContacts runs a query of contactCols.
func queryContacts(ctx context.Context, c *store.Conn, q string, args ...any) ([]*parley.Contact, error) {
	out, err := store.QueryAll(ctx, c, scanContact, q, args...)
	if err != nil {
		return nil, fmt.Errorf("contacts: list by name: %w", err)
	}
	return out, nil
}

// rarestTrigram returns the trigram of fragment (more than three
// characters) held by the fewest of the project's contacts, and their
// number, counted up to limit. Each trigram is counted up to the fewest
// found so far, so a frequent one costs little once a rarer one is known.
func rarestTrigram(ctx context.Context, c *store.Conn, projectKey int, runes []rune, limit int) (string, int, error) {
	best, bestN := "", limit
	seen := map[string]bool{}
	for i := 0; i+3 <= len(runes) && len(seen) < gramTrigramsMax; i++ {
		g := string(runes[i : i+3])
		if seen[g] {
			continue
		}
		seen[g] = true
		var n int
		err := c.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM contact_grams WHERE project_key = ? AND gram = ? LIMIT ?)`,
			projectKey, g, bestN).Scan(&n)
		if err != nil {
			return "", 0, fmt.Errorf("contacts: trigram count: %w", err)
		}
		if n < bestN || best == "" {
			best, bestN = g, n
		}
		if n == 0 {
			break
		}
	}
	return best, bestN, nil
}
