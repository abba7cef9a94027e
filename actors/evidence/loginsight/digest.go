package loginsight

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultDigestBudget is the log digest budget of the original product.
const DefaultDigestBudget = 8000

// Lengths of quoted text inside a digest item.
const (
	digestTemplateBytes = 300
	digestExampleBytes  = 200
)

// section is a digest part: a heading and items added while they fit.
type section struct {
	heading string // "" for one-line sections
	items   []string
	total   int    // items that exist (may exceed len(items))
	omitted string // how an omission is described: "more bursts"
	single  bool   // a one-item section named by omitted when it does not fit
	shown   int
}

// Digest renders the report as markdown for a language model, in at most
// budget bytes (so at most budget characters; ≤ 0 means
// DefaultDigestBudget). In order of priority: a summary line, the level
// distribution, the error and warning templates with counts and first/last
// seen, bursts, the most frequent other templates, unique IPs and stack
// traces. Whatever did not fit is named on a final "omitted:" line.
func (r *Report) Digest(budget int) string {
	if budget <= 0 {
		budget = DefaultDigestBudget
	}
	reserve := 0
	for range 8 {
		body, omitted := r.fill(budget - reserve)
		tail := omittedLine(omitted)
		if len(body)+len(tail) <= budget {
			return body + tail
		}
		reserve = len(tail) + 16
	}
	// Only a budget too small for any summary gets here.
	return clip(omittedLine([]string{"everything; budget too small"}), budget)
}

// fill lays out the sections within room bytes and lists what it left out.
func (r *Report) fill(room int) (string, []string) {
	var b strings.Builder
	var omitted []string
	const head = "## Log digest\n"
	if room >= len(head)+40 {
		b.WriteString(head)
	}
	summary := r.summaryLine() + "\n"
	if b.Len()+len(summary) > room {
		cut := room - b.Len() - len("…\n")
		if cut < 20 {
			return b.String(), []string{"the summary and everything else"}
		}
		b.WriteString(strings.TrimRight(clip(summary, cut), "\n") + "…\n")
		omitted = append(omitted, "rest of the summary")
	} else {
		b.WriteString(summary)
	}
	secs := r.sections()
	// One-line sections are short and telling: they get room before the
	// lists, though they are printed after them.
	used := b.Len()
	for _, s := range secs {
		if s.single && used+len(s.items[0]) <= room {
			s.shown = 1
			used += len(s.items[0])
		}
	}
	for _, s := range secs {
		if s.single {
			continue
		}
		for i, it := range s.items {
			if i == 0 {
				it = s.heading + it
			}
			if used+len(it) > room {
				break
			}
			used += len(it)
			s.shown++
		}
	}
	for _, s := range secs {
		for i, it := range s.items[:s.shown] {
			if i == 0 {
				b.WriteString(s.heading)
			}
			b.WriteString(it)
		}
		switch {
		case s.single && s.shown == 0 && s.total > 0:
			omitted = append(omitted, s.omitted)
		case !s.single && s.total > s.shown:
			omitted = append(omitted, fmt.Sprintf("%s more %s", num(s.total-s.shown), s.omitted))
		}
	}
	return b.String(), omitted
}

// sections builds every candidate item, most important first.
func (r *Report) sections() []*section {
	var out []*section
	out = append(out, &section{items: []string{r.levelsLine() + "\n"}, total: 1, single: true, omitted: "level distribution"})

	errs := &section{omitted: "error/warning templates", total: r.ErrorTemplatesTotal,
		heading: fmt.Sprintf("\n### Errors and warnings (%s mostly WARN or worse)\n", plural(r.ErrorTemplatesTotal, "template"))}
	for _, c := range r.ErrorTemplates {
		errs.items = append(errs.items, errorItem(c))
	}
	out = append(out, errs)

	bursts := &section{omitted: "bursts", total: r.BurstsTotal,
		heading: fmt.Sprintf("\n### Bursts (%s of %s with ≥ %s× the median of %s records)\n",
			plural(r.BurstsTotal, "bucket"), shortDur(r.BucketWidth), strconv.FormatFloat(r.BurstFactor, 'f', -1, 64),
			strconv.FormatFloat(r.MedianPerBucket, 'f', -1, 64))}
	for _, bs := range r.Bursts {
		bursts.items = append(bursts.items, burstItem(bs))
	}
	out = append(out, bursts)

	inErrs := map[string]bool{}
	for _, c := range r.ErrorTemplates {
		inErrs[c.Template] = true
	}
	others := 0
	top := &section{omitted: "templates",
		heading: fmt.Sprintf("\n### Most frequent templates (%s in all; error ones above not repeated)\n", num(r.TemplatesTotal))}
	for _, c := range r.Templates {
		if inErrs[c.Template] {
			continue
		}
		others++
		top.items = append(top.items, templateItem(c))
	}
	top.total = r.TemplatesTotal - r.ErrorTemplatesTotal
	top.total = max(top.total, others)
	out = append(out, top)

	if r.UniqueIPs > 0 {
		out = append(out, &section{items: []string{"\n" + r.ipLine() + "\n"}, total: 1, single: true, omitted: "IP summary"})
	}
	if r.MultilineEvents > 0 {
		out = append(out, &section{items: []string{"\n" + r.traceLine() + "\n"}, total: 1, single: true, omitted: "stack-trace summary"})
	}
	return out
}

