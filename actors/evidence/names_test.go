package evidence

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("x", 10000) + ".log"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "app.log", "app.log"},
		{"traversal", "../../etc/passwd", "passwd"},
		{"windows path", `C:\Windows\x.log`, "x.log"},
		{"absolute", "/abs/path.log", "path.log"},
		{"mixed separators", `a/b\c/d.txt`, "d.txt"},
		{"nul", "a\x00b.log", "ab.log"},
		{"controls", "a\tb\r\n\x1b[31mc\x7f\u0085.log", "ab[31mc.log"},
		{"bidi override", "evil\u202Egol.exe", "evilgol.exe"},
		{"bidi isolates", "\u2066a\u2069\u2067b\u2068.txt", "ab.txt"},
		{"zero width", "in\u200Bvoi\u200Dce\uFEFF.pdf", "invoice.pdf"},
		{"only dots", "...", "upload"},
		{"dot dot", "..", "upload"},
		{"trailing slash", "dir/", "upload"},
		{"empty", "", "upload"},
		{"spaces and dots", "  .hidden.log. ", "hidden.log"},
		{"invalid utf8", "a\xff\xfeb.log", "ab.log"},
		{"unicode kept", "журнал-ошибок.log", "журнал-ошибок.log"},
		{"long keeps extension", long, strings.Repeat("x", 255-len(".log")) + ".log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeFilename(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeFilename(%q) = %q, want %q", truncate(tt.in), got, tt.want)
			}
			checkSafeName(t, tt.in, got)
		})
	}
}

func TestSanitizeFilenameLongMultibyte(t *testing.T) {
	in := strings.Repeat("é", 300) // 600 bytes, 2 bytes a rune
	got := SanitizeFilename(in)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || len(got) < maxNameBytes-1 {
		t.Fatalf("got %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// checkSafeName asserts the properties every sanitized name has.
func checkSafeName(t *testing.T, in, got string) {
	t.Helper()
	if got == "" {
		t.Fatalf("empty name for %q", truncate(in))
	}
	if len(got) > maxNameBytes {
		t.Fatalf("name of %d bytes for %q", len(got), truncate(in))
	}
	if !utf8.ValidString(got) {
		t.Fatalf("invalid UTF-8 %q for %q", got, truncate(in))
	}
	if strings.ContainsAny(got, "/\\\x00") {
		t.Fatalf("separator or NUL in %q", got)
	}
	for _, r := range got {
		if unicode.IsControl(r) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) ||
			r == 0x200B || r == 0x200C || r == 0x200D || r == 0xFEFF || unicode.Is(unicode.Cf, r) {
			t.Fatalf("forbidden rune %U in %q", r, got)
		}
	}
	if got != "upload" && (strings.HasPrefix(got, ".") || strings.HasSuffix(got, ".") ||
		strings.TrimSpace(got) != got) {
		t.Fatalf("untrimmed %q", got)
	}
}

func FuzzSanitizeFilename(f *testing.F) {
	for _, s := range []string{
		"../../etc/passwd", `C:\Windows\x.log`, "/abs/path.log", "a\x00b.log", "evil\u202Egol.exe", "...",
		strings.Repeat("a", 300) + ".log", "\xff\xfe", " . ", "é\u200b.txt", strings.Repeat("日本", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeFilename(in)
		checkSafeName(t, in, got)
		if again := SanitizeFilename(got); again != got {
			t.Fatalf("not idempotent: %q → %q", got, again)
		}
	})
}
