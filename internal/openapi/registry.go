package openapi

import (
	"slices"
	"sync"
)

// Document is an API surface's OpenAPI document as the entry points list
// it: GET /, GET /api/v1 and the reference page at GET /docs/api.
type Document struct {
	// Name is the surface's title, e.g. "Kapso v1 API".
	Name string
	// Prefix is the path every operation of the surface starts with.
	Prefix string
	// URL is where the document is served as JSON.
	URL string
	// Auth says how a client authenticates, e.g. "X-API-Key header".
	Auth string
	// JSON returns the document encoded as JSON (computed lazily, once).
	JSON func() []byte
}

var registry struct {
	sync.Mutex
	docs    []Document
	version int // bumped on every change, so renderings can be cached
}

// Register adds a surface's document to the index and the reference page;
// registering a prefix again replaces its document (servers are built many
// times in tests). The Kapso v1 document is registered by this package.
func Register(d Document) {
	registry.Lock()
	defer registry.Unlock()
	registry.version++
	if i := slices.IndexFunc(registry.docs, func(x Document) bool { return x.Prefix == d.Prefix }); i >= 0 {
		registry.docs[i] = d
		return
	}
	registry.docs = append(registry.docs, d)
}

// Documents returns the registered documents, in order of registration.
func Documents() []Document {
	docs, _ := documents()
	return docs
}

func documents() ([]Document, int) {
	registry.Lock()
	defer registry.Unlock()
	return slices.Clone(registry.docs), registry.version
}

func init() {
	Register(Document{Name: "Kapso v1 API", Prefix: BasePath, URL: BasePath + "/openapi.json", Auth: "X-API-Key header", JSON: JSON})
}

// Unregister removes the document of prefix (tests).
func Unregister(prefix string) {
	registry.Lock()
	defer registry.Unlock()
	registry.version++
	registry.docs = slices.DeleteFunc(registry.docs, func(x Document) bool { return x.Prefix == prefix })
}
