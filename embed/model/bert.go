package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// bertEncoder is a BERT WordPiece encoder that gives, for the tokenizer.json
// files newBertEncoder accepts, exactly the ids github.com/sugarme/tokenizer
// gives (hugot tokenizes with sugarme, and the ort and hugot vectors must
// agree), in a single pass and without sugarme's per-text regexp compiles and
// offset bookkeeping.
//
// "Exactly" includes sugarme's departures from Hugging Face's tokenizers:
//
//   - strip_accents null means no accent stripping (HF follows lowercase);
//   - lowercasing is Go's per-rune unicode.ToLower ('İ' → 'i', 'ẞ' → 'ß');
//   - text is split on Go regexp's \s ([\t\n\f\r ]), so U+00A0, U+3000 and
//     the other Unicode spaces stay inside words;
//   - the Chinese-character ranges miss U+3400–U+4DBF (sugarme's range
//     table is unsorted, so unicode.Is never reaches that range);
//   - added special tokens are matched in the raw text pattern by pattern,
//     not leftmost first (see specialSpans).
//
// One departure it does not reproduce: when clean_text removes a character
// (a control or format character, U+FFFD), sugarme's alignment bookkeeping
// can duplicate part of the text or panic. encode reports such texts as not
// handled and the caller hands them to sugarme. And where sugarme panics
// on a text it would otherwise encode (one holding 'Ⱥ' or 'Ⱦ', whose
// lowercase is longer in UTF-8), encode gives the ids sugarme's pipeline
// means to give.
//
// A bertEncoder is immutable after construction and safe for concurrent use.
type bertEncoder struct {
	vocab    map[string]int32
	maxKey   int // the longest vocabulary entry, in bytes
	unk      int32
	cls, sep int32
	maxWord  int // max_input_chars_per_word: longer words are [UNK]
	// limit is the most content tokens truncation keeps (max_length less
	// [CLS] and [SEP]); -1 when the tokenizer does not truncate.
	limit int
	clean bool // BertNormalizer clean_text
	cjk   bool // BertNormalizer handle_chinese_chars
	lower bool // BertNormalizer lowercase
	// specials are the added special tokens in added_tokens order, which is
	// the order sugarme tries their patterns in.
	specials []bertSpecial
	ascii    [utf8.RuneSelf]byte // class of every ASCII byte under this normalizer
	scratch  sync.Pool           // *bertScratch
}

type bertSpecial struct {
	content string
	id      int32
}

// ASCII byte classes.
const (
	bertLetter  byte = iota // part of a word
	bertSpace               // splits words
	bertPunct               // a word of its own
	bertRemoved             // removed by clean_text: the text goes to sugarme
)

// bertScratch is one encode call's working memory, pooled.
type bertScratch struct {
	out   []int32
	word  []byte // "##" + the current word; see wordPiece
	spans []specialSpan
	keep  []specialSpan
}

// errNotBert: the tokenizer.json is outside what bertEncoder reproduces;
// the caller uses sugarme for every text.
var errNotBert = errors.New("model: tokenizer is not a plain BERT WordPiece tokenizer")

func notBert(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errNotBert}, args...)...)
}

// newBertEncoder builds an encoder from tokenizer.json data. It refuses,
// with an error wrapping errNotBert, anything it is not sure to encode as
// sugarme does: another normalizer, pre-tokenizer, model or post-processor,
// strip_accents true, added tokens that are not plain special tokens of the
// vocabulary, left truncation or padding, a stride, unknown fields.
func newBertEncoder(data []byte) (*bertEncoder, error) {
	top, err := jsonObject(data, "tokenizer.json", "version", "truncation", "padding", "added_tokens",
		"normalizer", "pre_tokenizer", "post_processor", "decoder", "model")
	if err != nil {
		return nil, err
	}
	b := &bertEncoder{}
	if err := b.parseModel(top["model"]); err != nil {
		return nil, err
	}
	if err := b.parseNormalizer(top["normalizer"]); err != nil {
		return nil, err
	}
	if err := parsePreTokenizer(top["pre_tokenizer"]); err != nil {
		return nil, err
	}
	if err := b.parseAddedTokens(top["added_tokens"]); err != nil {
		return nil, err
	}
	if err := b.parsePostProcessor(top["post_processor"]); err != nil {
		return nil, err
	}
	if err := b.parseTruncation(top["truncation"]); err != nil {
		return nil, err
	}
	if err := parsePadding(top["padding"]); err != nil {
		return nil, err
	}
	for c := range b.ascii {
		b.ascii[c] = b.asciiClass(rune(c))
	}
	b.scratch.New = func() any { return &bertScratch{word: make([]byte, 0, 64)} }
	return b, nil
}

