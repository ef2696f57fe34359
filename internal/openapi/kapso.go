package openapi

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Kapso's public v1 documents, copied verbatim into testdata/kapso (see the
// README there). They are embedded so that tests in any package can validate
// against them; nothing on the server's code path refers to them, so the
// linker leaves them out of the binary.
const (
	KapsoWhatsApp = "openapi-whatsapp.yaml"
	KapsoPlatform = "openapi-platform.yaml"
	KapsoOlder    = "openapi-combined-older.yaml"
)

// KapsoFiles lists Kapso's documents, current ones first.
var KapsoFiles = []string{KapsoWhatsApp, KapsoPlatform, KapsoOlder}

// kapsoSuperseded reports whether a document only describes the operations
// the current documents do not have. The older combined document predates
// them and contradicts them where both describe an operation (a template's
// components are an object there, an array now; its status has no
// "removed"), so no response could satisfy both: it is used for the
// operations only it has (GET /projects/{project_id}).
func kapsoSuperseded(file string) bool { return file == KapsoOlder }

//go:embed testdata/kapso/*.yaml
var kapsoFS embed.FS

// Erratum is a defect of Kapso's own documents that Parley corrects in memory
// before using them. Every erratum is listed in docs/openapi.md.
type Erratum struct {
	// File is the Kapso document the erratum applies to.
	File string
	// Where names the location in the document (path, operation or schema).
	Where string
	// Why describes the defect and the correction.
	Why string
	// raw edits the YAML text before it is parsed (for defects that stop it
	// from loading); doc edits the parsed document. Either fails when the
	// defect is no longer there, so a changed copy of Kapso's files makes the
	// erratum be looked at again.
	raw func([]byte) ([]byte, error)
	doc func(*openapi3.T) error
}

// kapsoProjectSchemas is the fix for the older document, which references
// #/components/schemas/Project and PaginationMeta without defining them.
const kapsoProjectSchemas = `  schemas:
    Project:
      type: object
      properties:
        id: {type: string, format: uuid}
        name: {type: string}
        description: {type: string, nullable: true}
        created_at: {type: string, format: date-time}
        updated_at: {type: string, format: date-time}
    PaginationMeta:
      type: object
      properties:
        page: {type: integer}
        per_page: {type: integer}
        total_pages: {type: integer}
        total_count: {type: integer}
`

// KapsoErrata lists, in the order applied, the corrections made to Kapso's
// documents. Example values that break their own schema (ids such as
// "customer-123" under format: uuid, numbers in string fields) are a further
// erratum handled by not validating examples (see KapsoValidator).
var KapsoErrata = []Erratum{
	{
		File:  KapsoOlder,
		Where: "components.schemas Project, PaginationMeta",
		Why:   "referenced but not defined; defined as {id, name, description, created_at, updated_at} and {page, per_page, total_pages, total_count}",
		raw: func(b []byte) ([]byte, error) {
			const anchor = "\n  schemas:\n"
			if !bytes.Contains(b, []byte(anchor)) || bytes.Contains(b, []byte("\n    Project:\n")) {
				return nil, errors.New("components.schemas not found, or Project already defined")
			}
			return bytes.Replace(b, []byte(anchor), []byte("\n"+kapsoProjectSchemas), 1), nil
		},
	},
	{
		File:  KapsoPlatform,
		Where: "POST /customers (createPlatformCustomer)",
		Why:   "mis-indented under /whatsapp_configs/{whatsapp_config_id}/display_name_requests/{id}, where it lacks that path's parameters; moved to /customers",
		doc: func(doc *openapi3.T) error {
			dn := doc.Paths.Value("/whatsapp_configs/{whatsapp_config_id}/display_name_requests/{id}")
			customers := doc.Paths.Value("/customers")
			if dn == nil || dn.Post == nil || dn.Post.OperationID != "createPlatformCustomer" || customers == nil || customers.Post != nil {
				return errors.New("misplaced createPlatformCustomer not found")
			}
			customers.Post, dn.Post = dn.Post, nil
			return nil
		},
	},
	{
		File:  KapsoWhatsApp,
		Where: "components.schemas.WhatsappMessage.properties.message_type_data",
		Why:   messageTypeDataWhy,
		doc:   messageTypeDataAnyOf,
	},
	{
		File:  KapsoOlder,
		Where: "components.schemas.WhatsappMessage.properties.message_type_data",
		Why:   messageTypeDataWhy,
		doc:   messageTypeDataAnyOf,
	},
}

