package redact

import (
	"strings"
	"testing"
)

func FuzzIndexFold(f *testing.F) {
	f.Add("Set-Cookie: a=b", "cookie")
	f.Add("xxPASSwordxx", "pass")
	f.Add("", "a")
	f.Add("--a", "-")
	f.Fuzz(func(t *testing.T, s, sub string) {
		sub = strings.ToLower(sub)
		for i := 0; i < len(sub); i++ {
			if sub[i] >= 0x80 {
				return
			}
		}
		want := strings.Index(asciiLower(s), sub)
		if got := indexFold(s, sub); got != want {
			t.Fatalf("indexFold(%q, %q) = %d, want %d", s, sub, got, want)
		}
	})
}
