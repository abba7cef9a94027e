package llm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func requestTools() []Tool {
	return []Tool{
		{Name: "search", Description: "Find <runbooks> & notes", Parameters: map[string]any{
			"type": "object", "required": []string{"query"},
			"properties": map[string]any{
				"query": map[string]any{"type": "string", "maxLength": 400},
				"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": 10},
			}}},
		{Name: "list", Parameters: map[string]any{"type": "object", "properties": map[string]any{}}},
	}
}

// A prepared tool goes on the wire byte for byte as an unprepared one, and
// WireSize is its length there.
func TestPreparedToolsEncodeAsUnprepared(t *testing.T) {
	p := &ProviderConfig{Name: "p", Model: "m"}
	msgs := []Message{{Role: RoleSystem, Content: "be brief"}, {Role: RoleUser, Content: "why <502>?"}}
	plain := requestTools()
	prepared := make([]Tool, len(plain))
	for i, tl := range plain {
		var err error
		if prepared[i], err = PrepareTool(tl); err != nil {
			t.Fatal(err)
		}
		if prepared[i].wire == nil {
			t.Fatalf("tool %q: not prepared", tl.Name)
		}
	}
	a, err := encodeRequest(p, Request{Messages: msgs, Tools: plain})
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeRequest(p, Request{Messages: msgs, Tools: prepared})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("prepared tools changed the body:\n%s\n%s", a, b)
	}
	if !bytes.Contains(b, []byte("Find <runbooks> & notes")) {
		t.Fatalf("HTML characters escaped in a tool description: %s", b)
	}

	var body struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Tools) != len(plain) {
		t.Fatalf("%d tools in the body, want %d", len(body.Tools), len(plain))
	}
	for i, raw := range body.Tools {
		for _, tl := range []Tool{plain[i], prepared[i]} {
			if got := tl.WireSize(); got != len(raw) {
				t.Errorf("tool %q: WireSize %d, %d bytes in the body", tl.Name, got, len(raw))
			}
		}
		var got struct {
			Type     string `json:"type"`
			Function struct {
				Name        string         `json:"name"`
				Description string         `json:"description"`
				Parameters  map[string]any `json:"parameters"`
			} `json:"function"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		js, _ := json.Marshal(plain[i].Parameters)
		_ = json.Unmarshal(js, &want)
		if got.Type != "function" || got.Function.Name != plain[i].Name || got.Function.Description != plain[i].Description ||
			!reflect.DeepEqual(got.Function.Parameters, want) {
			t.Errorf("tool %d on the wire: %s", i, raw)
		}
	}
}

// A schema JSON cannot express is refused, prepared or not.
func TestToolSchemaThatCannotBeEncoded(t *testing.T) {
	bad := Tool{Name: "bad", Parameters: map[string]any{"f": func() {}}}
	if _, err := PrepareTool(bad); err == nil {
		t.Fatal("PrepareTool accepted a function in a schema")
	}
	if _, err := encodeRequest(&ProviderConfig{Model: "m"}, Request{Messages: []Message{{Role: RoleUser, Content: "x"}}, Tools: []Tool{bad}}); err == nil {
		t.Fatal("encodeRequest accepted a function in a schema")
	}
	if n := bad.WireSize(); n != 0 {
		t.Fatalf("WireSize of an unencodable tool: %d", n)
	}
}
