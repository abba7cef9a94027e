package loginsight

import (
	"strings"
	"time"
)

// tsFormat names a timestamp layout the detector knows.
type tsFormat uint8

const (
	tsNone   tsFormat = iota
	tsISO             // 2006-01-02T15:04:05.000Z07:00, 2006-01-02 15:04:05,000, 2006/01/02 15:04:05
	tsSyslog          // Jan  2 15:04:05[.000000] (syslog, journald short/precise)
	tsCtime           // Mon Jan  2 15:04:05[.000] [2006]
	tsApache          // 02/Jan/2006:15:04:05 -0700
	tsKlog            // I0102 15:04:05.000000
	tsYYMMDD          // 060102 150405 (HDFS)
	tsJSON            // {"ts": …} / "time" / "timestamp" / "@timestamp"
	numTSFormats
)

var tsFormatNames = [numTSFormats]string{"none", "iso8601", "syslog", "ctime", "apache", "klog", "yymmdd-hhmmss", "json"}

func (f tsFormat) String() string { return tsFormatNames[f] }

// tsWindow bounds how far into a line a timestamp may start. Headers put it
// first; scanning further would only find dates inside messages.
const tsWindow = 160

// DetectTimestamp finds the leftmost timestamp in the first 160 bytes of
// line (for JSON lines: the ts, time, timestamp or @timestamp field) and
// returns it with its byte span (brackets around it included). ref supplies
// the year for year-less formats (syslog, klog) and the location for
// timestamps without a zone; a year-less date more than two days after ref
// is taken from the year before, so December lines read in January land in
// the right year. Timestamps with a zone are returned in UTC.
func DetectTimestamp(line string, ref time.Time) (t time.Time, span [2]int, ok bool) {
	t, span, _, _, ok = detectTimestamp(line, ref)
	return t, span, ok
}

// detectTimestamp is the full search; it also reports the format and the
// parser's start position, which TimestampDetector reuses as its fast path.
func detectTimestamp(line string, ref time.Time) (time.Time, [2]int, tsFormat, int, bool) {
	if t := strings.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '{' {
		if ts, sp, ok := parseJSONTime(line, ref); ok {
			return ts, sp, tsJSON, 0, true
		}
	}
	if ts, end, ok := parseKlog(line, 0, ref); ok {
		return ts, [2]int{0, end}, tsKlog, 0, true
	}
	if ts, end, ok := parseYYMMDD(line, 0, ref); ok {
		return ts, [2]int{0, end}, tsYYMMDD, 0, true
	}
	n := min(len(line), tsWindow)
	for i := 0; i < n; i++ {
		c := line[i]
		if i > 0 && isAlnum(line[i-1]) {
			continue
		}
		switch {
		case isDigit(c):
			if ts, end, ok := parseISO(line, i, ref); ok {
				return ts, bracket(line, i, end), tsISO, i, true
			}
			if ts, end, ok := parseApache(line, i, ref); ok {
				return ts, bracket(line, i, end), tsApache, i, true
			}
		case c >= 'A' && c <= 'Z':
			if ts, end, ok := parseCtime(line, i, ref); ok {
				return ts, bracket(line, i, end), tsCtime, i, true
			}
			if ts, end, ok := parseSyslog(line, i, ref); ok {
				return ts, bracket(line, i, end), tsSyslog, i, true
			}
		}
	}
	return time.Time{}, [2]int{}, tsNone, 0, false
}

// parseAt runs one format's parser at a known position.
func parseAt(f tsFormat, line string, i int, ref time.Time) (time.Time, [2]int, bool) {
	var (
		ts  time.Time
		end int
		ok  bool
	)
	switch f {
	case tsJSON:
		return parseJSONTime(line, ref)
	case tsISO:
		ts, end, ok = parseISO(line, i, ref)
	case tsSyslog:
		ts, end, ok = parseSyslog(line, i, ref)
	case tsCtime:
		ts, end, ok = parseCtime(line, i, ref)
	case tsApache:
		ts, end, ok = parseApache(line, i, ref)
	case tsKlog:
		ts, end, ok = parseKlog(line, i, ref)
	case tsYYMMDD:
		ts, end, ok = parseYYMMDD(line, i, ref)
	}
	if !ok || (i > 0 && isAlnum(line[i-1])) {
		return time.Time{}, [2]int{}, false
	}
	return ts, bracket(line, i, end), true
}

