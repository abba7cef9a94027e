package loginsight

import (
	"fmt"
	"strings"
)

// Level is the severity of a log line. The zero value is LevelUnknown; the
// others are ordered, so l >= LevelWarn means "warning or worse".
type Level uint8

// Levels, least to most severe.
const (
	LevelUnknown Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelNotice
	LevelWarn
	LevelError
	LevelCritical
	LevelFatal
	numLevels
)

var levelNames = [numLevels]string{"unknown", "TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRITICAL", "FATAL"}

// String returns the canonical upper-case name ("WARN"), or "unknown".
func (l Level) String() string {
	if l < numLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// MarshalText makes levels readable map keys and values in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText accepts the names MarshalText writes and the aliases
// DetectLevel knows ("warning", "err", "crit", …), in any case.
func (l *Level) UnmarshalText(b []byte) error {
	if strings.EqualFold(string(b), "unknown") {
		*l = LevelUnknown
		return nil
	}
	v, ok := levelWord(string(b))
	if !ok {
		return fmt.Errorf("loginsight: unknown level %q", b)
	}
	*l = v
	return nil
}

// levelWords maps upper-case level words of common loggers (log4j, logback,
// java.util.logging, syslog, zap, logrus, log15, Python, .NET) to a Level.
var levelWords = map[string]Level{
	"TRACE": LevelTrace, "TRC": LevelTrace, "FINEST": LevelTrace, "FINER": LevelTrace, "VERBOSE": LevelTrace,
	"DEBUG": LevelDebug, "DBG": LevelDebug, "DBUG": LevelDebug, "FINE": LevelDebug,
	"INFO": LevelInfo, "INF": LevelInfo, "INFORMATION": LevelInfo, "INFORMATIONAL": LevelInfo,
	"NOTICE": LevelNotice,
	"WARN":   LevelWarn, "WARNING": LevelWarn, "WRN": LevelWarn,
	"ERROR": LevelError, "ERR": LevelError, "EROR": LevelError, "ERRO": LevelError, "SEVERE": LevelError,
	"CRIT": LevelCritical, "CRITICAL": LevelCritical, "ALERT": LevelCritical, "CRT": LevelCritical,
	"FATAL": LevelFatal, "FTL": LevelFatal, "PANIC": LevelFatal, "EMERG": LevelFatal, "EMERGENCY": LevelFatal,
}

// levelWord looks w up case-insensitively without allocating for the
// usual short words.
func levelWord(w string) (Level, bool) {
	if len(w) < 3 || len(w) > 13 {
		return LevelUnknown, false
	}
	var buf [13]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	l, ok := levelWords[string(buf[:len(w)])]
	return l, ok
}

// syslogSeverity maps the low three bits of a syslog PRI to a Level.
var syslogSeverity = [8]Level{LevelFatal, LevelCritical, LevelCritical, LevelError, LevelWarn, LevelNotice, LevelInfo, LevelDebug}

// levelWindow bounds how far into a line the token scan looks: levels live
// in the header, and a long message must not cost more than its header.
const levelWindow = 256

// DetectLevel returns the severity a line declares, or LevelUnknown.
//
// Strong signals, first match from the left wins: a syslog priority
// ("<27>"), klog's leading letter ("E0102 15:04:05…"), a JSON "level" /
// "lvl" / "severity" field (names or bunyan/pino numbers), an upper-case
// level word ("ERROR", "WARN"), any-case words in level=warn, [error],
// <warn> or "error: …" at the start of a message. Only when none is found do
// the weak hints "Exception" and "Traceback" give LevelError. Lower-case
// level words inside a sentence ("connection error while…") are not levels.
func DetectLevel(line string) Level {
	if l, ok := syslogPriority(line); ok {
		return l
	}
	if l, ok := klogLevel(line); ok {
		return l
	}
	if t := strings.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '{' {
		if l, ok := jsonLevel(t); ok {
			return l
		}
	}
	if l, ok := scanLevelWords(line); ok {
		return l
	}
	if strings.Contains(line, "Exception") || strings.Contains(line, "Traceback") {
		return LevelError
	}
	return LevelUnknown
}

func syslogPriority(line string) (Level, bool) {
	if len(line) < 3 || line[0] != '<' {
		return 0, false
	}
	n := 0
	i := 1
	for ; i < len(line) && i <= 4 && isDigit(line[i]); i++ {
		n = n*10 + int(line[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(line) || line[i] != '>' || n > 191 {
		return 0, false
	}
	return syslogSeverity[n&7], true
}

// klogLevel recognises "I0102 15:04:05" at the start of a line.
func klogLevel(line string) (Level, bool) {
	if len(line) < 14 || line[5] != ' ' || !allDigits(line[1:5]) || !isDigit(line[6]) || line[8] != ':' {
		return 0, false
	}
	switch line[0] {
	case 'I':
		return LevelInfo, true
	case 'W':
		return LevelWarn, true
	case 'E':
		return LevelError, true
	case 'F':
		return LevelFatal, true
	}
	return 0, false
}

// jsonLevelKeys are the field names structured loggers use for severity.
var jsonLevelKeys = []string{`"level"`, `"lvl"`, `"severity"`, `"log.level"`, `"loglevel"`}

func jsonLevel(line string) (Level, bool) {
	for _, k := range jsonLevelKeys {
		i := strings.Index(line, k)
		if i < 0 {
			continue
		}
		j := skipSpaces(line, i+len(k))
		if j >= len(line) || line[j] != ':' {
			continue
		}
		j = skipSpaces(line, j+1)
		if j >= len(line) {
			continue
		}
		if line[j] == '"' {
			end := strings.IndexByte(line[j+1:], '"')
			if end < 0 {
				continue
			}
			if l, ok := levelWord(line[j+1 : j+1+end]); ok {
				return l, true
			}
			continue
		}
		// bunyan / pino numeric levels
		n, k2 := 0, j
		for ; k2 < len(line) && k2-j < 3 && isDigit(line[k2]); k2++ {
			n = n*10 + int(line[k2]-'0')
		}
		if k2 > j {
			switch {
			case n >= 60:
				return LevelFatal, true
			case n >= 50:
				return LevelError, true
			case n >= 40:
				return LevelWarn, true
			case n >= 30:
				return LevelInfo, true
			case n >= 20:
				return LevelDebug, true
			case n >= 10:
				return LevelTrace, true
			}
		}
	}
	return 0, false
}

// isLevelKey: the keys that introduce a level value in key=value or
// key: value form (log.level matches through its last word).
func isLevelKey(w string) bool {
	for _, k := range [...]string{"level", "lvl", "severity", "loglevel", "priority"} {
		if strings.EqualFold(w, k) {
			return true
		}
	}
	return false
}

// scanLevelWords walks the letter runs of the header window.
func scanLevelWords(line string) (Level, bool) {
	n := min(len(line), levelWindow)
	for i := 0; i < n; {
		if !isLetter(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && isLetter(line[j]) {
			j++
		}
		w, start := line[i:j], i
		i = j
		// a word glued to digits or underscores is an identifier, not a level
		if (start > 0 && isWordByte(line[start-1])) || (j < len(line) && isWordByte(line[j])) {
			continue
		}
		var prev, next byte
		if start > 0 {
			prev = line[start-1]
		}
		if j < len(line) {
			next = line[j]
		}
		if (next == '=' || next == ':') && isLevelKey(w) {
			if l, ok := levelValue(line, j+1); ok {
				return l, true
			}
			continue
		}
		l, ok := levelWord(w)
		if !ok {
			continue
		}
		switch {
		case isUpperWord(w):
			return l, true
		case (prev == '[' && next == ']') || (prev == '<' && next == '>') || (prev == '(' && next == ')'):
			return l, true
		case next == ':' && messageStart(line, start):
			return l, true
		}
	}
	return 0, false
}

// levelValue reads the value after "level=" / "level:" (quotes allowed).
func levelValue(line string, j int) (Level, bool) {
	j = skipSpaces(line, j)
	if j < len(line) && (line[j] == '"' || line[j] == '\'') {
		j++
	}
	k := j
	for k < len(line) && isLetter(line[k]) {
		k++
	}
	return levelWord(line[j:k])
}

// messageStart reports whether position i starts a message: the line start,
// or right after "prog[pid]: " / "] " / "> " / " - ".
func messageStart(line string, i int) bool {
	k := i
	for k > 0 && line[k-1] == ' ' {
		k--
	}
	if k == 0 {
		return true
	}
	if k == i {
		return false
	}
	switch line[k-1] {
	case ':', ']', '>', '-', '|':
		return true
	}
	return false
}

func isUpperWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'A' || w[i] > 'Z' {
			return false
		}
	}
	return true
}

func skipSpaces(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isLetter(c byte) bool   { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isAlnum(c byte) bool    { return isDigit(c) || isLetter(c) }
func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