func omittedLine(omitted []string) string {
	if len(omitted) == 0 {
		return ""
	}
	return "\n_omitted: " + strings.Join(omitted, ", ") + "_\n"
}

func (r *Report) summaryLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Summary:** %s lines, %s records", Thousands(r.Lines), Thousands(r.Events))
	if !r.Start.IsZero() {
		fmt.Fprintf(&b, ", %s → %s (%s)", stamp(r.Start), stamp(r.End), shortDur(r.End.Sub(r.Start)))
	} else {
		b.WriteString(", no timestamps found")
	}
	bad := r.Levels[LevelError] + r.Levels[LevelCritical] + r.Levels[LevelFatal]
	fmt.Fprintf(&b, ", error rate %.2f%% (%s ERROR or worse), %s templates", 100*r.ErrorRate, Thousands(bad), num(r.TemplatesTotal))
	var extra []string
	for _, x := range []struct {
		n    int64
		what string
	}{{r.TruncatedLines, "truncated"}, {r.BinaryLines, "binary"}, {r.ContinuationLines, "stack-trace"}, {r.BlankLines, "blank"}} {
		if x.n > 0 {
			extra = append(extra, Thousands(x.n)+" "+x.what)
		}
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, "; lines: %s", strings.Join(extra, ", "))
	}
	if r.TimestampedEvents < r.Events && r.TimestampedEvents > 0 {
		fmt.Fprintf(&b, "; %s records without timestamp", Thousands(r.Events-r.TimestampedEvents))
	}
	if r.EvictedTemplates > 0 {
		fmt.Fprintf(&b, "; %s rare templates (%s records) dropped by the template cap", num(r.EvictedTemplates), num(r.EvictedEvents))
	}
	b.WriteString(".")
	return b.String()
}

func (r *Report) levelsLine() string {
	var parts []string
	for l := numLevels - 1; ; l-- {
		if n := r.Levels[l]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s (%.1f%%)", l, Thousands(n), 100*float64(n)/float64(max(r.Events, 1))))
		}
		if l == 0 {
			break
		}
	}
	return "**Levels:** " + strings.Join(parts, " · ")
}

func (r *Report) ipLine() string {
	n := num(r.UniqueIPs)
	if r.UniqueIPsCapped {
		n = "≥ " + n
	}
	var top []string
	for _, ip := range r.TopIPs[:min(5, len(r.TopIPs))] {
		top = append(top, fmt.Sprintf("%s ×%s", ip.IP, num(ip.Count)))
	}
	s := "**Unique IPs:** " + n
	if len(top) > 0 {
		s += "; most seen: " + strings.Join(top, ", ")
	}
	return s
}

func (r *Report) traceLine() string {
	s := fmt.Sprintf("**Stack traces:** %s records carried multi-line traces (%s lines)", Thousands(r.MultilineEvents), Thousands(r.ContinuationLines))
	var top []string
	for _, t := range r.TraceTemplates[:min(3, len(r.TraceTemplates))] {
		top = append(top, fmt.Sprintf("%s ×%s", code(t.Template, 160), num(t.Count)))
	}
	if len(top) > 0 {
		s += "; after: " + strings.Join(top, ", ")
	}
	return s
}

func errorItem(c Cluster) string {
	var lv []string
	for l := numLevels - 1; l >= LevelWarn; l-- {
		if n := c.Levels[l]; n > 0 {
			lv = append(lv, fmt.Sprintf("%s %s", l, num(n)))
		}
	}
	s := fmt.Sprintf("- %s× %s — %s%s\n", num(c.Count), code(c.Template, digestTemplateBytes), strings.Join(lv, ", "), seen(c))
	if c.Example != "" && c.Example != c.Template {
		s += "  e.g. " + code(c.Example, digestExampleBytes) + "\n"
	}
	return s
}

func templateItem(c Cluster) string {
	return fmt.Sprintf("- %s× %s%s\n", num(c.Count), code(c.Template, digestTemplateBytes), seen(c))
}

func burstItem(bs Burst) string {
	var top []string
	for _, t := range bs.Top[:min(3, len(bs.Top))] {
		top = append(top, fmt.Sprintf("%s× %s", num(t.Count), code(t.Template, 160)))
	}
	return fmt.Sprintf("- %s (+%s): %s records, %.0f× median; mostly %s\n",
		stamp(bs.Start), shortDur(bs.Width), num(bs.Lines), bs.Ratio, strings.Join(top, ", "))
}

func seen(c Cluster) string {
	switch {
	case c.FirstSeen.IsZero():
		return ""
	case c.FirstSeen.Equal(c.LastSeen):
		return "; at " + stamp(c.FirstSeen)
	}
	return "; first " + stamp(c.FirstSeen) + ", last " + stamp(c.LastSeen)
}

// code quotes text as inline markdown code, cut to n bytes.
func code(s string, n int) string {
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > n {
		s = clip(s, n) + "…"
	}
	return "`" + s + "`"
}

func stamp(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000")
}

// shortDur prints a duration as 1d14h27m, 3m, 45s.
func shortDur(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	return b.String()
}

func num(n int) string { return Thousands(int64(n)) }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return num(n) + " " + what + "s"
}

// Thousands formats n with thousands separators: 1234567 → 1,234,567.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
