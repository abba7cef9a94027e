package evidence

import (
	"context"
	"sort"
	"time"
)

// Timeline entry kinds.
const (
	EventFileStart      = "file_start"       // first timestamped line of a file
	EventFileEnd        = "file_end"         // last timestamped line
	EventErrorFirstSeen = "error_first_seen" // first occurrence of an error template
	EventErrorLastSeen  = "error_last_seen"  // last occurrence of a repeated error template
	EventBurst          = "burst"            // a window with unusually many lines or errors
)

// TimelineEntry is one dated fact found in the case's evidence.
type TimelineEntry struct {
	At       time.Time `json:"at"`
	Source   string    `json:"source"` // "evidence"
	FileID   string    `json:"file_id"`
	Filename string    `json:"filename"`
	Kind     string    `json:"kind"` // one of the Event… constants
	Text     string    `json:"text"`
}

// event is a timeline entry as stored with a file's analysis, before it is
// attributed to a file.
type event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
}

// maxEventsPerFile bounds a file's contribution to the timeline.
const maxEventsPerFile = 64

// Timeline merges the dated facts of the case's analysed files (time range
// per file, first and last sighting of error templates, bursts) in time
// order; ties keep the files' upload order. Repeated uploads of the same
// content contribute once, under the first upload.
func (s *Store) Timeline(ctx context.Context, caseID string) ([]TimelineEntry, error) {
	files, err := s.scan(ctx, caseID, false)
	if err != nil {
		return nil, err
	}
	out := []TimelineEntry{}
	for _, f := range distinct(files) {
		an, err := s.analysisOf(caseID, f.FileID)
		if err != nil {
			return nil, err
		}
		for _, e := range an.Events {
			out = append(out, TimelineEntry{
				At: e.At, Source: "evidence", FileID: f.FileID, Filename: f.Filename, Kind: e.Kind, Text: e.Text,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
