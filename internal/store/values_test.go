package store

import (
	"testing"
	"time"
)

// Ids made before a time sort before IDsBefore of it, ids made at or after
// it sort after, whatever their random bits.
func TestIDsBefore(t *testing.T) {
	cut := time.Now()
	bound := IDsBefore(cut)
	if id := NewID(); id <= bound {
		t.Fatalf("id made after the cut %s sorts before its bound %s", id, bound)
	}
	if later := IDsBefore(cut.Add(time.Millisecond)); later <= bound {
		t.Fatalf("bounds out of order: %s then %s", bound, later)
	}
	time.Sleep(2 * time.Millisecond)
	if id, b := NewID(), IDsBefore(time.Now().Add(time.Millisecond)); id >= b {
		t.Fatalf("id made before the cut %s sorts after its bound %s", id, b)
	}
	if len(bound) != len(NewID()) {
		t.Fatalf("bound %q is not an id's length", bound)
	}
}
