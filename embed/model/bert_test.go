package model

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/embed/testmodel"
	"github.com/sugarme/tokenizer/normalizer"
)

// testTokenizerJSON is the test model's tokenizer.json: the real
// all-MiniLM-L6-v2 tokenizer.
func testTokenizerJSON(tb testing.TB) (path string, maxTokens int) {
	tb.Helper()
	files, err := Inspect(testmodel.TestDir(tb), "")
	if err != nil {
		tb.Fatal(err)
	}
	return files.Tokenizer, files.MaxTokens
}

// bertWordpiece opens a wordpiece on path and fails unless bertEncoder
// accepted the file.
func bertWordpiece(tb testing.TB, path string, maxTokens int) *wordpiece {
	tb.Helper()
	w, err := newWordpiece(path, maxTokens)
	if err != nil {
		tb.Fatal(err)
	}
	if w.fast == nil {
		tb.Fatalf("%s: bertEncoder refused: %v", path, w.notFast)
	}
	return w
}

// bertCheck encodes text with both tokenizers and reports a difference.
// handled is false when bertEncoder left the text to sugarme; sugarmeFailed
// when sugarme panicked, which leaves nothing to compare.
func bertCheck(tb testing.TB, w *wordpiece, text string) (handled, sugarmeFailed bool) {
	tb.Helper()
	got, ok := w.fast.encode(text, w.maxTokens)
	if !ok {
		if w.fast.plain(text) {
			tb.Errorf("bertEncoder refused %q, which has nothing it leaves to sugarme", text)
		}
		return false, false
	}
	want, err := w.encodeSugarme(text)
	if err != nil {
		return true, true
	}
	if !slices.Equal(got.ids, want.ids) || !slices.Equal(got.types, want.types) {
		tb.Errorf("%+q:\n bert    %v %v\n sugarme %v %v", text, got.ids, got.types, want.ids, want.types)
	}
	return true, false
}

// runbookLines are the non-empty lines of the knowledge-base runbooks.
func runbookLines(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob("../../testdata/kb/runbooks/*.md")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no runbooks: %v", err)
	}
	var lines []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// runbookChunks are benchmark-like texts: consecutive runbook lines joined
// until they reach 30–60 words: about 95 tokens on average, close to the
// 89 of the texts in docs/benchmarks.md.
func runbookChunks(tb testing.TB) []string {
	lines := runbookLines(tb)
	var chunks []string
	for start := 0; start < len(lines); start += 7 {
		target := 30 + len(chunks)%31
		var b strings.Builder
		for i := start; i < len(lines) && len(strings.Fields(b.String())) < target; i++ {
			b.WriteString(lines[i])
			b.WriteByte('\n')
		}
		chunks = append(chunks, b.String())
	}
	return chunks
}

