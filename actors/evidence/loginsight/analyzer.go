package loginsight

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"
)

var (
	// ErrEmpty is returned for input without a single non-blank line.
	ErrEmpty = errors.New("loginsight: no log lines")
	// ErrBinary is returned for input that does not look like text.
	ErrBinary = errors.New("loginsight: input looks binary")
)

// Options tunes Analyze. The zero value gives the defaults; out-of-range
// fields are replaced by their defaults.
type Options struct {
	// Reference gives the year of year-less timestamps (syslog, klog) and
	// the location of zone-less ones. Default: now, in UTC.
	Reference time.Time
	// MaxLineBytes: longer lines are cut to this and counted as
	// truncated. Default 64 KiB.
	MaxLineBytes int
	// Miner configures template mining (defaults: see MinerConfig).
	Miner MinerConfig
	// MaxIPs caps the set of distinct IP addresses. Default 10,000.
	MaxIPs int
	// MaxBuckets caps the per-minute histogram; beyond it buckets double
	// in width. Default 100,000 (about 69 days of minutes).
	MaxBuckets int
	// A bucket is a burst when it holds at least BurstFactor times the
	// median non-empty bucket and at least BurstMinLines records.
	// Defaults 5 and 20.
	BurstFactor   float64
	BurstMinLines int
	// TopBursts, TopIPs: how many the report lists. Defaults 10 and 10.
	TopBursts, TopIPs int
	// MaxTemplates caps the templates listed in the report (all are
	// counted in TemplatesTotal). Default 1,000.
	MaxTemplates int
	// MaxContinuation caps the lines folded into one record as its stack
	// trace; later ones count as records of their own. Default 1,000.
	MaxContinuation int
}

func (o Options) withDefaults() Options {
	if o.Reference.IsZero() {
		o.Reference = time.Now().UTC()
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 64 << 10
	}
	o.MaxLineBytes = max(o.MaxLineBytes, 64)
	if o.MaxIPs <= 0 {
		o.MaxIPs = 10_000
	}
	if o.MaxBuckets <= 0 {
		o.MaxBuckets = 100_000
	}
	if !(o.BurstFactor >= 1) {
		o.BurstFactor = 5
	}
	if o.BurstMinLines <= 0 {
		o.BurstMinLines = 20
	}
	if o.TopBursts <= 0 {
		o.TopBursts = 10
	}
	if o.TopIPs <= 0 {
		o.TopIPs = 10
	}
	if o.MaxTemplates <= 0 {
		o.MaxTemplates = 1_000
	}
	if o.MaxContinuation <= 0 {
		o.MaxContinuation = 1_000
	}
	return o
}

