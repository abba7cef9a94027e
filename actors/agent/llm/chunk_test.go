package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

// A chunk as the fake server (llmtest) and OpenAI send it.
const sampleChunk = `{"id":"chatcmpl-fake000001","object":"chat.completion.chunk","created":1764120000,` +
	`"model":"model-x","system_fingerprint":"fp_llmtest","choices":[{"index":0,"delta":{"content":"chec"},` +
	`"logprobs":null,"finish_reason":null}],"usage":null}`

func TestDecodeChunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want chunk
	}{
		{"content", sampleChunk, chunk{model: "model-x", choices: []choiceDelta{{content: "chec"}}}},
		{"role chunk", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
			chunk{choices: []choiceDelta{{}}}},
		{"finish", `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			chunk{choices: []choiceDelta{{finishReason: "stop"}}}},
		{"usage", `{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,` +
			`"prompt_tokens_details":{"cached_tokens":0}}}`,
			chunk{hasUsage: true, promptTokens: 12, completionTokens: 3}},
		{"tool call header", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function",` +
			`"function":{"name":"search_logs","arguments":""}}]}}]}`,
			chunk{choices: []choiceDelta{{toolCalls: []toolCallDelta{{index: 1, id: "call_1", name: "search_logs"}}}}}},
		{"tool call fragment", `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"q\":"}}]}}]}`,
			chunk{choices: []choiceDelta{{toolCalls: []toolCallDelta{{index: 1, arguments: `{"q":`}}}}}},
		{"escapes", `{"choices":[{"delta":{"content":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\u2028"}}]}`,
			chunk{choices: []choiceDelta{{content: "a\"b\\c/d\n\té😀\u2028"}}}},
		{"lone surrogate", `{"choices":[{"delta":{"content":"x\ud800y\udc00"}}]}`,
			chunk{choices: []choiceDelta{{content: "x\ufffdy\ufffd"}}}},
		{"invalid utf-8", "{\"choices\":[{\"delta\":{\"content\":\"a\xffb\"}}]}",
			chunk{choices: []choiceDelta{{content: "a\ufffdb"}}}},
		{"utf-8", `{"choices":[{"delta":{"content":"Größe — 大小"}}]}`,
			chunk{choices: []choiceDelta{{content: "Größe — 大小"}}}},
		{"wrong types are absent", `{"model":7,"choices":[{"index":"1","delta":{"content":null,"tool_calls":{}},` +
			`"finish_reason":false},3,null],"usage":[1]}`,
			chunk{choices: []choiceDelta{{}}}},
		{"float index is absent", `{"choices":[{"index":1.0,"delta":{"content":"x"}}]}`,
			chunk{choices: []choiceDelta{{content: "x"}}}},
		{"last key wins", `{"model":"a","model":"b","choices":[{"delta":{"content":"x"},"delta":{"tool_calls":[{"id":"c"}]}}]}`,
			chunk{model: "b", choices: []choiceDelta{{toolCalls: []toolCallDelta{{id: "c"}}}}}},
		{"escaped key", `{"mod\u0065l":"m"}`, chunk{model: "m"}},
		{"unknown fields", `{"x":{"y":[1,2,{"z":true}],"w":-1.5e-3},"choices":[{"index":0,"logprobs":{"content":[]},` +
			`"delta":{"reasoning_content":"hm","content":"ok"}}]}`,
			chunk{choices: []choiceDelta{{content: "ok"}}}},
		{"whitespace", " \t\r\n{ \"choices\" : [ { \"index\" : 2 } ] } \n", chunk{choices: []choiceDelta{{index: 2}}}},
		{"error object", `{"error":{"message":"model overloaded","type":"server_error","code":null}}`,
			chunk{hasError: true, errMsg: "model overloaded"}},
		{"error without message", `{"error":{"code":503}}`, chunk{hasError: true, errMsg: `{"code":503}`}},
		{"error number", `{"error":503}`, chunk{hasError: true, errMsg: `503`}},
		{"error string", `{"error":"boom"}`, chunk{hasError: true, errMsg: "boom"}},
		{"error null", `{"error":null,"model":"m"}`, chunk{model: "m"}},
		{"anthropic error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			chunk{hasError: true, errMsg: "Overloaded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c chunk
			if err := c.decode([]byte(tc.in)); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !equalChunks(&c, &tc.want) {
				t.Fatalf("decoded %+v\nwant    %+v", c, tc.want)
			}
		})
	}
}

func TestDecodeChunkRejectsInvalidJSON(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `{"choices":[}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
		`{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":tru}`, `{"a":nul}`, `{} {}`,
		`{"a":"unterminated}`, `{"choices":[{"delta":{"content":"x"}}]`, `{"a":[1 2]}`, `{"a":+1}`,
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	} {
		var c chunk
		err := c.decode([]byte(in))
		if err == nil {
			t.Errorf("decode(%q) accepted invalid JSON", in)
			continue
		}
		if json.Valid([]byte(in)) {
			t.Errorf("test case %q is valid JSON", in)
		}
		if len(in) > 0 && in[0] == '{' && !errors.Is(err, errChunkSyntax) {
			t.Errorf("decode(%q) = %v, want a syntax error", in, err)
		}
	}
	var c chunk
	for _, in := range []string{`[]`, `"x"`, `null`, `1`} {
		if err := c.decode([]byte(in)); err == nil {
			t.Errorf("decode(%q) accepted a chunk that is not an object", in)
		}
	}
}

