package openapi

import (
	"encoding/json"
	"testing"
)

func TestPlatformDocumentLoads(t *testing.T) {
	doc, err := LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Servers[0].URL; got != PlatformBasePath {
		t.Errorf("server %q, want %q", got, PlatformBasePath)
	}
	var m map[string]any
	if err := json.Unmarshal(PlatformJSON(), &m); err != nil || m["paths"] == nil {
		t.Fatalf("PlatformJSON: %v", err)
	}
	MustPlatformValidator()
}

// TestPlatformCoversKapso checks that Parley's document has every operation
// of Kapso's Platform API document.
func TestPlatformCoversKapso(t *testing.T) {
	ours, err := LoadPlatform()
	if err != nil {
		t.Fatal(err)
	}
	kapso, err := LoadKapsoPlatform()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range kapso.Paths.Map() {
		for method := range item.Operations() {
			n++
			if p := ours.Paths.Value(path); p == nil || p.GetOperation(method) == nil {
				t.Errorf("%s %s: in Kapso's document, not in platform.yaml", method, path)
			}
		}
	}
	if n != 55 {
		t.Errorf("Kapso's document has %d operations, want 55", n)
	}
	MustKapsoPlatformValidator()
}
