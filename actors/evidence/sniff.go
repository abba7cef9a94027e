package evidence

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors/evidence/loginsight"
)

// Kind is what a file holds, as the extension's source_type shows it.
type Kind string

// Kinds of evidence.
const (
	KindLogs          Kind = "logs"
	KindMetrics       Kind = "metrics"
	KindConfiguration Kind = "configuration"
	KindCode          Kind = "code"
	KindText          Kind = "text"
	KindImage         Kind = "image"
	KindBinary        Kind = "binary"
)

// textual reports whether files of this kind can be read and searched as
// lines of text.
func (k Kind) textual() bool { return k != KindImage && k != KindBinary }

// sniffLen is how much of a body the type is sniffed from.
const sniffLen = 8 << 10

// sniffed is the verdict on a body's first bytes.
type sniffed struct {
	kind        Kind
	contentType string
	format      string // "json", "ndjson", "csv", "prometheus", "xml", … or ""
}

// Thresholds: the share of lines that must look like a kind for the content
// alone to decide. A kind reaching half its threshold is a candidate the file
// name's extension may pick when nothing else passed.
const (
	logsThreshold    = 0.5
	configThreshold  = 0.6
	codeThreshold    = 0.3
	metricsThreshold = 0.8
)

// sniff classifies a body from its first bytes. complete says the prefix is
// the whole body. The name's extension only breaks ties between kinds the
// content supports; it never overrides the content.
func sniff(prefix []byte, complete bool, name string, ref time.Time) sniffed {
	prefix = bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	ct := http.DetectContentType(prefix)
	switch {
	case strings.HasPrefix(ct, "image/"):
		return sniffed{kind: KindImage, contentType: ct}
	case looksBinary(prefix, complete, ct):
		if strings.HasPrefix(ct, "text/") {
			ct = "application/octet-stream"
		}
		return sniffed{kind: KindBinary, contentType: ct}
	case strings.HasPrefix(ct, "text/xml"):
		return sniffed{kind: KindConfiguration, contentType: ct, format: "xml"}
	}
	const plain = "text/plain; charset=utf-8"
	lines := sniffLines(prefix, complete)
	if len(lines) == 0 { // white space only
		return sniffed{kind: KindText, contentType: plain}
	}
	if s, ok := sniffJSON(prefix, complete, lines); ok {
		return s
	}
	if promScore(lines) >= metricsThreshold {
		return sniffed{kind: KindMetrics, contentType: "text/plain; version=0.0.4; charset=utf-8", format: "prometheus"}
	}
	if delim, ok := csvMetrics(lines); ok {
		if delim == '\t' {
			return sniffed{kind: KindMetrics, contentType: "text/tab-separated-values; charset=utf-8", format: "tsv"}
		}
		return sniffed{kind: KindMetrics, contentType: "text/csv; charset=utf-8", format: "csv"}
	}
	if strings.HasPrefix(lines[0], "#!") {
		return sniffed{kind: KindCode, contentType: plain} // a script's shebang
	}

	// Each candidate's score relative to its threshold: ≥ 1 passes.
	cands := []struct {
		kind  Kind
		ratio float64
	}{
		{KindLogs, logsScore(lines, ref) / logsThreshold},
		{KindCode, codeScore(lines) / codeThreshold},
		{KindConfiguration, configScore(lines) / configThreshold},
	}
	ext := extKind(name)
	best := KindText
	for _, c := range cands {
		if c.ratio >= 1 && best == KindText {
			best = c.kind
		}
	}
	for _, c := range cands {
		if c.kind != ext {
			continue
		}
		// Tie: several kinds pass and the name picks one of them, or none
		// passes and the name's kind is at least half-way there.
		if c.ratio >= 1 || (best == KindText && c.ratio >= 0.5) {
			best = c.kind
		}
	}
	return sniffed{kind: best, contentType: plain}
}