// bertEdgeTexts are the cases sugarme handles in its own way.
func bertEdgeTexts() []string {
	words := strings.Fields(strings.Repeat("kubelet reports PLEG is not healthy; pods stuck in ContainerCreating, see /var/log/syslog. ", 200))
	long := strings.Join(words[:2000], " ")
	// Many special tokens in no order: sugarme's unstable sort decides
	// which it keeps.
	r := rand.New(rand.NewPCG(7, 7))
	var specials strings.Builder
	for range 120 {
		specials.WriteString([]string{"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "x", " ", "[", "]"}[r.IntN(9)])
	}
	return []string{
		"Hello, World! café naïve Ångström résumé",
		"İstanbul İ x İİİİ, x.y z", "straße STRASSE ẞ ǅ ΣΑΣ ς", "K Ω Å ı ſ ꝺ",
		"e\u0301 \u0301x a\u0301\u0302b \u0301", "ＡＢＣ１２３ ｶﾀｶﾅ ＠＃",
		"中文abc 日本語のテキスト 한국어 텍스트", "a\u3400b a\u4dbfb a\u9fffb a\uf900b a\U00020000b a\U0002b820b a\U0002b91fb a\U0002f800b a\U0002fa20b",
		"😀 a😀b 👍🏽 🇺🇸", "Привет, мир! مرحبا بالعالم नमस्ते ไทย",
		"a\u00a0b c\u3000d e\u2003f g\u2028h i\u0085j", "\t\n\r x \r\n y",
		"¡¿«»—…、。「」؟‽†‰€£©®™°±×÷",
		"[CLS] hi [SEP] [UNK] [MASK] [PAD]", "[SEP] a [CLS]", "[CLS][CLS][CLS]", "[cls] [Cls] [CLS", "CLS] [[CLS]]",
		"x [PAD]", "[MASK] and [UNK] then [SEP]",
		strings.Repeat("[SEP] [CLS] ", 30), strings.Repeat("[CLS] x [SEP] ", 10) + "[PAD]",
		"[CLS] " + long + " [PAD]", specials.String(),
		strings.Repeat("a", 100), strings.Repeat("a", 101), strings.Repeat("é", 100), strings.Repeat("é", 101),
		strings.Repeat("中", 300), "supercalifragilisticexpialidocious antidisestablishmentarianism",
		"http://example.com/a/b?c=d&e=f#g https://10.0.0.1:8443/healthz",
		"0xDEADBEEF 0x7ffd5a3c 1e-9 3.14159 -42 +7 1,000,000",
		"2026-11-26T01:00:00.123Z ERROR [main] c.f.Service: failed (code=503) {\"k\":\"v\"}",
		"C:\\Windows\\System32 ~/.ssh/id_rsa $HOME ${PATH} `cmd` a|b a^b a<b>c a=b",
		"don't can't won't it's O'Reilly", "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
		"Ⱥ", "aȺ b", "ȺȺȺ. x y  ", "Ⱦ x", "Ⱥ x  ",
		"ⱢⱤⱭⱮⱯⱰⱾⱿ ꞍꞪꞫꞬꞭꞮꞰꞱꞲꞴ Ꟶ Ʂ", "xⱢy ẞẞ KK ΩΩ ÅÅ İx",
		long, strings.Repeat("x ", 3000),
		"", " ", ".", "[", "##", "## ##s", "[UNK]",
	}
}

// bertFallbackTexts hold characters clean_text removes: sugarme encodes them.
func bertFallbackTexts() []string {
	return []string{
		"\u200b中 x", "hello world\u200b", "\u200b\u200bhello there\u200b\u200b friend\u200b",
		"\x1b[31mERROR\x1b[0m disk full", "soft\u00adhyphen", "\ufeffBOM", "x\ufffdy", "a\x7fb",
		"form\ffeed", "vertical\vtab", "👨\u200d👩\u200d👧", "bad \xff utf8", "x [CLS] y\u200b",
	}
}

func TestBertMatchesSugarme(t *testing.T) {
	path, maxTokens := testTokenizerJSON(t)
	w := bertWordpiece(t, path, maxTokens)
	texts := append(runbookLines(t), runbookChunks(t)...)
	texts = append(texts, parityTexts()...)
	texts = append(texts, bertEdgeTexts()...)
	var handled, failed int
	for _, text := range texts {
		h, f := bertCheck(t, w, prepare(text, maxTokens))
		handled += b2i(h)
		failed += b2i(f)
	}
	t.Logf("%d texts: %d by bertEncoder, %d of those sugarme panics on", len(texts), handled, failed)
	if handled < len(texts)-2 { // two have invalid UTF-8 or NUL
		t.Errorf("bertEncoder handled only %d of %d texts", handled, len(texts))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestBertLeavesRemovedCharactersToSugarme(t *testing.T) {
	path, maxTokens := testTokenizerJSON(t)
	w := bertWordpiece(t, path, maxTokens)
	for _, text := range bertFallbackTexts() {
		if _, ok := w.fast.encode(text, maxTokens); ok {
			t.Errorf("bertEncoder encoded %+q, which clean_text changes", text)
		}
		// wordpiece still encodes it, through sugarme (or says sugarme failed).
		if e, err := w.encode(text); err == nil && (len(e.ids) < 2 || e.ids[0] != 101) {
			t.Errorf("encode(%+q) = %v", text, e.ids)
		}
	}
	// A character to remove past the truncation point still decides.
	long := strings.Repeat("word ", 400)
	if _, ok := w.fast.encode(long+"\u200b", maxTokens); ok {
		t.Error("a removed character after the truncation point went unnoticed")
	}
	if _, ok := w.fast.encode(long, maxTokens); !ok {
		t.Error("a long plain text went to sugarme")
	}
}

// bertPieces are the fragments random texts are made of.
var bertPieces = []string{
	"error", "Error", "ERROR", "kubectl", "Kubernetes", "OOMKilled", "pod-7f9c", "192.168.1.10", "0xDEADBEEF",
	"/var/log/syslog", "http://example.com/a?b=c&d=e", "don't", "C++", "foo_bar", "CamelCase", "a", "I", "42",
	"the", "there", "he", "hello", "##s", "##", "s",
	" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003",
	".", ",", ":", ";", "!", "?", "-", "_", "(", ")", "[", "]", "{", "}", "<", ">", "=", "+", "*", "&", "%", "$", "#", "@",
	"~", "^", "`", "|", "\\", "/", "'", "\"",
	"¡", "¿", "«", "»", "—", "…", "、", "。", "「", "」", "؟", "‽", "†", "€", "©", "×",
	"café", "naïve", "Ångström", "e\u0301", "\u0301", "\u0308", "ñ", "Ø", "ß", "ẞ", "İ", "ı", "K", "Ω", "Å", "ǅ", "ΣΑΣ", "ς",
	"中文", "日本語", "한국어", "\u3400", "\u4dbf", "\u9fff", "\uf900", "\U00020000", "\U0002b820", "\U0002b91f", "\U0002f800",
	"ｶﾀｶﾅ", "ＡＢＣ", "１２３", "😀", "👍🏽", "🇺🇸", "Привет", "مرحبا", "नमस्ते", "ไทย",
	"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "CLS", "SEP", "[cls]",
	"ⱥ", "Ɫ", "Ɐ", "Ʞ", "Ɬ", "Ʂ",
	"supercalifragilisticexpialidocious", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
}

// bertRarePieces send a text to sugarme or make it panic; random texts
// hold them rarely.
// Ⱥ and Ⱦ, whose lowercase is longer, make sugarme panic.
var bertRarePieces = []string{"Ⱥ", "Ⱦ", "\u200b", "\u00ad", "\ufeff", "\x1b", "\ufffd", "\x7f", "\f", "\v", "\u200d", "\x00"}

func randomBertText(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(40); n >= 0; n-- {
		if r.IntN(50) == 0 {
			b.WriteString(bertRarePieces[r.IntN(len(bertRarePieces))])
			continue
		}
		b.WriteString(bertPieces[r.IntN(len(bertPieces))])
	}
	return b.String()
}

func TestBertMatchesSugarmeOnRandomTexts(t *testing.T) {
	path, maxTokens := testTokenizerJSON(t)
	w := bertWordpiece(t, path, maxTokens)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	n := 3000
	if testing.Short() {
		n = 300
	}
	var handled, failed int
	for i := 0; i < n && !t.Failed(); i++ {
		h, f := bertCheck(t, w, prepare(randomBertText(r), maxTokens))
		handled += b2i(h)
		failed += b2i(f)
	}
	t.Logf("%d random texts: %d by bertEncoder, %d of those sugarme panics on", n, handled, failed)
}

// tokenizerVariant writes the test tokenizer.json changed by edit.
func tokenizerVariant(tb testing.TB, edit func(tk map[string]any)) string {
	tb.Helper()
	path, _ := testTokenizerJSON(tb)
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var tk map[string]any
	if err := json.Unmarshal(data, &tk); err != nil {
		tb.Fatal(err)
	}
	edit(tk)
	if data, err = json.Marshal(tk); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "tokenizer.json")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return out
}

func obj(v any) map[string]any { return v.(map[string]any) }

func addedToken(content string, id int) map[string]any {
	return map[string]any{"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
		"normalized": false, "special": true}
}

// TestBertVariantsMatchSugarme: every tokenizer.json variant bertEncoder
// accepts encodes as sugarme does.
func TestBertVariantsMatchSugarme(t *testing.T) {
	variants := []struct {
		name      string
		maxTokens int
		edit      func(tk map[string]any)
	}{
		{"cased", 128, func(tk map[string]any) { obj(tk["normalizer"])["lowercase"] = false }},
		{"no chinese", 128, func(tk map[string]any) { obj(tk["normalizer"])["handle_chinese_chars"] = false }},
		{"no clean", 128, func(tk map[string]any) { obj(tk["normalizer"])["clean_text"] = false }},
		{"all off", 128, func(tk map[string]any) {
			tk["normalizer"] = map[string]any{"type": "BertNormalizer", "strip_accents": false}
		}},
		{"BertProcessing", 128, func(tk map[string]any) {
			tk["post_processor"] = map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 102}, "cls": []any{"[CLS]", 101}}
		}},
		{"short", 128, func(tk map[string]any) {
			obj(tk["truncation"])["max_length"] = 16
			obj(tk["model"])["max_input_chars_per_word"] = 5
		}},
		{"no truncation or padding", 40, func(tk map[string]any) { tk["truncation"], tk["padding"] = nil, nil }},
		{"no added tokens", 128, func(tk map[string]any) { tk["added_tokens"] = []any{} }},
		{"overlapping specials", 128, func(tk map[string]any) {
			tk["added_tokens"] = []any{addedToken("[SEP]", 102), addedToken("there", 2045), addedToken("he", 2002),
				addedToken("the", 1996), addedToken("[CLS]", 101), addedToken("##s", 2015), addedToken("s", 1055),
				addedToken("a", 1037)}
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			w := bertWordpiece(t, tokenizerVariant(t, v.edit), v.maxTokens)
			seed := uint64(time.Now().UnixNano())
			r := rand.New(rand.NewPCG(seed, 2))
			texts := append(bertEdgeTexts(), runbookChunks(t)...)
			for range 500 {
				texts = append(texts, randomBertText(r))
			}
			for _, text := range texts {
				bertCheck(t, w, prepare(text, w.maxTokens))
				if t.Failed() {
					t.Fatalf("seed %d", seed)
				}
			}
			// Without clean_text, sugarme keeps control characters and
			// bertEncoder encodes them too.
			if v.name == "no clean" {
				for _, text := range bertFallbackTexts() {
					if utf8.ValidString(text) {
						bertCheck(t, w, text)
					}
				}
			}
		})
	}
}

// TestBertRefuses: the constructor refuses what it does not reproduce.
func TestBertRefuses(t *testing.T) {
	edits := map[string]func(tk map[string]any){
		"normalizer Sequence": func(tk map[string]any) {
			tk["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{tk["normalizer"]}}
		},
		"no normalizer":    func(tk map[string]any) { tk["normalizer"] = nil },
		"strip accents":    func(tk map[string]any) { obj(tk["normalizer"])["strip_accents"] = true },
		"normalizer field": func(tk map[string]any) { obj(tk["normalizer"])["extra"] = true },
		"lowercase string": func(tk map[string]any) { obj(tk["normalizer"])["lowercase"] = "yes" },
		"pre_tokenizer Whitespace": func(tk map[string]any) {
			tk["pre_tokenizer"] = map[string]any{"type": "Whitespace"}
		},
		"pre_tokenizer Sequence": func(tk map[string]any) {
			tk["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{tk["pre_tokenizer"]}}
		},
		"model BPE":         func(tk map[string]any) { obj(tk["model"])["type"] = "BPE" },
		"prefix @@":         func(tk map[string]any) { obj(tk["model"])["continuing_subword_prefix"] = "@@" },
		"unk not in vocab":  func(tk map[string]any) { obj(tk["model"])["unk_token"] = "<unk>" },
		"max chars 0":       func(tk map[string]any) { obj(tk["model"])["max_input_chars_per_word"] = 0 },
		"model field":       func(tk map[string]any) { obj(tk["model"])["dropout"] = 0.1 },
		"non-special added": func(tk map[string]any) { obj(tk["added_tokens"].([]any)[0])["special"] = false },
		"normalized added":  func(tk map[string]any) { obj(tk["added_tokens"].([]any)[0])["normalized"] = true },
		"lstrip added":      func(tk map[string]any) { obj(tk["added_tokens"].([]any)[1])["lstrip"] = true },
		"single word added": func(tk map[string]any) { obj(tk["added_tokens"].([]any)[2])["single_word"] = true },
		"added not in vocab": func(tk map[string]any) {
			tk["added_tokens"] = append(tk["added_tokens"].([]any), addedToken("<new>", 30522))
		},
		"added id mismatch": func(tk map[string]any) { obj(tk["added_tokens"].([]any)[0])["id"] = 5 },
		"added twice": func(tk map[string]any) {
			tk["added_tokens"] = append(tk["added_tokens"].([]any), addedToken("[CLS]", 101))
		},
		"RobertaProcessing": func(tk map[string]any) { obj(tk["post_processor"])["type"] = "RobertaProcessing" },
		"no post_processor": func(tk map[string]any) { tk["post_processor"] = nil },
		"template type id 1": func(tk map[string]any) {
			obj(obj(obj(tk["post_processor"])["single"].([]any)[1])["Sequence"])["type_id"] = 1
		},
		"template without [SEP]": func(tk map[string]any) {
			p := obj(tk["post_processor"])
			p["single"] = p["single"].([]any)[:2]
		},
		"template two ids": func(tk map[string]any) {
			obj(obj(obj(tk["post_processor"])["special_tokens"])["[CLS]"])["ids"] = []any{101, 101}
		},
		"BertProcessing wrong id": func(tk map[string]any) {
			tk["post_processor"] = map[string]any{"type": "BertProcessing", "sep": []any{"[SEP]", 7}, "cls": []any{"[CLS]", 101}}
		},
		"truncation left":     func(tk map[string]any) { obj(tk["truncation"])["direction"] = "Left" },
		"truncation OnlyPair": func(tk map[string]any) { obj(tk["truncation"])["strategy"] = "OnlySecond" },
		"stride":              func(tk map[string]any) { obj(tk["truncation"])["stride"] = 2 },
		"max_length 2":        func(tk map[string]any) { obj(tk["truncation"])["max_length"] = 2 },
		"padding left":        func(tk map[string]any) { obj(tk["padding"])["direction"] = "Left" },
		"top-level field":     func(tk map[string]any) { tk["extra"] = 1 },
	}
	for name, edit := range edits {
		data, err := os.ReadFile(tokenizerVariant(t, edit))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newBertEncoder(data); !errors.Is(err, errNotBert) {
			t.Errorf("%s: newBertEncoder error %v, want errNotBert", name, err)
		}
	}
	for _, data := range []string{"", "null", "[]", "{}", `{"model": null}`} {
		if _, err := newBertEncoder([]byte(data)); !errors.Is(err, errNotBert) {
			t.Errorf("%q: newBertEncoder error %v, want errNotBert", data, err)
		}
	}
	// A tokenizer bertEncoder refuses still works, through sugarme.
	w, err := newWordpiece(tokenizerVariant(t, func(tk map[string]any) { obj(tk["truncation"])["stride"] = 2 }), 128)
	if err != nil {
		t.Fatal(err)
	}
	if w.fast != nil || !errors.Is(w.notFast, errNotBert) {
		t.Fatalf("fast %v, notFast %v", w.fast, w.notFast)
	}
	if e, err := w.encode("disk full"); err != nil || len(e.ids) != 4 || e.ids[0] != 101 || e.ids[3] != 102 {
		t.Fatalf("encode = %v, %v", e.ids, err)
	}
}

// TestBertCharacterClasses compares the classifiers with sugarme's on every
// rune.
func TestBertCharacterClasses(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if isBertPunct(r) != normalizer.IsBertPunctuation(r) {
			t.Errorf("isBertPunct(%U) = %t", r, isBertPunct(r))
		}
		if isBertChinese(r) != normalizer.IsChinese(r) {
			t.Errorf("isBertChinese(%U) = %t", r, isBertChinese(r))
		}
	}
}

// FuzzBertMatchesSugarme: for any text, after prepare, bertEncoder either
// leaves it to sugarme (only when it holds a character clean_text removes)
// or gives sugarme's ids; it never panics, even where sugarme does.
func FuzzBertMatchesSugarme(f *testing.F) {
	for _, s := range append(append(bertEdgeTexts(), bertFallbackTexts()...), parityTexts()...) {
		f.Add(s)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		f.Add(randomBertText(r))
	}
	path, maxTokens := testTokenizerJSON(f)
	w := bertWordpiece(f, path, maxTokens)
	f.Fuzz(func(t *testing.T, s string) {
		p := prepare(s, maxTokens)
		bertCheck(t, w, p)
		// Random bytes mostly include a control character, which sends the
		// text to sugarme: compare the text without them too.
		if q := strings.Map(keepUnremoved, p); q != p {
			bertCheck(t, w, prepare(q, maxTokens))
		}
	})
}

func keepUnremoved(r rune) rune {
	if bertRemovedRune(r) {
		return -1
	}
	return r
}

// BenchmarkWordpiece encodes benchmark-like runbook chunks (about 90
// tokens) with sugarme and with bertEncoder.
func BenchmarkWordpiece(b *testing.B) {
	path, maxTokens := testTokenizerJSON(b)
	w := bertWordpiece(b, path, maxTokens)
	texts := runbookChunks(b)
	tokens := 0
	for _, text := range texts {
		e, err := w.encode(text)
		if err != nil {
			b.Fatal(err)
		}
		tokens += len(e.ids)
	}
	b.Logf("%d texts, %.1f tokens each on average", len(texts), float64(tokens)/float64(len(texts)))
	for _, c := range []struct {
		name string
		enc  func(string) (encoded, error)
	}{
		{"sugarme", w.encodeSugarme},
		{"bert", w.encode},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.enc(texts[i%len(texts)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