// jsonObject decodes an object and refuses keys outside allowed.
func jsonObject(raw json.RawMessage, what string, allowed ...string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, notBert("%s is not an object", what)
	}
	for k := range obj {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			return nil, notBert("%s has unsupported field %q", what, k)
		}
	}
	return obj, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// jsonString decodes a string field; a missing or null field gives def.
func jsonString(obj map[string]json.RawMessage, key, def, what string) (string, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", notBert("%s.%s is not a string", what, key)
	}
	return s, nil
}

// jsonBool decodes a boolean field; missing or null is false, as in sugarme.
func jsonBool(obj map[string]json.RawMessage, key, what string) (bool, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return false, nil
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, notBert("%s.%s is not a boolean", what, key)
	}
	return v, nil
}

// jsonInt decodes a required integer field.
func jsonInt(obj map[string]json.RawMessage, key, what string) (int, error) {
	var v int
	if err := json.Unmarshal(obj[key], &v); err != nil || isNull(obj[key]) {
		return 0, notBert("%s.%s is not an integer", what, key)
	}
	return v, nil
}

func (b *bertEncoder) parseModel(raw json.RawMessage) error {
	m, err := jsonObject(raw, "model", "type", "unk_token", "continuing_subword_prefix", "max_input_chars_per_word", "vocab")
	if err != nil {
		return err
	}
	if typ, _ := jsonString(m, "type", "", "model"); typ != "WordPiece" {
		return notBert("model type %q", typ)
	}
	// sugarme never reads continuing_subword_prefix: it always uses "##".
	if p, err := jsonString(m, "continuing_subword_prefix", "##", "model"); err != nil || p != "##" {
		return notBert("continuing_subword_prefix %q", p)
	}
	unk, err := jsonString(m, "unk_token", "[UNK]", "model")
	if err != nil {
		return err
	}
	b.maxWord = 100
	if _, ok := m["max_input_chars_per_word"]; ok {
		if b.maxWord, err = jsonInt(m, "max_input_chars_per_word", "model"); err != nil {
			return err
		}
		if b.maxWord <= 0 {
			return notBert("max_input_chars_per_word %d", b.maxWord)
		}
	}
	var vocab map[string]int
	if err := json.Unmarshal(m["vocab"], &vocab); err != nil || len(vocab) == 0 {
		return notBert("model.vocab is not a map of token ids")
	}
	b.vocab = make(map[string]int32, len(vocab))
	for k, id := range vocab {
		if id < 0 || id > math.MaxInt32 {
			return notBert("vocabulary id %d", id)
		}
		b.vocab[k] = int32(id)
		b.maxKey = max(b.maxKey, len(k))
	}
	id, ok := b.vocab[unk]
	if !ok {
		return notBert("unk_token %q is not in the vocabulary", unk)
	}
	b.unk = id
	return nil
}