// Report is what Analyze learned from a log. Times are instants (zoned
// timestamps converted to UTC, zone-less ones read in the reference
// location).
type Report struct {
	Lines int64 `json:"lines"`
	Bytes int64 `json:"bytes"`
	// Events are log records: lines minus blank, binary and continuation
	// lines.
	Events            int64 `json:"events"`
	BlankLines        int64 `json:"blank_lines,omitempty"`
	TruncatedLines    int64 `json:"truncated_lines,omitempty"`
	BinaryLines       int64 `json:"binary_lines,omitempty"`
	ContinuationLines int64 `json:"continuation_lines,omitempty"`
	// MultilineEvents are records that carried continuation lines (stack
	// traces).
	MultilineEvents   int64  `json:"multiline_events,omitempty"`
	TimestampedEvents int64  `json:"timestamped_events"`
	TimestampFormat   string `json:"timestamp_format"`
	// Start and End are the earliest and latest timestamps.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`

	Levels map[Level]int64 `json:"levels"`
	// ErrorRate is the share of events at ERROR or worse.
	ErrorRate float64 `json:"error_rate"`

	// Templates lists the most frequent templates (at most
	// Options.MaxTemplates of TemplatesTotal).
	Templates      []Cluster `json:"templates"`
	TemplatesTotal int       `json:"templates_total"`
	// ErrorTemplates lists templates whose events are mostly WARN or worse.
	ErrorTemplates      []Cluster `json:"error_templates"`
	ErrorTemplatesTotal int       `json:"error_templates_total"`
	// EvictedTemplates / EvictedEvents: rare templates dropped by the
	// miner's cap, and how many events they had held.
	EvictedTemplates int `json:"evicted_templates,omitempty"`
	EvictedEvents    int `json:"evicted_events,omitempty"`

	// Bursts lists the largest bursts, BurstsTotal counts all of them.
	Bursts      []Burst       `json:"bursts"`
	BurstsTotal int           `json:"bursts_total"`
	BucketWidth time.Duration `json:"bucket_width"`
	// MedianPerBucket is the median count of the non-empty buckets.
	MedianPerBucket float64 `json:"median_per_bucket"`
	BurstFactor     float64 `json:"burst_factor"`

	// UniqueIPs counts distinct IPv4/IPv6 addresses; when UniqueIPsCapped
	// the true number is at least this.
	UniqueIPs       int       `json:"unique_ips"`
	UniqueIPsCapped bool      `json:"unique_ips_capped,omitempty"`
	TopIPs          []IPCount `json:"top_ips,omitempty"`

	// TraceTemplates are the templates of records that carried stack
	// traces, most frequent first.
	TraceTemplates []TemplateCount `json:"trace_templates,omitempty"`

	Elapsed     time.Duration `json:"elapsed"`
	LinesPerSec float64       `json:"lines_per_sec"`
}

// Burst is a bucket with far more records than usual.
type Burst struct {
	Start time.Time     `json:"start"`
	Width time.Duration `json:"width"`
	Lines int           `json:"lines"`
	// Ratio is Lines over the median bucket.
	Ratio float64 `json:"ratio"`
	// Top are the dominant templates; counts are upper bounds (a small
	// space-saving sketch per bucket), exact for a dominant template.
	Top []TemplateCount `json:"top"`
}

// TemplateCount pairs a template with a count.
type TemplateCount struct {
	Template string `json:"template"`
	Count    int    `json:"count"`
}

// IPCount pairs an address with the lines it appeared on.
type IPCount struct {
	IP    string `json:"ip"`
	Count int    `json:"count"`
}

// sketchSize is the number of templates tracked per time bucket.
const sketchSize = 4

type bucket struct {
	n   int
	top [sketchSize]struct{ id, n int }
}

// add counts one record of group id (space-saving: a new id replaces the
// smallest entry and inherits its count).
func (b *bucket) add(id, n int) {
	b.n += n
	lo := 0
	for i := range b.top {
		if b.top[i].id == id && b.top[i].n > 0 {
			b.top[i].n += n
			return
		}
		if b.top[i].n < b.top[lo].n {
			lo = i
		}
	}
	b.top[lo] = struct{ id, n int }{id, b.top[lo].n + n}
}

// pending is the current record, held until its continuation lines end.
type pending struct {
	msg   string
	ts    time.Time
	hasTS bool
	lvl   Level
	cont  int
}

type analyzer struct {
	o      Options
	rep    *Report
	tsd    *TimestampDetector
	miner  *Miner
	levels [numLevels]int64
	cur    *pending
	// per-bucket histogram; width in minutes
	buckets map[int64]*bucket
	width   int64
	ips     map[netip.Addr]int
	traces  map[int]int
	long    []byte
}

