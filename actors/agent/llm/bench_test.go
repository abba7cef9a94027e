package llm

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// replyBody is a reply as the load harness streams it: a role chunk, 40
// content chunks of 4 characters, the finish chunk, usage and [DONE].
func replyBody() []byte {
	var b strings.Builder
	head := `data: {"id":"chatcmpl-fake000001","object":"chat.completion.chunk","created":1764120000,"model":"m",` +
		`"system_fingerprint":"fp_llmtest","choices":[{"index":0,"delta":`
	b.WriteString(head + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")
	for i := range 40 {
		b.WriteString(head + `{"content":"w` + strconv.Itoa(i%10) + `x "},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")
	}
	b.WriteString(head + `{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-fake000001","object":"chat.completion.chunk","created":1764120000,"model":"m",` +
		`"choices":[],"usage":{"prompt_tokens":900,"completion_tokens":40,"total_tokens":940}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkReadStream reads one whole reply: this package's decoder
// against what Stream did before (openai-go's SSE decoder and
// ChatCompletionAccumulator).
func BenchmarkReadStream(b *testing.B) {
	body := replyBody()
	b.Run("llm", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var p completion
			out := readStream(bytes.NewReader(body), &p, func() {}, func() {}, func(string) {})
			if out.err != nil || p.finish != "stop" || p.content.Len() != 160 {
				b.Fatalf("outcome %+v, finish %q", out, p.finish)
			}
		}
	})
	b.Run("openai-go", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}},
				Body: io.NopCloser(bytes.NewReader(body))}
			s := ssestream.NewStream[openai.ChatCompletionChunk](ssestream.NewDecoder(res), nil)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if s.Err() != nil || acc.Choices[0].FinishReason != "stop" {
				b.Fatal(s.Err())
			}
		}
	})
}