func TestDecodeChunkReusesSlices(t *testing.T) {
	var c chunk
	in := `{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a"},{"index":1,"id":"b"}]}},{"index":1}]}`
	if err := c.decode([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if err := c.decode([]byte(`{"choices":[{"delta":{"content":"x"}}]}`)); err != nil {
		t.Fatal(err)
	}
	want := chunk{choices: []choiceDelta{{content: "x"}}}
	if !equalChunks(&c, &want) {
		t.Fatalf("second chunk decoded as %+v: fields of the first leaked", c)
	}
}

// FuzzDecodeChunk checks the decoder against encoding/json: it accepts
// exactly the valid JSON objects, never panics, and reads the same fields
// as a decode of the same text into generic values would.
func FuzzDecodeChunk(f *testing.F) {
	for _, s := range []string{
		sampleChunk,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":-1,"id":"c","type":"function","function":{"name":"n","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[],"usage":{"prompt_tokens":9007199254740993,"completion_tokens":-2}}`,
		`{"error":{"message":"x","message":null}}`,
		`{"choices":[{"delta":{"content":"\ud83d\ude00\ud83d\u0041"}}]}`,
		`{"choices":[{"delta":{"content":"a"},"delta":null}]}`,
		`[{"a":{}}]`, `{"a":[[[[]]]]}`, "{\"\\u0063hoices\":[{}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c chunk
		err := c.decode(data)
		var tree any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		jerr := dec.Decode(&tree)
		valid := json.Valid(data)
		obj, isObj := tree.(map[string]any)
		switch {
		case !valid:
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			return
		case jerr != nil || !isObj:
			if err == nil {
				t.Fatalf("accepted %q, which is not a JSON object", data)
			}
			return
		case err != nil:
			t.Fatalf("rejected valid JSON object %q: %v", data, err)
		}
		want := chunkFromTree(obj)
		if !equalChunks(&c, &want) {
			t.Fatalf("decode(%q)\n got %+v\nwant %+v", data, c, want)
		}
	})
}

// chunkFromTree is the specification of decode for valid JSON: the fields
// it reads, taken from encoding/json's generic decoding.
func chunkFromTree(m map[string]any) chunk {
	str := func(v any) string { s, _ := v.(string); return s }
	num := func(v any) int64 {
		n, ok := v.(json.Number)
		if !ok {
			return 0
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return 0
		}
		return i
	}
	var c chunk
	c.model = str(m["model"])
	choices, _ := m["choices"].([]any)
	for _, e := range choices {
		cm, ok := e.(map[string]any)
		if !ok {
			continue
		}
		ch := choiceDelta{index: num(cm["index"]), finishReason: str(cm["finish_reason"])}
		if delta, ok := cm["delta"].(map[string]any); ok {
			ch.content = str(delta["content"])
			calls, _ := delta["tool_calls"].([]any)
			for _, e := range calls {
				tm, ok := e.(map[string]any)
				if !ok {
					continue
				}
				tc := toolCallDelta{index: num(tm["index"]), id: str(tm["id"])}
				if fn, ok := tm["function"].(map[string]any); ok {
					tc.name, tc.arguments = str(fn["name"]), str(fn["arguments"])
				}
				ch.toolCalls = append(ch.toolCalls, tc)
			}
		}
		c.choices = append(c.choices, ch)
	}
	if u, ok := m["usage"].(map[string]any); ok {
		c.hasUsage = true
		c.promptTokens, c.completionTokens = num(u["prompt_tokens"]), num(u["completion_tokens"])
	}
	if e, ok := m["error"]; ok && e != nil {
		c.hasError = true
		c.errMsg = rawJSON
		switch e := e.(type) {
		case string:
			c.errMsg = e
		case map[string]any:
			if msg := str(e["message"]); msg != "" {
				c.errMsg = msg
			}
		}
	}
	return c
}

// rawJSON stands for "the error value's JSON text" in an expected chunk.
const rawJSON = "\x00raw"

// equalChunks compares decoded chunks. Where want has rawJSON, got must
// hold JSON text (the input's, spacing included).
func equalChunks(got, want *chunk) bool {
	g, w := *got, *want
	g.choices, w.choices = normChoices(g.choices), normChoices(w.choices)
	if w.errMsg == rawJSON && json.Valid([]byte(g.errMsg)) {
		g.errMsg = rawJSON
	}
	return reflect.DeepEqual(g, w)
}

func normChoices(cs []choiceDelta) []choiceDelta {
	out := make([]choiceDelta, len(cs))
	for i, c := range cs {
		if len(c.toolCalls) == 0 {
			c.toolCalls = nil
		}
		out[i] = c
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func BenchmarkDecodeChunk(b *testing.B) {
	data := []byte(sampleChunk)
	b.Run("llm", func(b *testing.B) {
		var c chunk
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := c.decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the SDK's stream decoder did for every chunk.
	b.Run("openai-go", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var c openai.ChatCompletionChunk
			if err := json.Unmarshal(data, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