// looksBinary reports NUL bytes, or a density of invalid UTF-8 and control
// characters that no text file has.
func looksBinary(p []byte, complete bool, ct string) bool {
	if bytes.IndexByte(p, 0) >= 0 {
		return true
	}
	if !strings.HasPrefix(ct, "text/") && ct != "application/octet-stream" && ct != "application/json" {
		return true // pdf, zip, gzip, audio, video, fonts, wasm…
	}
	if strings.Contains(ct, "utf-16") {
		return true // lines of UTF-16 cannot be analysed as text
	}
	if !complete {
		p = trimPartialRune(p)
	}
	if len(p) == 0 {
		return false
	}
	bad := 0
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			bad++
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' && r != '\v' && r != 0x1b:
			bad++ // ESC is allowed: coloured terminal output
		case r == 0x7f:
			bad++
		}
		i += size
	}
	return bad*10 > len(p) // more than 10 %
}

// trimPartialRune drops an incomplete UTF-8 sequence cut at the end of p.
func trimPartialRune(p []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(p); i++ {
		if utf8.RuneStart(p[len(p)-i]) {
			if !utf8.FullRune(p[len(p)-i:]) {
				return p[:len(p)-i]
			}
			break
		}
	}
	return p
}

// sniffLines returns the non-blank lines of the prefix, without a last line
// that was cut off.
func sniffLines(p []byte, complete bool) []string {
	s := string(p)
	if !complete {
		if i := strings.LastIndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		}
	}
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// logKeys are field names that make a JSON object a log record.
var logKeys = map[string]bool{
	"time": true, "ts": true, "timestamp": true, "@timestamp": true, "datetime": true, "date": true, "@t": true,
	"level": true, "lvl": true, "severity": true, "loglevel": true, "log.level": true, "@l": true,
	"msg": true, "message": true, "log": true, "@m": true, "@mt": true, "event": true,
}

// sniffJSON recognises one JSON document (configuration) or JSON lines
// (logs when the objects look like log records, text otherwise).
func sniffJSON(p []byte, complete bool, lines []string) (sniffed, bool) {
	t := bytes.TrimLeft(p, " \t\r\n")
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return sniffed{}, false
	}
	objects, logish := 0, 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		var m map[string]json.RawMessage
		if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &m) != nil {
			objects = -1
			break
		}
		objects++
		hits := 0
		for k := range m {
			if logKeys[strings.ToLower(k)] {
				hits++
			}
		}
		if hits >= 2 {
			logish++
		}
	}
	if objects >= 2 || (objects == 1 && logish == 1) {
		if logish*2 >= objects {
			return sniffed{kind: KindLogs, contentType: "application/x-ndjson", format: "ndjson"}, true
		}
		return sniffed{kind: KindText, contentType: "application/x-ndjson", format: "ndjson"}, true
	}
	if jsonPrefixValid(t, complete) {
		return sniffed{kind: KindConfiguration, contentType: "application/json", format: "json"}, true
	}
	return sniffed{}, false
}

