package evidence

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/faultmaven/faultmaven/actors/evidence/loginsight"
)

// Bounds on what one file adds to the timeline.
const (
	maxTimelineTemplates = 20  // error templates, each with first and last sighting
	maxTemplateText      = 200 // bytes of a template in an entry's text
)

// reportFacts takes from a loginsight report what the file record and the
// timeline keep: time range, error rate, template count and dated events
// (start and end of the log, first and last sighting of the worst
// templates, bursts).
func reportFacts(rep *loginsight.Report) facts {
	fx := facts{errorRate: rep.ErrorRate, templates: rep.TemplatesTotal}
	if !rep.Start.IsZero() && !rep.End.IsZero() {
		first, last := rep.Start.UTC(), rep.End.UTC()
		fx.first, fx.last = &first, &last
		fx.events = append(fx.events,
			event{At: first, Kind: EventFileStart, Text: fmt.Sprintf("log starts (%s records, %s timestamps)",
				loginsight.Thousands(rep.Events), rep.TimestampFormat)},
			event{At: last, Kind: EventFileEnd, Text: "log ends"},
		)
	}

	type ranked struct {
		c     loginsight.Cluster
		worst loginsight.Level
	}
	var bad []ranked
	for _, c := range rep.ErrorTemplates {
		if c.FirstSeen.IsZero() {
			continue // no timestamps: nothing to place on a timeline
		}
		bad = append(bad, ranked{c: c, worst: dominantBadLevel(c.Levels)})
	}
	// Errors before warnings, then the most frequent.
	slices.SortStableFunc(bad, func(a, b ranked) int {
		if c := cmp.Compare(b.worst, a.worst); c != 0 {
			return c
		}
		return cmp.Compare(b.c.Count, a.c.Count)
	})
	for _, r := range bad[:min(len(bad), maxTimelineTemplates)] {
		tmpl := cutRunes(r.c.Template, maxTemplateText)
		fx.events = append(fx.events, event{At: r.c.FirstSeen.UTC(), Kind: EventErrorFirstSeen,
			Text: fmt.Sprintf("first %s: %s (%s× in all)", r.worst, tmpl, loginsight.Thousands(int64(r.c.Count)))})
		if r.c.Count > 1 && r.c.LastSeen.After(r.c.FirstSeen) {
			fx.events = append(fx.events, event{At: r.c.LastSeen.UTC(), Kind: EventErrorLastSeen,
				Text: fmt.Sprintf("last %s: %s", r.worst, tmpl)})
		}
	}

	for _, b := range rep.Bursts {
		text := fmt.Sprintf("burst: %s records in %s (%.1f× the usual rate)", loginsight.Thousands(int64(b.Lines)), shortDuration(b.Width), b.Ratio)
		if len(b.Top) > 0 {
			text += "; mostly " + cutRunes(b.Top[0].Template, maxTemplateText)
		}
		fx.events = append(fx.events, event{At: b.Start.UTC(), Kind: EventBurst, Text: text})
	}
	return fx
}

// dominantBadLevel is the most frequent level at WARN or worse (the worse
// one on a tie).
func dominantBadLevel(levels map[loginsight.Level]int) loginsight.Level {
	best, n := loginsight.LevelWarn, 0
	for l, c := range levels {
		if l >= loginsight.LevelWarn && (c > n || (c == n && l > best)) {
			best, n = l, c
		}
	}
	return best
}

// shortDuration writes "1m", "2h", "90s".
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
