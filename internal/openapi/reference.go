package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// The reference page is rendered on the server from the registered
// documents, with no script and no CDN: it works offline and in any
// browser, and it can never disagree with the documents it is made of.

//go:embed reference.html
var referenceHTML string

var referenceTmpl = template.Must(template.New("reference").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).Parse(referenceHTML))

// refPage is what the template renders.
type refPage struct {
	Docs []refDoc
}

type refDoc struct {
	Document
	Anchor      string
	Title       string
	Version     string
	Description string
	Error       string
	Tags        []refTag
	Schemas     []refSchema
}

type refTag struct {
	Name string
	Ops  []refOp
}

type refOp struct {
	Anchor      string
	Method      string
	Path        string
	Summary     string
	Description string
	Extension   bool
	Params      []refParam
	Body        *refBody
	Responses   []refResponse
}

type refParam struct {
	Name, In, Type, Description string
	Required                    bool
}

type refBody struct {
	Required bool
	Types    []refMedia
}

type refMedia struct {
	MediaType string
	Schema    template.HTML
}

type refResponse struct {
	Status      string
	Description string
	Schema      template.HTML
}

type refSchema struct {
	Name   string
	Anchor string
	Schema template.HTML
}

var referenceCache struct {
	sync.Mutex
	version int
	page    []byte
}

// Reference returns the HTML reference page of every registered document,
// rendered once per set of documents.
func Reference() ([]byte, error) {
	docs, version := documents()
	referenceCache.Lock()
	defer referenceCache.Unlock()
	if referenceCache.page != nil && referenceCache.version == version {
		return referenceCache.page, nil
	}
	page := refPage{}
	for _, d := range docs {
		page.Docs = append(page.Docs, buildRefDoc(d))
	}
	var buf bytes.Buffer
	if err := referenceTmpl.Execute(&buf, page); err != nil {
		return nil, fmt.Errorf("openapi: render reference: %w", err)
	}
	referenceCache.page, referenceCache.version = buf.Bytes(), version
	return referenceCache.page, nil
}

func anchorOf(parts ...string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.Join(parts, "-")) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}

func buildRefDoc(d Document) refDoc {
	rd := refDoc{Document: d, Anchor: anchorOf(d.Prefix), Title: d.Name}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(d.JSON())
	if err == nil {
		err = doc.Validate(context.Background(), openapi3.DisableExamplesValidation())
	}
	if err != nil {
		rd.Error = err.Error()
		return rd
	}
	if doc.Info != nil {
		rd.Title, rd.Version, rd.Description = doc.Info.Title, doc.Info.Version, doc.Info.Description
	}
	r := schemaRenderer{doc: rd.Anchor}
	byTag := map[string][]refOp{}
	var tagOrder []string
	if doc.Tags != nil {
		for _, t := range doc.Tags {
			tagOrder = append(tagOrder, t.Name)
		}
	}
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, p := range paths {
		item := doc.Paths.Value(p)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			ro := refOp{Anchor: anchorOf(d.Prefix, method, p), Method: method, Path: d.Prefix + p,
				Summary: op.Summary, Description: op.Description, Extension: op.Extensions["x-parley-extension"] == true}
			params := append(slices.Clone(item.Parameters), op.Parameters...)
			for _, pr := range params {
				if pr == nil || pr.Value == nil {
					continue
				}
				ro.Params = append(ro.Params, refParam{Name: pr.Value.Name, In: pr.Value.In, Required: pr.Value.Required,
					Type: r.typeName(pr.Value.Schema), Description: pr.Value.Description})
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				b := &refBody{Required: op.RequestBody.Value.Required}
				for _, mt := range sortedKeys(op.RequestBody.Value.Content) {
					b.Types = append(b.Types, refMedia{MediaType: mt, Schema: r.render(op.RequestBody.Value.Content[mt].Schema)})
				}
				ro.Body = b
			}
			if op.Responses != nil {
				for _, code := range sortedKeys(op.Responses.Map()) {
					resp := op.Responses.Value(code)
					if resp == nil || resp.Value == nil {
						continue
					}
					rr := refResponse{Status: code}
					if resp.Value.Description != nil {
						rr.Description = *resp.Value.Description
					}
					if mt := resp.Value.Content.Get("application/json"); mt != nil {
						rr.Schema = r.render(mt.Schema)
					}
					ro.Responses = append(ro.Responses, rr)
				}
			}
			tags := op.Tags
			if len(tags) == 0 {
				tags = []string{"Other"}
			}
			if !slices.Contains(tagOrder, tags[0]) {
				tagOrder = append(tagOrder, tags[0])
			}
			byTag[tags[0]] = append(byTag[tags[0]], ro)
		}
	}
	for _, t := range tagOrder {
		if ops := byTag[t]; len(ops) > 0 {
			rd.Tags = append(rd.Tags, refTag{Name: t, Ops: ops})
		}
	}
	if doc.Components != nil {
		for _, name := range sortedKeys(doc.Components.Schemas) {
			rd.Schemas = append(rd.Schemas, refSchema{Name: name, Anchor: r.schemaAnchor(name),
				Schema: r.renderTop(doc.Components.Schemas[name])})
		}
	}
	return rd
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// schemaRenderer writes a schema as nested HTML lists. A reference to a
// component is a link to the component's own entry, never expanded inline,
// so recursive schemas end and each component is written once.
type schemaRenderer struct {
	doc string // the document's anchor, prefixing schema anchors
}

