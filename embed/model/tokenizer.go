package model

import (
	"fmt"
	"sync"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// wordpiece wraps the pure-Go Hugging Face tokenizer hugot also uses, so
// both backends see identical ids.
type wordpiece struct {
	mu        sync.Mutex // the tokenizer keeps internal state; one encode at a time
	tk        *tokenizer.Tokenizer
	maxTokens int
}

func newWordpiece(path string, maxTokens int) (*wordpiece, error) {
	tk, err := pretrained.FromFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: load %s: %w", path, err)
	}
	return &wordpiece{tk: tk, maxTokens: maxTokens}, nil
}

// encoded is one text's model input, cut at its attention mask.
type encoded struct {
	ids, types []int64
}

// encode tokenizes text with special tokens, drops the tokenizer's padding
// (everything after the last attended position) and caps the length.
func (w *wordpiece) encode(text string) (encoded, error) {
	w.mu.Lock()
	enc, err := w.tk.EncodeSingle(text, true)
	w.mu.Unlock()
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
	e := encoded{ids: make([]int64, n), types: make([]int64, n)}
	for i := 0; i < n; i++ {
		e.ids[i] = int64(enc.Ids[i])
		if i < len(enc.TypeIds) {
			e.types[i] = int64(enc.TypeIds[i])
		}
	}
	return e, nil
}
