package evidence

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameBytes caps a stored display name, the limit most filesystems and
// browsers use for one path element.
const maxNameBytes = 255

// maxKeptExt is the longest extension (with its dot) kept when a long name is
// shortened, so "very…long.log" still reads as a log.
const maxKeptExt = 16

// SanitizeFilename turns a user-supplied file name into a safe display name.
//
// It keeps only the base name after the last '/' or '\', drops invalid
// UTF-8, NUL and other control characters, format characters (bidi
// overrides and isolates such as U+202E, zero-width spaces and joiners, the
// BOM) and line/paragraph separators, trims dots and spaces at both ends and
// caps the result at 255 bytes on a rune boundary, keeping a short extension.
// An empty result becomes "upload".
//
// The name is for display only: storage never uses it (blobs are named by
// their SHA-256, records by server-generated ids).
func SanitizeFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	b.Grow(min(len(name), 4*maxNameBytes))
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		i += size
		if r == utf8.RuneError && size <= 1 {
			continue // invalid byte
		}
		if dropRune(r) {
			continue
		}
		b.WriteRune(r)
		if b.Len() > 4*maxNameBytes+maxKeptExt {
			// Enough to cut from; keep the tail's extension below.
			b.WriteString(extOf(name[i:]))
			break
		}
	}
	out := trimName(b.String())
	if len(out) > maxNameBytes {
		out = shorten(out)
	}
	if out == "" {
		return "upload"
	}
	return out
}

// dropRune reports whether r has no place in a display name.
func dropRune(r rune) bool {
	switch {
	case r == 0, unicode.IsControl(r): // C0, DEL, C1
		return true
	case unicode.Is(unicode.Cf, r): // bidi controls, zero-width chars, BOM, soft hyphen
		return true
	case r == '\u2028', r == '\u2029': // line and paragraph separators
		return true
	case r == '/', r == '\\': // cannot survive the base-name cut, but be explicit
		return true
	}
	return false
}

// trimName removes dots and white space at both ends ("..", " .bashrc ").
func trimName(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
}

// extOf returns the clean extension (".log") at the end of s, or "".
func extOf(s string) string {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || len(s)-i > maxKeptExt {
		return ""
	}
	ext := s[i:]
	for _, r := range ext[1:] {
		if r >= utf8.RuneSelf || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-') {
			return ""
		}
	}
	if len(ext) < 2 {
		return ""
	}
	return ext
}

// shorten cuts s to maxNameBytes on a rune boundary, keeping a short
// extension.
func shorten(s string) string {
	ext := extOf(s)
	room := maxNameBytes - len(ext)
	head := s[:len(s)-len(ext)]
	if len(head) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(head[cut]) {
			cut--
		}
		head = head[:cut]
	}
	head = strings.TrimRightFunc(head, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if head == "" {
		return trimName(ext)
	}
	return head + ext
}
