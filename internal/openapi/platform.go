package openapi

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// PlatformBasePath is the path prefix of Kapso's Platform API as Parley
// serves it (the only server URL of platform.yaml).
const PlatformBasePath = "/platform/v1"

// platform.yaml is Parley's document for /platform/v1: Kapso's Platform API
// with Parley's corrections and error statuses (docs/platform-api.md).
//
//go:embed platform.yaml
var platformYAML []byte

// PlatformYAML returns the embedded Platform API document as written. The
// returned slice must not be modified.
func PlatformYAML() []byte { return platformYAML }

var loadPlatformOnce = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(platformYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi: loading platform.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: platform.yaml is invalid: %w", err)
	}
	return doc, nil
})

// LoadPlatform parses and validates the embedded Platform API document once;
// callers must treat the result as read-only.
func LoadPlatform() (*openapi3.T, error) { return loadPlatformOnce() }

var platformJSONOnce = sync.OnceValue(func() []byte {
	doc, err := LoadPlatform()
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Errorf("openapi: encoding platform document as JSON: %w", err))
	}
	return b
})

// PlatformJSON returns the Platform API document as JSON, as served at
// GET /platform/v1/openapi.json. It panics if the embedded document does
// not load, which the package's tests rule out.
func PlatformJSON() []byte { return platformJSONOnce() }

var platformValidatorOnce = sync.OnceValues(func() (*Validator, error) {
	doc, err := LoadPlatform()
	if err != nil {
		return nil, err
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: building platform router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
})

// MustPlatformValidator returns a shared Validator for the Platform API
// document (paths under PlatformBasePath), panicking if it cannot be
// loaded. It is meant for tests.
func MustPlatformValidator() *Validator {
	v, err := platformValidatorOnce()
	if err != nil {
		panic(err)
	}
	return v
}

// KapsoPlatformV1 is Kapso's Platform API reference document, copied
// verbatim into testdata/kapso-platform-v1 (see the README there). Like the
// v1 documents it is only reachable from tests.
const KapsoPlatformV1 = "openapi-platform-v1.yaml"

//go:embed testdata/kapso-platform-v1/*.yaml
var kapsoPlatformFS embed.FS

// KapsoPlatformErrata lists the corrections made in memory to Kapso's
// Platform API document before responses are validated against it. Every
// erratum is listed in docs/platform-api.md.
var KapsoPlatformErrata = []Erratum{}

// LoadKapsoPlatform parses Kapso's Platform API document with
// KapsoPlatformErrata applied. Every call returns a new document.
func LoadKapsoPlatform() (*openapi3.T, error) {
	raw, err := kapsoPlatformFS.ReadFile("testdata/kapso-platform-v1/" + KapsoPlatformV1)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return loadWithErrata(raw, KapsoPlatformV1, KapsoPlatformErrata)
}

var (
	kapsoPlatformOnce sync.Once
	kapsoPlatformV    *KapsoValidator
	kapsoPlatformErr  error
)

// MustKapsoPlatformValidator returns a shared KapsoValidator for Kapso's
// Platform API document, served under PlatformBasePath, panicking if it
// cannot be loaded. It is meant for tests.
func MustKapsoPlatformValidator() *KapsoValidator {
	kapsoPlatformOnce.Do(func() {
		doc, err := LoadKapsoPlatform()
		if err != nil {
			kapsoPlatformErr = err
			return
		}
		k := &KapsoValidator{}
		if err := k.add(KapsoPlatformV1, doc, PlatformBasePath); err != nil {
			kapsoPlatformErr = err
			return
		}
		kapsoPlatformV = k
	})
	if kapsoPlatformErr != nil {
		panic(kapsoPlatformErr)
	}
	return kapsoPlatformV
}
