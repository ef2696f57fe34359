package events

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley"
)

// TestEncodePayloadIsJSONMarshal: payloads are encoded byte for byte as
// json.Marshal encodes them, arrays (nil or not, of any or of strings)
// included.
func TestEncodePayloadIsJSONMarshal(t *testing.T) {
	s := "<b>&"
	for _, v := range []any{
		map[string]any{"z": []any{1.5, "x", nil, true, map[string]any{"b": []string{"a", "<"}, "a": []any{}}}, "a": []string(nil)},
		map[string]any{"list": []any(nil), "strs": []string{}, "obj": parley.JSONObject{"k": []string{"v"}}, "p": &s},
		[]any{[]any{[]string{"nested"}}},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodePayload(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("encodePayload:\n got  %s\n want %s", got, want)
		}
	}
}