// Analyze reads a log line by line and summarises it. Memory stays bounded
// whatever the input size: lines are cut at Options.MaxLineBytes and every
// collection is capped (templates, IPs, time buckets). Lines without a
// timestamp that follow a timestamped record, and indented lines, are that
// record's continuation (a stack trace) and are not mined separately.
// It returns ErrBinary when the start of the input is not text and
// ErrEmpty when there is no non-blank line; read errors are wrapped.
func Analyze(r io.Reader, opts Options) (*Report, error) {
	start := time.Now()
	o := opts.withDefaults()
	a := &analyzer{
		o:       o,
		rep:     &Report{},
		tsd:     NewTimestampDetector(o.Reference),
		miner:   NewMiner(o.Miner),
		buckets: make(map[int64]*bucket),
		width:   1,
		ips:     make(map[netip.Addr]int),
		traces:  make(map[int]int),
	}
	br := bufio.NewReaderSize(r, o.MaxLineBytes)
	// A short peek is fine; a read error surfaces again, with its line
	// number, from the first ReadSlice that reaches it.
	peek, _ := br.Peek(4096)
	if LooksBinary(peek) {
		return nil, ErrBinary
	}
	for {
		line, ok, err := a.readLine(br)
		if err != nil {
			return nil, fmt.Errorf("loginsight: read line %d: %w", a.rep.Lines+1, err)
		}
		if !ok {
			break
		}
		a.line(line)
	}
	a.commit()
	if a.rep.Events == 0 {
		if a.rep.BinaryLines > 0 {
			return nil, ErrBinary
		}
		return nil, ErrEmpty
	}
	a.finish()
	a.rep.Elapsed = time.Since(start)
	if s := a.rep.Elapsed.Seconds(); s > 0 {
		a.rep.LinesPerSec = float64(a.rep.Lines) / s
	}
	return a.rep, nil
}

// readLine returns the next line without its line ending, cut to
// MaxLineBytes; ok is false at the end of input.
func (a *analyzer) readLine(br *bufio.Reader) (string, bool, error) {
	b, err := br.ReadSlice('\n')
	n := int64(len(b))
	if errors.Is(err, bufio.ErrBufferFull) {
		a.long = append(a.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			var more []byte
			more, err = br.ReadSlice('\n')
			n += int64(len(more))
		}
		a.rep.TruncatedLines++
		b = a.long
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	if n == 0 {
		return "", false, nil
	}
	a.rep.Lines++
	a.rep.Bytes += n
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b), true, nil
}

func (a *analyzer) line(s string) {
	if strings.IndexByte(s, 0) >= 0 {
		a.rep.BinaryLines++
		return
	}
	if strings.TrimSpace(s) == "" {
		a.rep.BlankLines++
		return
	}
	a.scanIPs(s)
	ts, span, hasTS := a.tsd.Detect(s)
	if a.continuation(s, hasTS) {
		a.rep.ContinuationLines++
		a.cur.cont++
		if a.cur.lvl == LevelUnknown && (strings.Contains(s, "Exception") || strings.Contains(s, "Traceback") ||
			strings.HasPrefix(strings.TrimSpace(s), "panic:")) {
			a.cur.lvl = LevelError
		}
		return
	}
	a.commit()
	msg := s
	if hasTS {
		msg = strings.TrimSpace(s[:span[0]]) + " " + s[span[1]:]
	}
	if jm, ok := jsonMessage(s); ok {
		msg = jm
	}
	msg = strings.TrimLeft(msg, " \t-|:,")
	if hasTS && (a.tsd.format == tsSyslog || a.tsd.format == tsCtime) {
		msg = syslogHeader(msg)
	}
	a.cur = &pending{msg: msg, ts: ts, hasTS: hasTS, lvl: DetectLevel(s)}
}

// continuation reports whether s belongs to the current record: indented
// or "Caused by:" lines without a timestamp, or any untimestamped line
// after a timestamped record (Java exception lines, Python tracebacks).
func (a *analyzer) continuation(s string, hasTS bool) bool {
	if hasTS || a.cur == nil || a.cur.cont >= a.o.MaxContinuation {
		return false
	}
	if s[0] == ' ' || s[0] == '\t' || strings.HasPrefix(s, "Caused by:") {
		return true
	}
	return a.cur.hasTS
}