func (b *bertEncoder) parseNormalizer(raw json.RawMessage) error {
	n, err := jsonObject(raw, "normalizer", "type", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase")
	if err != nil {
		return err
	}
	if typ, _ := jsonString(n, "type", "", "normalizer"); typ != "BertNormalizer" {
		return notBert("normalizer type %q", typ)
	}
	// sugarme strips accents by dropping Mn marks through the same offset
	// bookkeeping that misbehaves on clean_text removals; not reproduced.
	if strip, err := jsonBool(n, "strip_accents", "normalizer"); err != nil || strip {
		return notBert("strip_accents is not false or null")
	}
	if b.clean, err = jsonBool(n, "clean_text", "normalizer"); err != nil {
		return err
	}
	if b.cjk, err = jsonBool(n, "handle_chinese_chars", "normalizer"); err != nil {
		return err
	}
	b.lower, err = jsonBool(n, "lowercase", "normalizer")
	return err
}

func parsePreTokenizer(raw json.RawMessage) error {
	p, err := jsonObject(raw, "pre_tokenizer", "type")
	if err != nil {
		return err
	}
	if typ, _ := jsonString(p, "type", "", "pre_tokenizer"); typ != "BertPreTokenizer" {
		return notBert("pre_tokenizer type %q", typ)
	}
	return nil
}

// parseAddedTokens accepts only special tokens matched verbatim (not
// normalized, no single_word/lstrip/rstrip) whose content is in the
// vocabulary under the same id: sugarme takes a special token's id from the
// vocabulary, and anything else changes how the text is split.
func (b *bertEncoder) parseAddedTokens(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return notBert("added_tokens is not a list")
	}
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		what := fmt.Sprintf("added_tokens[%d]", i)
		t, err := jsonObject(item, what, "id", "content", "single_word", "lstrip", "rstrip", "normalized", "special")
		if err != nil {
			return err
		}
		id, err := jsonInt(t, "id", what)
		if err != nil {
			return err
		}
		content, err := jsonString(t, "content", "", what)
		if err != nil {
			return err
		}
		if content == "" || !utf8.ValidString(content) || seen[content] {
			return notBert("%s: empty, invalid or repeated content %q", what, content)
		}
		seen[content] = true
		for _, flag := range []string{"special", "normalized", "single_word", "lstrip", "rstrip"} {
			v, err := jsonBool(t, flag, what)
			if err != nil {
				return err
			}
			if v != (flag == "special") {
				return notBert("%s %q: %s is %t", what, content, flag, v)
			}
		}
		if vid, ok := b.vocab[content]; !ok || int(vid) != id {
			return notBert("%s %q: id %d is not its vocabulary id", what, content, id)
		}
		b.specials = append(b.specials, bertSpecial{content: content, id: int32(id)})
	}
	return nil
}

