package model

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// wordpiece tokenizes for the ort backend with the ids hugot gets from the
// pure-Go Hugging Face tokenizer (github.com/sugarme/tokenizer), so both
// backends see identical ids. When tokenizer.json is a plain BERT WordPiece
// tokenizer, bertEncoder reproduces sugarme's ids about two orders of
// magnitude faster and encodes every text it can; sugarme encodes the rest
// (texts with characters clean_text removes) and everything for any other
// tokenizer.json.
type wordpiece struct {
	fast *bertEncoder // nil: the tokenizer.json is not one bertEncoder reproduces
	// notFast says why fast is nil.
	notFast   error
	mu        sync.Mutex // sugarme's tokenizer keeps internal state; one encode at a time
	tk        *tokenizer.Tokenizer
	maxTokens int
}

func newWordpiece(path string, maxTokens int) (*wordpiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", path, err)
	}
	tk, err := pretrained.FromReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", path, err)
	}
	w := &wordpiece{tk: tk, maxTokens: maxTokens}
	w.fast, w.notFast = newBertEncoder(data)
	return w, nil
}

// encoded is one text's model input, cut at its attention mask.
type encoded struct {
	ids, types []int64
}

// encode tokenizes text with special tokens, drops the tokenizer's padding
// (everything after the last attended position) and caps the length.
func (w *wordpiece) encode(text string) (encoded, error) {
	if w.fast != nil {
		if e, ok := w.fast.encode(text, w.maxTokens); ok {
			return e, nil
		}
	}
	return w.encodeSugarme(text)
}

// encodeSugarme is encode through sugarme. sugarme panics on some texts
// (e.g. "Ⱥ", whose lowercase is longer in UTF-8); that becomes an error.
func (w *wordpiece) encodeSugarme(text string) (e encoded, err error) {
	enc, err := func() (enc *tokenizer.Encoding, err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("tokenizer panicked: %v", p)
			}
		}()
		return w.tk.EncodeSingle(text, true)
	}()
	if err != nil {
		return encoded{}, fmt.Errorf("model: tokenize: %w", err)
	}
	n := 0
	for i, m := range enc.AttentionMask {
		if m != 0 {
			n = i + 1
		}
	}
	if len(enc.AttentionMask) == 0 {
		n = len(enc.Ids)
	}
	n = min(n, w.maxTokens, len(enc.Ids))
	e = encoded{ids: make([]int64, n), types: make([]int64, n)}
	for i := 0; i < n; i++ {
		e.ids[i] = int64(enc.Ids[i])
		if i < len(enc.TypeIds) {
			e.types[i] = int64(enc.TypeIds[i])
		}
	}
	return e, nil
}