// commit counts and mines the current record.
func (a *analyzer) commit() {
	p := a.cur
	if p == nil {
		return
	}
	a.cur = nil
	a.rep.Events++
	a.levels[p.lvl]++
	id := a.miner.Observe(p.msg, p.ts, p.lvl)
	if p.cont > 0 {
		a.rep.MultilineEvents++
		if _, ok := a.traces[id]; ok || len(a.traces) < a.o.MaxTemplates {
			a.traces[id]++
		}
	}
	if !p.hasTS {
		return
	}
	a.rep.TimestampedEvents++
	if a.rep.Start.IsZero() || p.ts.Before(a.rep.Start) {
		a.rep.Start = p.ts
	}
	if p.ts.After(a.rep.End) {
		a.rep.End = p.ts
	}
	k := floorDiv(floorDiv(p.ts.Unix(), 60), a.width)
	b := a.buckets[k]
	if b == nil {
		if len(a.buckets) >= a.o.MaxBuckets {
			a.coarsen()
			k = floorDiv(floorDiv(p.ts.Unix(), 60), a.width)
			b = a.buckets[k]
		}
		if b == nil {
			b = &bucket{}
			a.buckets[k] = b
		}
	}
	b.add(id, 1)
}

// coarsen doubles the bucket width until the histogram is under its cap.
func (a *analyzer) coarsen() {
	for len(a.buckets) >= a.o.MaxBuckets {
		a.width *= 2
		nb := make(map[int64]*bucket, len(a.buckets)/2+1)
		for k, b := range a.buckets {
			nk := floorDiv(k, 2)
			t := nb[nk]
			if t == nil {
				nb[nk] = b
				continue
			}
			for _, e := range b.top {
				if e.n > 0 {
					t.add(e.id, e.n)
				}
			}
			t.n += b.n - sumTop(b)
		}
		a.buckets = nb
	}
}

func sumTop(b *bucket) int {
	s := 0
	for _, e := range b.top {
		s += e.n
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// finish turns the counters into the report.
func (a *analyzer) finish() {
	r := a.rep
	r.TimestampFormat = a.tsd.Format()
	r.Levels = make(map[Level]int64)
	for l, n := range a.levels {
		if n > 0 {
			r.Levels[Level(l)] = n
		}
	}
	r.ErrorRate = float64(a.levels[LevelError]+a.levels[LevelCritical]+a.levels[LevelFatal]) / float64(r.Events)

	clusters := a.miner.Clusters()
	r.TemplatesTotal = len(clusters)
	r.Templates = clusters[:min(len(clusters), a.o.MaxTemplates)]
	for _, c := range clusters {
		bad := 0
		for l, n := range c.Levels {
			if l >= LevelWarn {
				bad += n
			}
		}
		if bad*2 > c.Count {
			r.ErrorTemplatesTotal++
			if len(r.ErrorTemplates) < a.o.MaxTemplates {
				r.ErrorTemplates = append(r.ErrorTemplates, c)
			}
		}
	}
	r.EvictedTemplates, r.EvictedEvents = a.miner.EvictedGroups, a.miner.EvictedLines

	a.findBursts()

	r.UniqueIPs = len(a.ips)
	ips := make([]IPCount, 0, len(a.ips))
	for ip, n := range a.ips {
		ips = append(ips, IPCount{IP: ip.String(), Count: n})
	}
	slices.SortFunc(ips, func(x, y IPCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.IP, y.IP)
	})
	r.TopIPs = ips[:min(len(ips), a.o.TopIPs)]

	for id, n := range a.traces {
		if t := a.miner.GroupTemplate(id); t != "" {
			r.TraceTemplates = append(r.TraceTemplates, TemplateCount{Template: t, Count: n})
		}
	}
	sortCounts(r.TraceTemplates)
	r.TraceTemplates = r.TraceTemplates[:min(len(r.TraceTemplates), 10)]
}

func sortCounts(tc []TemplateCount) {
	slices.SortFunc(tc, func(x, y TemplateCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.Template, y.Template)
	})
}