// TimestampDetector remembers the format and position of the last
// timestamp it found and tries that first on the next line: in a real log
// nearly every line shares one layout, so the full search runs only on the
// lines that differ. Not safe for concurrent use.
type TimestampDetector struct {
	ref    time.Time
	format tsFormat
	pos    int
	// FastHits and FullScans count how lines were resolved (for tests and
	// benchmarks).
	FastHits, FullScans int64
}

// NewTimestampDetector returns a detector that resolves year-less and
// zone-less timestamps against ref (see DetectTimestamp).
func NewTimestampDetector(ref time.Time) *TimestampDetector {
	return &TimestampDetector{ref: ref}
}

// Format names the learned layout ("iso8601", "syslog", …), or "none".
func (d *TimestampDetector) Format() string { return d.format.String() }

// Detect is DetectTimestamp with the learned fast path.
func (d *TimestampDetector) Detect(line string) (time.Time, [2]int, bool) {
	if d.format != tsNone && d.pos < len(line) {
		if ts, sp, ok := parseAt(d.format, line, d.pos, d.ref); ok {
			d.FastHits++
			return ts, sp, true
		}
	}
	d.FullScans++
	ts, sp, f, pos, ok := detectTimestamp(line, d.ref)
	if ok {
		d.format, d.pos = f, pos
	}
	return ts, sp, ok
}

// bracket widens [i,end) over a surrounding "[…]".
func bracket(line string, i, end int) [2]int {
	if i > 0 && end < len(line) && line[i-1] == '[' && line[end] == ']' {
		return [2]int{i - 1, end + 1}
	}
	return [2]int{i, end}
}

// digitsAt reads exactly n decimal digits at s[i:].
func digitsAt(s string, i, n int) (int, bool) {
	if i < 0 || i+n > len(s) {
		return 0, false
	}
	v := 0
	for k := i; k < i+n; k++ {
		c := s[k]
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// clockAt reads "15:04:05" at s[i:].
func clockAt(s string, i int) (h, m, sec int, ok bool) {
	if i+8 > len(s) || s[i+2] != ':' || s[i+5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digitsAt(s, i, 2)
	m, ok2 := digitsAt(s, i+3, 2)
	sec, ok3 := digitsAt(s, i+6, 2)
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, false
	}
	return h, m, min(sec, 59), true
}

// fractionAt reads ".123" or ",123" (log4j) at s[i:]; it consumes any
// number of digits but keeps nanosecond precision.
func fractionAt(s string, i int) (nanos, end int) {
	if i+1 >= len(s) || (s[i] != '.' && s[i] != ',') || !isDigit(s[i+1]) {
		return 0, i
	}
	j := i + 1
	scale := 100_000_000
	for ; j < len(s) && isDigit(s[j]); j++ {
		nanos += int(s[j]-'0') * scale
		scale /= 10
	}
	return nanos, j
}

// zoneAt reads "Z", "+07:00", "-0700", "+07", or a space-separated
// " +0000" / " -0700", returning the offset in seconds.
func zoneAt(s string, i int) (offset, end int, ok bool) {
	if i >= len(s) {
		return 0, i, false
	}
	if s[i] == 'Z' && (i+1 == len(s) || !isAlnum(s[i+1])) {
		return 0, i + 1, true
	}
	j := i
	spaced := false
	if s[j] == ' ' {
		j++
		spaced = true
	}
	if j >= len(s) || (s[j] != '+' && s[j] != '-') {
		if spaced && (strings.HasPrefix(s[j:], "UTC") || strings.HasPrefix(s[j:], "GMT")) && (j+3 == len(s) || !isAlnum(s[j+3])) {
			return 0, j + 3, true
		}
		return 0, i, false
	}
	sign := 1
	if s[j] == '-' {
		sign = -1
	}
	hh, ok1 := digitsAt(s, j+1, 2)
	if !ok1 {
		return 0, i, false
	}
	k := j + 3
	mm := 0
	switch {
	case k < len(s) && s[k] == ':' && !spaced:
		v, ok2 := digitsAt(s, k+1, 2)
		if !ok2 {
			return 0, i, false
		}
		mm, k = v, k+3
	case k+1 < len(s) && isDigit(s[k]):
		v, ok2 := digitsAt(s, k, 2)
		if !ok2 {
			return 0, i, false
		}
		mm, k = v, k+2
	case spaced:
		return 0, i, false // " -07" is too ambiguous after a space
	}
	if (k < len(s) && isDigit(s[k])) || hh > 14 || mm > 59 {
		return 0, i, false
	}
	return sign * (hh*3600 + mm*60), k, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// mkTime builds the instant, validating the calendar date. Years outside
// 1970–2200 are placeholders ("0001-01-01 00:00:00"), not log times.
func mkTime(y, mo, d, h, mi, sec, ns int, zoned bool, offset int, loc *time.Location) (time.Time, bool) {
	if y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, false
	}
	if zoned {
		return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC).Add(-time.Duration(offset) * time.Second), true
	}
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc), true
}