// parsePostProcessor accepts [CLS] $A [SEP] with type id 0, as
// TemplateProcessing or BertProcessing, each special token a single
// vocabulary id.
func (b *bertEncoder) parsePostProcessor(raw json.RawMessage) error {
	p, err := jsonObject(raw, "post_processor", "type", "single", "pair", "special_tokens", "sep", "cls")
	if err != nil {
		return err
	}
	typ, _ := jsonString(p, "type", "", "post_processor")
	var clsTok, sepTok string
	var clsID, sepID int
	switch typ {
	case "BertProcessing":
		var sep, cls [2]any
		if json.Unmarshal(p["sep"], &sep) != nil || json.Unmarshal(p["cls"], &cls) != nil {
			return notBert("BertProcessing without sep and cls")
		}
		var ok1, ok2, ok3, ok4 bool
		var sepF, clsF float64
		sepTok, ok1 = sep[0].(string)
		sepF, ok2 = sep[1].(float64)
		clsTok, ok3 = cls[0].(string)
		clsF, ok4 = cls[1].(float64)
		if !ok1 || !ok2 || !ok3 || !ok4 || sepF != math.Trunc(sepF) || clsF != math.Trunc(clsF) {
			return notBert("BertProcessing sep or cls is not [token, id]")
		}
		sepID, clsID = int(sepF), int(clsF)
	case "TemplateProcessing":
		type piece struct {
			SpecialToken *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			}
			Sequence *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			}
		}
		var single []piece
		if json.Unmarshal(p["single"], &single) != nil || len(single) != 3 ||
			single[0].SpecialToken == nil || single[0].Sequence != nil || single[0].SpecialToken.TypeID != 0 ||
			single[1].Sequence == nil || single[1].SpecialToken != nil || single[1].Sequence.ID != "A" || single[1].Sequence.TypeID != 0 ||
			single[2].SpecialToken == nil || single[2].Sequence != nil || single[2].SpecialToken.TypeID != 0 {
			return notBert("TemplateProcessing single is not [special] $A [special] with type id 0")
		}
		var specials map[string]struct {
			ID     string   `json:"id"`
			IDs    []int    `json:"ids"`
			Tokens []string `json:"tokens"`
		}
		if json.Unmarshal(p["special_tokens"], &specials) != nil {
			return notBert("TemplateProcessing special_tokens")
		}
		one := func(name string) (string, int, error) {
			s, ok := specials[name]
			if !ok || s.ID != name || len(s.IDs) != 1 || len(s.Tokens) != 1 {
				return "", 0, notBert("TemplateProcessing special token %q is not one id", name)
			}
			return s.Tokens[0], s.IDs[0], nil
		}
		if clsTok, clsID, err = one(single[0].SpecialToken.ID); err != nil {
			return err
		}
		if sepTok, sepID, err = one(single[2].SpecialToken.ID); err != nil {
			return err
		}
	default:
		return notBert("post_processor type %q", typ)
	}
	for _, t := range []struct {
		tok string
		id  int
	}{{clsTok, clsID}, {sepTok, sepID}} {
		if vid, ok := b.vocab[t.tok]; !ok || int(vid) != t.id {
			return notBert("post_processor token %q: id %d is not its vocabulary id", t.tok, t.id)
		}
	}
	b.cls, b.sep = int32(clsID), int32(sepID)
	return nil
}

func (b *bertEncoder) parseTruncation(raw json.RawMessage) error {
	b.limit = -1
	if isNull(raw) {
		return nil
	}
	t, err := jsonObject(raw, "truncation", "direction", "max_length", "strategy", "stride")
	if err != nil {
		return err
	}
	// sugarme ignores direction and always cuts on the right.
	if d, err := jsonString(t, "direction", "Right", "truncation"); err != nil || d != "Right" {
		return notBert("truncation direction %q", d)
	}
	if s, err := jsonString(t, "strategy", "", "truncation"); err != nil || s != "LongestFirst" {
		return notBert("truncation strategy %q", s)
	}
	if stride, err := jsonInt(t, "stride", "truncation"); err != nil || stride != 0 {
		return notBert("truncation stride is not 0")
	}
	maxLen, err := jsonInt(t, "max_length", "truncation")
	if err != nil {
		return err
	}
	// Two fewer for [CLS] and [SEP]; sugarme stops truncating at all when
	// that leaves nothing.
	if maxLen < 3 {
		return notBert("truncation max_length %d", maxLen)
	}
	b.limit = maxLen - 2
	return nil
}

// parsePadding accepts any right padding: encode cuts at the attention mask,
// which drops right padding whatever its length.
func parsePadding(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	p, err := jsonObject(raw, "padding", "strategy", "direction", "pad_to_multiple_of", "pad_id", "pad_type_id", "pad_token")
	if err != nil {
		return err
	}
	if d, err := jsonString(p, "direction", "Right", "padding"); err != nil || (d != "Right" && d != "right") {
		return notBert("padding direction %q", d)
	}
	return nil
}

func (b *bertEncoder) asciiClass(r rune) byte {
	switch {
	case b.clean && isBertControl(r):
		return bertRemoved
	case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f':
		return bertSpace
	case isBertPunct(r):
		return bertPunct
	}
	return bertLetter
}

// isBertControl reports whether clean_text removes r (sugarme also removes
// U+FFFD; see bertRemovedRune).
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