const messageTypeDataWhy = "oneOf of ten object variants (TextMessageData, ImageMessageData, …) that have no " +
	"required properties, no discriminator and allow additional properties, so every real message_type_data " +
	"(even {}) matches several of them and none matches exactly one; applied as anyOf, which accepts exactly " +
	"the objects the variants describe"

// messageTypeDataAnyOf turns WhatsappMessage.message_type_data's oneOf into
// anyOf.
func messageTypeDataAnyOf(doc *openapi3.T) error {
	msg := doc.Components.Schemas["WhatsappMessage"]
	if msg == nil || msg.Value == nil {
		return errors.New("schema WhatsappMessage not found")
	}
	mtd := msg.Value.Properties["message_type_data"]
	if mtd == nil || mtd.Value == nil || len(mtd.Value.OneOf) == 0 || len(mtd.Value.AnyOf) > 0 {
		return errors.New("message_type_data is no longer a oneOf")
	}
	for _, alt := range mtd.Value.OneOf {
		if alt.Value == nil || len(alt.Value.Required) > 0 || alt.Value.AdditionalProperties.Has != nil {
			return errors.New("a message_type_data variant now has required properties or closed properties: re-examine the erratum")
		}
	}
	if mtd.Value.Discriminator != nil {
		return errors.New("message_type_data now has a discriminator: re-examine the erratum")
	}
	mtd.Value.AnyOf, mtd.Value.OneOf = mtd.Value.OneOf, nil
	return nil
}

// LoadKapso parses one of Kapso's documents (one of KapsoFiles) with
// KapsoErrata applied. Every call returns a new document, which the caller
// may modify.
func LoadKapso(file string) (*openapi3.T, error) {
	raw, err := kapsoFS.ReadFile("testdata/kapso/" + file)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return loadWithErrata(raw, file, KapsoErrata)
}

// loadWithErrata parses raw, one of Kapso's documents named file, with the
// errata of that file applied.
func loadWithErrata(raw []byte, file string, errata []Erratum) (*openapi3.T, error) {
	var err error
	for _, e := range errata {
		if e.File != file || e.raw == nil {
			continue
		}
		if raw, err = e.raw(raw); err != nil {
			return nil, fmt.Errorf("openapi: %s erratum %q: %w", file, e.Where, err)
		}
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("openapi: loading %s: %w", file, err)
	}
	for _, e := range errata {
		if e.File != file || e.doc == nil {
			continue
		}
		if err := e.doc(doc); err != nil {
			return nil, fmt.Errorf("openapi: %s erratum %q: %w", file, e.Where, err)
		}
	}
	return doc, nil
}

// KapsoValidator checks responses against Kapso's own documents, each loaded
// as a document of its own (they name the same path parameters differently)
// with KapsoErrata applied and its server set to BasePath. It is safe for
// concurrent use.
type KapsoValidator struct {
	files []string
	vs    []*Validator
}

// NewKapsoValidator builds a KapsoValidator from every file of KapsoFiles.
func NewKapsoValidator() (*KapsoValidator, error) {
	k := &KapsoValidator{}
	for _, f := range KapsoFiles {
		doc, err := LoadKapso(f)
		if err != nil {
			return nil, err
		}
		// Kapso's server is https://app.kapso.ai/api/v1; Parley serves the
		// same paths under BasePath on any host.
		if err := k.add(f, doc, BasePath); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// add appends Kapso's document doc, named file, served by Parley under base.
func (k *KapsoValidator) add(file string, doc *openapi3.T, base string) error {
	doc.Servers = openapi3.Servers{{URL: base}}
	// Examples are not validated: some of Kapso's break their own schema
	// (see KapsoErrata), and they are not responses.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return fmt.Errorf("openapi: %s is invalid: %w", file, err)
	}
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return fmt.Errorf("openapi: building router for %s: %w", file, err)
	}
	k.files = append(k.files, file)
	k.vs = append(k.vs, &Validator{doc: doc, router: router})
	return nil
}