func (a *analyzer) findBursts() {
	r := a.rep
	r.BucketWidth = time.Duration(a.width) * time.Minute
	r.BurstFactor = a.o.BurstFactor
	if len(a.buckets) == 0 {
		return
	}
	counts := make([]int, 0, len(a.buckets))
	for _, b := range a.buckets {
		counts = append(counts, b.n)
	}
	slices.Sort(counts)
	mid := len(counts) / 2
	med := float64(counts[mid])
	if len(counts)%2 == 0 {
		med = float64(counts[mid-1]+counts[mid]) / 2
	}
	r.MedianPerBucket = med
	var bursts []Burst
	for k, b := range a.buckets {
		if float64(b.n) < a.o.BurstFactor*med || b.n < a.o.BurstMinLines {
			continue
		}
		bs := Burst{
			Start: time.Unix(k*a.width*60, 0).In(a.o.Reference.Location()),
			Width: r.BucketWidth,
			Lines: b.n,
			Ratio: float64(b.n) / med,
		}
		for _, e := range b.top {
			if e.n > 0 {
				t := a.miner.GroupTemplate(e.id)
				if t == "" {
					t = "(rare template, evicted)"
				}
				bs.Top = append(bs.Top, TemplateCount{Template: t, Count: e.n})
			}
		}
		sortCounts(bs.Top)
		bursts = append(bursts, bs)
	}
	slices.SortFunc(bursts, func(x, y Burst) int {
		if c := cmp.Compare(y.Lines, x.Lines); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	r.BurstsTotal = len(bursts)
	r.Bursts = bursts[:min(len(bursts), a.o.TopBursts)]
}

// jsonMessageKeys name the message field of structured loggers.
var jsonMessageKeys = []string{`"msg"`, `"message"`}

// jsonMessage returns the message field of a JSON line, if any; mining the
// message rather than the whole object keeps field order and ids out of
// the template.
func jsonMessage(line string) (string, bool) {
	t := strings.TrimLeft(line, " \t")
	if len(t) == 0 || t[0] != '{' {
		return "", false
	}
	for _, k := range jsonMessageKeys {
		i := strings.Index(t, k)
		if i < 0 {
			continue
		}
		j := skipSpaces(t, i+len(k))
		if j >= len(t) || t[j] != ':' {
			continue
		}
		j = skipSpaces(t, j+1)
		if j >= len(t) || t[j] != '"' {
			continue
		}
		j++
		end := j
		for end < len(t) && t[end] != '"' {
			if t[end] == '\\' {
				end++
			}
			end++
		}
		return t[j:min(end, len(t))], true
	}
	return "", false
}

// syslogHeader drops the host and the pid of a syslog message header:
// "web1 sshd[42]: Accepted …" → "sshd: Accepted …", so the template tree
// routes on the program and the message rather than on the host.
func syslogHeader(msg string) string {
	sp := strings.IndexByte(msg, ' ')
	if sp <= 0 {
		return msg
	}
	rest := msg[sp+1:]
	sp2 := strings.IndexByte(rest, ' ')
	if sp2 <= 1 || rest[sp2-1] != ':' {
		return msg
	}
	prog := rest[:sp2-1]
	if k := strings.IndexByte(prog, '['); k > 0 && prog[len(prog)-1] == ']' && allDigits(prog[k+1:len(prog)-1]) {
		prog = prog[:k]
	}
	for i := 0; i < len(prog); i++ {
		if c := prog[i]; !isWordByte(c) && c != '-' && c != '.' && c != '/' {
			return msg
		}
	}
	return prog + ": " + rest[sp2+1:]
}

// LooksBinary reports whether a sniffed prefix of a file is not text: a NUL
// byte, or more than 10% control bytes other than tab, CR, LF, FF and ESC.
func LooksBinary(p []byte) bool {
	if bytes.IndexByte(p, 0) >= 0 {
		return true
	}
	ctl := 0
	for _, c := range p {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b {
			ctl++
		}
	}
	return ctl*10 > len(p)
}