func bertRemovedRune(r rune) bool { return r == 0 || r == utf8.RuneError || isBertControl(r) }

// isBertPunct is BERT's punctuation: every non-alphanumeric printable ASCII
// character, and Unicode category P.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126
	}
	return unicode.Is(unicode.P, r)
}

// isBertChinese is the CJK test sugarme actually applies: BERT's ranges
// without U+3400–U+4DBF.
func isBertChinese(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0xF900 && r <= 0xFAFF:
		return true
	case r >= 0x20000 && r <= 0x2A6DF, r >= 0x2A700 && r <= 0x2CEAF, r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// specialSpan is one occurrence of an added special token in the text.
type specialSpan struct {
	pattern    int // index in bertEncoder.specials
	start, end int
}

type spansByStart []specialSpan

func (s spansByStart) Len() int           { return len(s) }
func (s spansByStart) Less(i, j int) bool { return s[i].start < s[j].start }
func (s spansByStart) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }

type spansByPattern []specialSpan

func (s spansByPattern) Len() int           { return len(s) }
func (s spansByPattern) Less(i, j int) bool { return s[i].pattern < s[j].pattern }
func (s spansByPattern) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }

// specialSpans returns the special tokens sugarme extracts from text, in
// text order, in keep. sugarme collects every occurrence of every pattern,
// sorts them by start and then (sort.Sort, not stable) by pattern, and keeps
// an occurrence only if it starts after the end of the last one kept. So
// "[SEP] x [CLS]" keeps only [CLS] (pattern [CLS] comes first in
// added_tokens) and "[SEP]" is encoded as text. The same two sort.Sort calls
// on the same sequence reproduce its order even where the sort is unstable.
func (b *bertEncoder) specialSpans(text string, s *bertScratch) []specialSpan {
	s.spans, s.keep = s.spans[:0], s.keep[:0]
	for p, sp := range b.specials {
		for off := 0; ; {
			i := strings.Index(text[off:], sp.content)
			if i < 0 {
				break
			}
			off += i + len(sp.content)
			s.spans = append(s.spans, specialSpan{pattern: p, start: off - len(sp.content), end: off})
		}
	}
	if len(s.spans) == 0 {
		return s.keep
	}
	sort.Sort(spansByStart(s.spans))
	sort.Sort(spansByPattern(s.spans))
	end := 0
	for _, sp := range s.spans {
		if sp.start >= end {
			s.keep = append(s.keep, sp)
			end = sp.end
		}
	}
	// Each kept span starts after the previous one ends: already in text
	// order.
	return s.keep
}

// encode tokenizes text as sugarme's EncodeSingle(text, true) does, cut at
// the attention mask and at maxTokens. ok is false when the text holds a
// character clean_text removes, or is not valid UTF-8: those texts must go
// to sugarme.
func (b *bertEncoder) encode(text string, maxTokens int) (e encoded, ok bool) {
	s := b.scratch.Get().(*bertScratch)
	defer b.scratch.Put(s)
	// Content tokens worth producing: truncation keeps limit, the cap
	// keeps fewer than maxTokens.
	want := max(maxTokens, 0)
	if b.limit >= 0 {
		want = min(want, b.limit)
	}
	s.out = s.out[:0]
	pos := 0
	for _, sp := range b.specialSpans(text, s) {
		if len(s.out) >= want {
			break
		}
		if pos, ok = b.segment(text, pos, sp.start, s, want); !ok {
			return encoded{}, false
		}
		if pos < sp.start {
			break // full
		}
		s.out = append(s.out, b.specials[sp.pattern].id)
		pos = sp.end
	}
	if len(s.out) < want {
		if pos, ok = b.segment(text, pos, len(text), s, want); !ok {
			return encoded{}, false
		}
	}
	// The tokens not produced can still change sugarme's result: look for
	// the characters that send a text to sugarme in the rest.
	if !b.plain(text[pos:]) {
		return encoded{}, false
	}
	n := min(len(s.out), want)
	total := min(n+2, max(maxTokens, 0))
	buf := make([]int64, 2*total)
	e = encoded{ids: buf[:total:total], types: buf[total:]}
	for i := range total {
		switch {
		case i == 0:
			e.ids[i] = int64(b.cls)
		case i <= n:
			e.ids[i] = int64(s.out[i-1])
		default:
			e.ids[i] = int64(b.sep)
		}
	}
	return e, true
}