// yearless builds a date without a year from ref, stepping back a year
// when that would put it well after ref.
func yearless(ref time.Time, mo, d, h, mi, sec, ns int) (time.Time, bool) {
	y := ref.Year()
	if ref.IsZero() {
		y = time.Now().Year()
	}
	if mo == 2 && d == 29 && daysIn(y, 2) == 28 {
		y-- // 29 February needs a leap year; step back to the nearest
		for daysIn(y, 2) == 28 {
			y--
		}
	}
	t, ok := mkTime(y, mo, d, h, mi, sec, ns, false, 0, ref.Location())
	if ok && !ref.IsZero() && t.After(ref.Add(48*time.Hour)) {
		if t2, ok2 := mkTime(y-1, mo, d, h, mi, sec, ns, false, 0, ref.Location()); ok2 {
			t = t2
		}
	}
	return t, ok
}

func parseISO(s string, i int, ref time.Time) (time.Time, int, bool) {
	if i+19 > len(s) {
		return time.Time{}, 0, false
	}
	sep := s[i+4]
	if (sep != '-' && sep != '/') || s[i+7] != sep || (s[i+10] != 'T' && s[i+10] != ' ') {
		return time.Time{}, 0, false
	}
	y, ok1 := digitsAt(s, i, 4)
	mo, ok2 := digitsAt(s, i+5, 2)
	d, ok3 := digitsAt(s, i+8, 2)
	h, mi, sec, ok4 := clockAt(s, i+11)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, 0, false
	}
	ns, j := fractionAt(s, i+19)
	if j < len(s) && isDigit(s[j]) {
		return time.Time{}, 0, false
	}
	off, k, zoned := zoneAt(s, j)
	if zoned {
		j = k
	}
	t, ok := mkTime(y, mo, d, h, mi, sec, ns, zoned, off, ref.Location())
	return t, j, ok
}

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// monthAt reads a three-letter English month name (Jan or JAN).
func monthAt(s string, i int) (int, bool) {
	if i+3 > len(s) {
		return 0, false
	}
	for k, m := range monthNames {
		if strings.EqualFold(s[i:i+3], m) {
			return k + 1, true
		}
	}
	return 0, false
}

// parseSyslog reads "Jan  2 15:04:05[.000000]".
func parseSyslog(s string, i int, ref time.Time) (time.Time, int, bool) {
	mo, ok := monthAt(s, i)
	if !ok || i+4 >= len(s) || s[i+3] != ' ' {
		return time.Time{}, 0, false
	}
	j := i + 4
	if s[j] == ' ' {
		j++
	}
	d, ok := digitsAt(s, j, 2)
	if ok {
		j += 2
	} else if d, ok = digitsAt(s, j, 1); ok {
		j++
	} else {
		return time.Time{}, 0, false
	}
	if j >= len(s) || s[j] != ' ' {
		return time.Time{}, 0, false
	}
	h, mi, sec, ok := clockAt(s, j+1)
	if !ok {
		return time.Time{}, 0, false
	}
	ns, end := fractionAt(s, j+9)
	if end < len(s) && isDigit(s[end]) {
		return time.Time{}, 0, false
	}
	t, ok := yearless(ref, mo, d, h, mi, sec, ns)
	return t, end, ok
}

var dayNames = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// parseCtime reads "Mon Jan  2 15:04:05[.000] [2006]".
func parseCtime(s string, i int, ref time.Time) (time.Time, int, bool) {
	if i+4 > len(s) || s[i+3] != ' ' {
		return time.Time{}, 0, false
	}
	found := false
	for _, d := range dayNames {
		if strings.EqualFold(s[i:i+3], d) {
			found = true
			break
		}
	}
	if !found {
		return time.Time{}, 0, false
	}
	t, end, ok := parseSyslog(s, i+4, ref)
	if !ok {
		return time.Time{}, 0, false
	}
	if y, ok := digitsAt(s, end+1, 4); ok && s[end] == ' ' && (end+5 == len(s) || !isDigit(s[end+5])) {
		t2, ok2 := mkTime(y, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), false, 0, ref.Location())
		if ok2 {
			return t2, end + 5, true
		}
	}
	return t, end, true
}