// jsonPrefixValid reports whether p is a JSON document, or the valid start
// of one when the body goes on past the prefix.
func jsonPrefixValid(p []byte, complete bool) bool {
	if complete {
		return json.Valid(p)
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	for {
		_, err := dec.Token()
		if err == nil {
			continue
		}
		return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	}
}

var (
	promMeta   = regexp.MustCompile(`^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?$`)
	promSample = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?[ \t]+([-+]?[0-9.]+([eE][-+]?[0-9]+)?|NaN|[-+]?Inf)([ \t]+-?[0-9]+)?$`)
)

// promScore is the share of lines in the Prometheus text exposition format
// (0 unless at least one line is a sample).
func promScore(lines []string) float64 {
	hits, samples := 0, 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case promSample.MatchString(l):
			hits++
			samples++
		case promMeta.MatchString(l), strings.HasPrefix(l, "# "):
			hits++
		}
	}
	if samples == 0 {
		return 0
	}
	return float64(hits) / float64(len(lines))
}

// csvMetrics recognises delimited tables with a consistent column count and
// at least one numeric column, returning the delimiter.
func csvMetrics(lines []string) (rune, bool) {
	if len(lines) < 2 {
		return 0, false
	}
	for _, delim := range []rune{',', '\t', ';'} {
		if !strings.ContainsRune(lines[0], delim) {
			continue
		}
		r := csv.NewReader(strings.NewReader(strings.Join(lines, "\n")))
		r.Comma = delim
		r.LazyQuotes = true
		r.FieldsPerRecord = -1
		r.ReuseRecord = false
		recs, err := r.ReadAll()
		if err != nil || len(recs) < 2 {
			continue
		}
		width := len(recs[0])
		if width < 2 {
			continue
		}
		same := 0
		for _, rec := range recs {
			if len(rec) == width {
				same++
			}
		}
		if same*10 < len(recs)*9 {
			continue
		}
		if numericColumns(recs, width) > 0 {
			return delim, true
		}
	}
	return 0, false
}

// numericColumns counts columns whose data cells are mostly numbers. The
// first row is skipped when it looks like a header.
func numericColumns(recs [][]string, width int) int {
	data := recs
	if rowNumbers(recs[0]) == 0 {
		data = recs[1:]
	}
	n := 0
	for c := 0; c < width; c++ {
		num, filled := 0, 0
		for _, rec := range data {
			if c >= len(rec) {
				continue
			}
			cell := strings.TrimSpace(rec[c])
			if cell == "" {
				continue
			}
			filled++
			if isNumber(cell) {
				num++
			}
		}
		if filled >= 1 && num*10 >= filled*8 {
			n++
		}
	}
	return n
}

func rowNumbers(rec []string) int {
	n := 0
	for _, c := range rec {
		if isNumber(strings.TrimSpace(c)) {
			n++
		}
	}
	return n
}

func isNumber(s string) bool {
	s = strings.TrimSuffix(s, "%")
	if s == "" {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// tsAtStart are timestamp shapes at the start of a log line, a fallback for
// the ones loginsight.DetectTimestamp does not place at the line's start.
var tsAtStart = []*regexp.Regexp{
	regexp.MustCompile(`^[\[(<]?\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}`),                 // ISO 8601, Go log
	regexp.MustCompile(`^(<\d{1,3}>\d? ?)?[A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}`),     // syslog
	regexp.MustCompile(`^[IWEFD]\d{4} \d{2}:\d{2}:\d{2}`),                                // klog
	regexp.MustCompile(`^\d{6} \d{6} `),                                                  // HDFS
	regexp.MustCompile(`^\S+ \S+ \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}`),     // access log
	regexp.MustCompile(`^\[?\d{10}(\.\d+)?\]?\s`),                                        // epoch seconds
	regexp.MustCompile(`^\[?\d{2}:\d{2}:\d{2}`),                                          // time of day
	regexp.MustCompile(`^\[\s*\d+\.\d+\]`),                                               // dmesg
	regexp.MustCompile(`^[\[(]?\d{2}[-/.]\d{2}[-/.]\d{4}[ T]\d{2}:\d{2}`),                // 02/01/2006 15:04
	regexp.MustCompile(`^[\[(]?\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}`),             // Tomcat
	regexp.MustCompile(`^[\[(]?[A-Z][a-z]{2},? \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}`), // RFC 1123
}

// logsScore is the share of record lines (not indented continuation lines
// such as stack frames) that start with a timestamp or carry a log level
// near their start.
func logsScore(lines []string, ref time.Time) float64 {
	records, hits := 0, 0
	for _, l := range lines {
		if l[0] == ' ' || l[0] == '\t' || strings.HasPrefix(l, "Caused by:") {
			continue
		}
		records++
		if startsWithTimestamp(l, ref) || levelNearStart(l) {
			hits++
		}
	}
	if records == 0 {
		return 0
	}
	return float64(hits) / float64(records)
}

func startsWithTimestamp(l string, ref time.Time) bool {
	if _, span, ok := loginsight.DetectTimestamp(l, ref); ok && span[0] <= 6 {
		return true
	}
	for _, re := range tsAtStart {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// levelNearStart reports a log level declared in the first 64 bytes
// ("ERROR", "[warn]", "level=info", klog's "E0102 …", a syslog priority).
func levelNearStart(l string) bool {
	return loginsight.DetectLevel(cutRunes(l, 64)) != loginsight.LevelUnknown
}

// codeStrong are line starts that are code in nearly every language.
var codeStrong = []string{
	"package ", "import ", "from ", "func ", "def ", "class ", "#include", "#define", "#import", "fn ", "pub fn ",
	"pub struct ", "impl ", "public ", "private ", "protected ", "static ", "const ", "let ", "var ",
	"function ", "return ", "return;", "if (", "if err != nil", "for (", "for _, ", "while (", "} else", "elif ",
	"else:", "try:", "try {", "except ", "except:", "catch (", "} catch", "struct ", "typedef ", "namespace ",
	"using ", "async ", "await ", "interface ", "module.exports", "console.log(", "print(", "System.out.",
	"require(", "end", "defer ", "go func", "switch ", "case ", "throw ", "raise ", "with open(",
}

// codeScore weighs code-only line starts fully and typical code line endings
// ("{", ";", "}", "):") by half. Fewer than two strong lines score 0.
func codeScore(lines []string) float64 {
	strong := 0
	weak := 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		isStrong := false
		for _, p := range codeStrong {
			if strings.HasPrefix(t, p) {
				if p == "from " && !strings.Contains(t, " import ") {
					continue
				}
				if p == "end" && t != "end" {
					continue
				}
				isStrong = true
				break
			}
		}
		switch {
		case isStrong:
			strong++
		case strings.HasPrefix(t, "//"), strings.HasPrefix(t, "/*"), strings.HasPrefix(t, "*"),
			strings.HasSuffix(t, "{"), strings.HasSuffix(t, "}"), strings.HasSuffix(t, ";"),
			strings.HasSuffix(t, "):"), strings.HasSuffix(t, ")"), strings.HasSuffix(t, "),"),
			strings.Contains(t, " := "), strings.Contains(t, "=>"):
			weak++
		}
	}
	if strong < 2 {
		return 0
	}
	return (float64(strong) + float64(weak)/2) / float64(len(lines))
}

var (
	cfgYAMLKey   = regexp.MustCompile(`^(- +)?["']?[A-Za-z0-9_.\-/@$]+["']?\s*:(\s|$)`)
	cfgListItem  = regexp.MustCompile(`^-( |$)`)
	cfgSection   = regexp.MustCompile(`^\[\[?[^\[\]]+\]\]?$`)
	cfgAssign    = regexp.MustCompile(`^(export\s+)?["']?[A-Za-z0-9_.\-]+["']?\s*=`)
	cfgDirective = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\s+[^;{}]*)?;\s*(#.*)?$`)
	cfgBlock     = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\s+[^{}]*)?\{$`)
	cfgTag       = regexp.MustCompile(`^</?[A-Za-z][^>]*>$`)
)

// configScore is the share of non-comment lines shaped like YAML, INI, TOML,
// env files, nginx-style directives and blocks or XML tags. List items only
// count beside at least two key lines (a Markdown list is not YAML).
func configScore(lines []string) float64 {
	keys, items, total := 0, 0, 0
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") || strings.HasPrefix(t, "//") {
			continue
		}
		total++
		switch {
		case t == "---", t == "...", t == "}", t == "};":
			items++
		case cfgYAMLKey.MatchString(t), cfgSection.MatchString(t), cfgAssign.MatchString(t),
			cfgDirective.MatchString(t), cfgBlock.MatchString(t), cfgTag.MatchString(t):
			keys++
		case cfgListItem.MatchString(t):
			items++
		}
	}
	if total == 0 || keys < 2 {
		return 0
	}
	return float64(keys+items) / float64(total)
}

// extKind is the kind a file name's extension suggests, used only to break
// ties.
func extKind(name string) Kind {
	switch strings.ToLower(path.Ext(name)) {
	case ".log", ".out", ".err", ".trace":
		return KindLogs
	case ".json", ".yaml", ".yml", ".toml", ".ini", ".conf", ".cfg", ".cnf", ".env", ".properties", ".xml", ".tf", ".hcl":
		return KindConfiguration
	case ".csv", ".tsv", ".prom":
		return KindMetrics
	case ".go", ".py", ".js", ".ts", ".java", ".c", ".h", ".cc", ".cpp", ".rs", ".rb", ".sh", ".php", ".cs", ".kt", ".swift", ".scala":
		return KindCode
	}
	return KindText
}