// plain reports whether text holds nothing that encode leaves to sugarme.
func (b *bertEncoder) plain(text string) bool {
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if b.ascii[c] == bertRemoved {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if (r == utf8.RuneError && size == 1) || (b.clean && bertRemovedRune(r)) {
			return false
		}
		i += size
	}
	return true
}

// segment normalizes, splits and word-pieces text[from:to], a stretch
// between special tokens, appending ids to s.out until it holds want. It
// returns where it stopped (to when it finished), and false when the text
// must go to sugarme.
func (b *bertEncoder) segment(text string, from, to int, s *bertScratch, want int) (int, bool) {
	s.word = append(s.word[:0], '#', '#')
	runes := 0
	flush := func() {
		if runes > 0 {
			s.out = b.wordPiece(s.word, runes, s.out)
		}
		s.word, runes = s.word[:2], 0
	}
	i := from
	for i < to && len(s.out) < want {
		c := text[i]
		if c < utf8.RuneSelf {
			switch b.ascii[c] {
			case bertRemoved:
				return i, false
			case bertSpace:
				flush()
			case bertPunct:
				flush()
				s.word, runes = append(s.word, c), 1
				flush()
			default:
				if b.lower && 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				s.word, runes = b.appendWord(s.word, runes, rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:to])
		if (r == utf8.RuneError && size == 1) || (b.clean && bertRemovedRune(r)) {
			return i, false
		}
		i += size
		switch {
		case b.cjk && isBertChinese(r):
			// handle_chinese_chars puts spaces around it; lowercasing
			// leaves it alone.
			flush()
			s.word, runes = utf8.AppendRune(s.word, r), 1
			flush()
			continue
		case b.lower:
			r = unicode.ToLower(r)
		}
		if isBertPunct(r) {
			flush()
			s.word, runes = utf8.AppendRune(s.word, r), 1
			flush()
			continue
		}
		s.word, runes = b.appendWord(s.word, runes, r)
	}
	flush()
	return i, true
}

// appendWord adds r to the word, but only counts it once the word is too
// long to be anything but [UNK].
func (b *bertEncoder) appendWord(word []byte, runes int, r rune) ([]byte, int) {
	if runes <= b.maxWord {
		word = utf8.AppendRune(word, r)
	}
	return word, runes + 1
}

// wordPiece appends the ids of one word, buf being "##" + the word:
// greedy longest match first, "##" before every piece but the first, and
// the whole word [UNK] when it is too long or a piece is not in the
// vocabulary. It overwrites the two bytes before each piece with "##", so
// that every candidate is one contiguous slice of buf and a map lookup that
// does not allocate; those bytes belong to pieces already matched.
func (b *bertEncoder) wordPiece(buf []byte, runes int, out []int32) []int32 {
	if runes > b.maxWord {
		return append(out, b.unk)
	}
	word := buf[2:]
	mark := len(out)
	for start := 0; start < len(word); {
		keyStart := 2
		if start > 0 {
			keyStart = start
			buf[start], buf[start+1] = '#', '#'
		}
		// Candidates longer than the longest vocabulary entry cannot match.
		end := min(len(word), b.maxKey+keyStart-2)
		for end > start && end < len(word) && !utf8.RuneStart(word[end]) {
			end--
		}
		found := false
		for end > start {
			if id, ok := b.vocab[string(buf[keyStart:2+end])]; ok {
				out = append(out, id)
				found = true
				break
			}
			end--
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		if !found {
			return append(out[:mark], b.unk)
		}
		start = end
	}
	return out
}