// The shared KapsoValidator is built on first use. (A package-level
// sync.OnceValues would be initialised at start-up and keep Kapso's
// documents in the binary.)
var (
	kapsoOnce sync.Once
	kapsoV    *KapsoValidator
	kapsoErr  error
)

// MustKapsoValidator returns a shared KapsoValidator, panicking if Kapso's
// documents cannot be loaded. It is meant for tests.
func MustKapsoValidator() *KapsoValidator {
	kapsoOnce.Do(func() { kapsoV, kapsoErr = NewKapsoValidator() })
	if kapsoErr != nil {
		panic(kapsoErr)
	}
	return kapsoV
}

// ErrNotKapso is returned (wrapped) by KapsoValidator.ValidateResponse when
// none of Kapso's documents has the request's operation.
var ErrNotKapso = errors.New("not an operation of Kapso's documents")

// ErrStatusNotKapso is returned (wrapped) by KapsoValidator.ValidateResponse
// when a document has the operation but not the response's status (and the
// status is not 2xx, whose bodies are always checked).
var ErrStatusNotKapso = errors.New("status not documented by Kapso")

// FindRoute returns the operation each of Kapso's documents has for req,
// keyed by file name; files without the operation are left out. (The older
// document is included even where ValidateResponse passes it over.)
func (k *KapsoValidator) FindRoute(req *http.Request) map[string]*Route {
	out := map[string]*Route{}
	for i, v := range k.vs {
		if r, err := v.FindRoute(req); err == nil {
			out[k.files[i]] = r
		}
	}
	return out
}

// ValidateResponse checks a response against every one of Kapso's current
// documents that has the request's operation (the older document when none
// has it), as a client validating Parley against that document would:
//
//   - no document has the operation: an error wrapping ErrNotKapso;
//   - the status is documented: content type and body are checked;
//   - a 2xx status that the operation does not document: the body is checked
//     against the operation's one documented 2xx response (it is an error if
//     there is none, or several);
//   - any other status: an error wrapping ErrStatusNotKapso, for the caller
//     to judge (Parley documents 413 and 429 on every operation).
//
// ErrStatusNotKapso is only returned when every matching document passes
// otherwise; schema violations take precedence.
func (k *KapsoValidator) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	var problems []string
	var undocumented []string
	found := false
	for i, v := range k.vs {
		file := k.files[i]
		if found && kapsoSuperseded(file) {
			break
		}
		route, _, err := v.findRoute(req)
		if err != nil {
			continue
		}
		found = true
		st := status
		if resp := route.Operation.Responses.Status(status); resp == nil || resp.Value == nil {
			if route.Operation.Responses.Default() != nil {
				// A default response covers the status.
			} else if status >= 200 && status < 300 {
				var ok []int
				for code := 200; code < 300; code++ {
					if route.Operation.Responses.Status(code) != nil {
						ok = append(ok, code)
					}
				}
				if len(ok) != 1 {
					problems = append(problems, fmt.Sprintf("%s: %s %s documents 2xx statuses %v, not %d", file, route.Method, route.Path, ok, status))
					continue
				}
				st = ok[0]
			} else {
				undocumented = append(undocumented, fmt.Sprintf("%s: %s %s", file, route.Method, route.Path))
				continue
			}
		}
		if err := v.validateResponse(req, status, st, header, body); err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s %s): %v", file, route.Method, route.Path, err))
		}
	}
	switch {
	case !found:
		return fmt.Errorf("openapi: %s %s: %w", req.Method, req.URL.Path, ErrNotKapso)
	case len(problems) > 0:
		return fmt.Errorf("openapi: the response breaks Kapso's documents:\n%s", strings.Join(problems, "\n"))
	case len(undocumented) > 0:
		return fmt.Errorf("openapi: %d for %s: %w", status, strings.Join(undocumented, "; "), ErrStatusNotKapso)
	}
	return nil
}