// maxDepth bounds inline schemas (a document could nest them deeply).
const maxDepth = 8

func (r schemaRenderer) schemaAnchor(name string) string { return anchorOf(r.doc, "schema", name) }

func refName(ref string) string {
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// typeName is a one-line summary of a schema: its component's name, or its
// type (with the item type of arrays).
func (r schemaRenderer) typeName(s *openapi3.SchemaRef) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		return refName(s.Ref)
	}
	if s.Value == nil {
		return ""
	}
	v := s.Value
	t := strings.Join(v.Type.Slice(), "|")
	if v.Type.Is("array") && v.Items != nil {
		t = "array of " + r.typeName(v.Items)
	}
	if t == "" {
		switch {
		case len(v.OneOf) > 0:
			t = "one of"
		case len(v.AnyOf) > 0:
			t = "any of"
		case len(v.AllOf) > 0:
			t = "all of"
		default:
			t = "any"
		}
	}
	if v.Format != "" {
		t += " (" + v.Format + ")"
	}
	if v.Nullable {
		t += ", nullable"
	}
	return t
}

func (r schemaRenderer) render(s *openapi3.SchemaRef) template.HTML {
	if s == nil {
		return ""
	}
	var b strings.Builder
	r.write(&b, s, 0)
	return template.HTML(b.String())
}

// renderTop renders a component's own definition (its value, not a link to
// itself).
func (r schemaRenderer) renderTop(s *openapi3.SchemaRef) template.HTML {
	if s == nil || s.Value == nil {
		return r.render(s)
	}
	var b strings.Builder
	r.writeValue(&b, s.Value, 0)
	return template.HTML(b.String())
}

func (r schemaRenderer) write(b *strings.Builder, s *openapi3.SchemaRef, depth int) {
	if s.Ref != "" {
		name := refName(s.Ref)
		fmt.Fprintf(b, `<a class="ref" href="#%s">%s</a>`, r.schemaAnchor(name), template.HTMLEscapeString(name))
		return
	}
	if s.Value == nil {
		return
	}
	r.writeValue(b, s.Value, depth)
}

func (r schemaRenderer) writeValue(b *strings.Builder, v *openapi3.Schema, depth int) {
	fmt.Fprintf(b, `<span class="type">%s</span>`, template.HTMLEscapeString(r.typeName(&openapi3.SchemaRef{Value: v})))
	if len(v.Enum) > 0 {
		vals := make([]string, len(v.Enum))
		for i, e := range v.Enum {
			vals[i] = fmt.Sprint(e)
		}
		fmt.Fprintf(b, ` <span class="enum">one of: %s</span>`, template.HTMLEscapeString(strings.Join(vals, ", ")))
	}
	if v.Description != "" && depth == 0 {
		fmt.Fprintf(b, `<div class="desc">%s</div>`, template.HTMLEscapeString(v.Description))
	}
	if depth >= maxDepth {
		return
	}
	if v.Type.Is("array") && v.Items != nil && v.Items.Ref == "" && v.Items.Value != nil && len(v.Items.Value.Properties) > 0 {
		b.WriteString(`<div class="items">items: `)
		r.writeValue(b, v.Items.Value, depth+1)
		b.WriteString(`</div>`)
	} else if v.Type.Is("array") && v.Items != nil && v.Items.Ref != "" {
		b.WriteString(` <span class="items">items: `)
		r.write(b, v.Items, depth+1)
		b.WriteString(`</span>`)
	}
	for _, group := range []struct {
		name string
		list openapi3.SchemaRefs
	}{{"one of", v.OneOf}, {"any of", v.AnyOf}, {"all of", v.AllOf}} {
		if len(group.list) == 0 {
			continue
		}
		fmt.Fprintf(b, `<ul class="variants" title="%s">`, group.name)
		for _, x := range group.list {
			b.WriteString("<li>")
			r.write(b, x, depth+1)
			b.WriteString("</li>")
		}
		b.WriteString("</ul>")
	}
	if len(v.Properties) == 0 {
		return
	}
	b.WriteString(`<ul class="props">`)
	for _, name := range sortedKeys(v.Properties) {
		p := v.Properties[name]
		req := ""
		if slices.Contains(v.Required, name) {
			req = ` <span class="req">required</span>`
		}
		fmt.Fprintf(b, `<li><code>%s</code>%s: `, template.HTMLEscapeString(name), req)
		r.write(b, p, depth+1)
		if p.Ref == "" && p.Value != nil && p.Value.Description != "" {
			fmt.Fprintf(b, ` <span class="desc">%s</span>`, template.HTMLEscapeString(p.Value.Description))
		}
		b.WriteString("</li>")
	}
	b.WriteString("</ul>")
}

// Anchor is the id of a surface's section on the reference page.
func Anchor(prefix string) string { return anchorOf(prefix) }
