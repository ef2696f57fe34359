package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// NewID returns a new random UUID string. Version 7 ids sort by creation
// time, which keeps primary-key b-trees append-mostly.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// IDsBefore returns an id that every NewID made at t or later sorts after
// and every one made before t's millisecond sorts before: a UUIDv7's text
// begins with its creation time in milliseconds, in fixed-width hex, so a
// range of ids by time is a range of the primary key.
func IDsBefore(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	return fmt.Sprintf("%08x-%04x-0000-0000-000000000000", ms>>16, ms&0xffff)
}

// Micros converts t to the stored representation.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Time converts a stored time back, in UTC.
func Time(us int64) time.Time { return time.UnixMicro(us).UTC() }

// NullMicros converts an optional time for storage.
func NullMicros(t *time.Time) sql.NullInt64 {
	if t == nil || t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// TimePtr converts an optional stored time.
func TimePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := Time(v.Int64)
	return &t
}

// StrPtr converts an optional stored string.
func StrPtr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

// NullStr converts an optional string for storage.
func NullStr(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

// JSON encodes v for a TEXT column.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// FromJSON decodes a TEXT column into v, ignoring empty values.
func FromJSON(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// Scanner is satisfied by *sql.Row and *sql.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// Placeholders returns "?, ?, …" for n values, for an IN list or a VALUES
// row; for n = 0 it returns NULL, so "IN (NULL)" matches nothing rather
// than being a syntax error.
func Placeholders(n int) string {
	if n <= 0 {
		return "NULL"
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