// parseApache reads "10/Oct/2000:13:55:36 -0700".
func parseApache(s string, i int, ref time.Time) (time.Time, int, bool) {
	if i+20 > len(s) || s[i+2] != '/' || s[i+6] != '/' || s[i+11] != ':' {
		return time.Time{}, 0, false
	}
	d, ok1 := digitsAt(s, i, 2)
	mo, ok2 := monthAt(s, i+3)
	y, ok3 := digitsAt(s, i+7, 4)
	h, mi, sec, ok4 := clockAt(s, i+12)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, 0, false
	}
	ns, j := fractionAt(s, i+20)
	off, k, zoned := zoneAt(s, j)
	if zoned {
		j = k
	}
	t, ok := mkTime(y, mo, d, h, mi, sec, ns, zoned, off, ref.Location())
	return t, j, ok
}

// parseKlog reads "I0102 15:04:05.123456" at the start of a line.
func parseKlog(s string, i int, ref time.Time) (time.Time, int, bool) {
	if i != 0 || len(s) < 14 || s[5] != ' ' || !strings.ContainsRune("IWEF", rune(s[0])) {
		return time.Time{}, 0, false
	}
	mo, ok1 := digitsAt(s, 1, 2)
	d, ok2 := digitsAt(s, 3, 2)
	h, mi, sec, ok3 := clockAt(s, 6)
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, 0, false
	}
	ns, end := fractionAt(s, 14)
	if end < len(s) && isDigit(s[end]) {
		return time.Time{}, 0, false
	}
	t, ok := yearless(ref, mo, d, h, mi, sec, ns)
	return t, end, ok
}

// parseYYMMDD reads HDFS's "081109 203615" at the start of a line.
func parseYYMMDD(s string, i int, ref time.Time) (time.Time, int, bool) {
	if i != 0 || len(s) < 13 || s[6] != ' ' || (len(s) > 13 && isAlnum(s[13])) {
		return time.Time{}, 0, false
	}
	yy, ok1 := digitsAt(s, 0, 2)
	mo, ok2 := digitsAt(s, 2, 2)
	d, ok3 := digitsAt(s, 4, 2)
	h, ok4 := digitsAt(s, 7, 2)
	mi, ok5 := digitsAt(s, 9, 2)
	sec, ok6 := digitsAt(s, 11, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, 0, false
	}
	y := 2000 + yy
	if yy >= 70 {
		y = 1900 + yy
	}
	t, ok := mkTime(y, mo, d, h, mi, sec, 0, false, 0, ref.Location())
	return t, 13, ok
}

// jsonTimeKeys are the timestamp fields of common structured loggers, in
// order of preference.
var jsonTimeKeys = []string{`"@timestamp"`, `"timestamp"`, `"time"`, `"ts"`}

// parseJSONTime reads a timestamp field of a JSON object line: an ISO-8601
// string or epoch seconds, milliseconds, microseconds or nanoseconds.
func parseJSONTime(line string, ref time.Time) (time.Time, [2]int, bool) {
	for _, k := range jsonTimeKeys {
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
		quoted := line[j] == '"'
		if quoted {
			j++
		}
		if t, end, ok := parseISO(line, j, ref); ok {
			return t, [2]int{j, end}, true
		}
		if t, end, ok := parseEpoch(line, j); ok {
			return t, [2]int{j, end}, true
		}
	}
	return time.Time{}, [2]int{}, false
}

// parseEpoch reads a Unix time, choosing the unit by the number of integer
// digits (10 → s, 13 → ms, 16 → µs, 19 → ns). Values before 1973 are
// rejected: small numbers in a "time" field are usually durations.
func parseEpoch(s string, i int) (time.Time, int, bool) {
	j := i
	var ip int64
	for ; j < len(s) && isDigit(s[j]) && j-i < 19; j++ {
		ip = ip*10 + int64(s[j]-'0')
	}
	nd := j - i
	if nd == 0 || (j < len(s) && isDigit(s[j])) {
		return time.Time{}, 0, false
	}
	frac, end := fractionAt(s, j)
	if end < len(s) && s[end] != '"' && s[end] != ',' && s[end] != '}' && s[end] != ' ' {
		return time.Time{}, 0, false
	}
	var t time.Time
	switch {
	case nd <= 11:
		t = time.Unix(ip, int64(frac))
	case nd <= 14:
		t = time.UnixMilli(ip).Add(time.Duration(frac / 1_000))
	case nd <= 17:
		t = time.UnixMicro(ip).Add(time.Duration(frac / 1_000_000))
	default:
		t = time.Unix(0, ip)
	}
	if t.Year() < 1973 || t.Year() > 2200 {
		return time.Time{}, 0, false
	}
	return t.UTC(), end, true
}
