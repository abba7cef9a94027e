package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
)

// TurnResponse.attachments_processed (contract §5.2, §8 #13/#14). The first
// answer describes the files the request stored; a replay of its
// Idempotency-Key and the job result rebuild the same list from durable
// state alone (the case's EvidenceAdded events name the files, the evidence
// store describes them), so the answer is the same after a restart.

// Source types the extension tests for (ChatWindow.tsx); every other file
// shows its sniffed kind (logs, metrics, configuration, …).
const (
	sourceTypePaste       = "text_paste"
	sourceTypePageCapture = "page_capture"
)

// attachmentResult is one entry of attachments_processed.
type attachmentResult struct {
	Filename         string    `json:"filename"`
	FileSize         int64     `json:"file_size"`
	SourceType       string    `json:"source_type"`
	EvidenceID       string    `json:"evidence_id"`
	FileID           string    `json:"file_id"`
	ProcessingStatus string    `json:"processing_status"`
	UploadSource     string    `json:"upload_source"`
	UploadedAt       time.Time `json:"uploaded_at"`
	DuplicateOf      string    `json:"duplicate_of,omitempty"`
	DuplicateTurn    int       `json:"duplicate_turn,omitempty"`
}

// sourceType is the extension's source_type for a file.
func sourceType(uploadSource, kind string) string {
	switch uploadSource {
	case evidence.SourcePaste:
		return sourceTypePaste
	case evidence.SourcePageCapture:
		return sourceTypePageCapture
	}
	return kind
}

// attachmentOf describes a stored file. The file is its own evidence item,
// so evidence_id and file_id are the same id.
func attachmentOf(f evidence.File) attachmentResult {
	return attachmentResult{
		Filename: f.Filename, FileSize: f.SizeBytes, SourceType: sourceType(f.UploadSource, string(f.Kind)),
		EvidenceID: f.FileID, FileID: f.FileID, ProcessingStatus: f.AnalysisStatus,
		UploadSource: f.UploadSource, UploadedAt: f.UploadedAt,
		DuplicateOf: f.DuplicateOf, DuplicateTurn: f.DuplicateTurn,
	}
}

// attachmentsOf describes files in order; never nil.
func attachmentsOf(files []evidence.File) []attachmentResult {
	out := make([]attachmentResult, 0, len(files))
	for _, f := range files {
		out = append(out, attachmentOf(f))
	}
	return out
}

// evidenceRefs are the files as the case records them with the message.
func evidenceRefs(files []evidence.File) []actors.EvidenceRef {
	if len(files) == 0 {
		return nil
	}
	out := make([]actors.EvidenceRef, 0, len(files))
	for _, f := range files {
		out = append(out, evidenceRef(f))
	}
	return out
}

// evidenceRef is one file as the case records it with the message.
func evidenceRef(f evidence.File) actors.EvidenceRef {
	return actors.EvidenceRef{
		FileID: f.FileID, Filename: f.Filename, SHA256: f.SHA256, SizeBytes: f.SizeBytes,
		Kind: string(f.Kind), UploadSource: f.UploadSource, Summary: f.Summary,
	}
}

// turnAttachments rebuilds attachments_processed of a turn from the case's
// log, reading events after since (0, or a seq before the turn's user
// message when it is known). A file deleted since is described from its
// event, with processing_status "deleted".
func (s *Server) turnAttachments(ctx context.Context, owner, caseID string, since uint64, turn int) ([]attachmentResult, error) {
	c := &turnLog{turn: turn}
	if _, err := s.cases.Subscribe(ctx, owner, caseID, since, c); err != nil && !errors.Is(err, actors.ErrSlowSubscriber) {
		return nil, err
	}
	at, events := c.result()
	out := make([]attachmentResult, 0, len(events))
	for _, e := range events {
		f, err := s.evidence.Get(ctx, caseID, e.EvidenceID)
		switch {
		case err == nil:
			out = append(out, attachmentOf(f))
		case errors.Is(err, evidence.ErrNotFound):
			out = append(out, attachmentResult{
				Filename: e.Filename, FileSize: e.Size, SourceType: sourceType(e.UploadSource, e.SourceType),
				EvidenceID: e.EvidenceID, FileID: e.EvidenceID, ProcessingStatus: "deleted",
				UploadSource: e.UploadSource, UploadedAt: at,
			})
		default:
			return nil, err
		}
	}
	return out, nil
}

// evidenceEvent is the data of an "evidence" event frame.
type evidenceEvent struct {
	EvidenceID   string `json:"evidence_id"`
	Filename     string `json:"filename"`
	Size         int64  `json:"size"`
	SourceType   string `json:"source_type"`
	UploadSource string `json:"upload_source"`
	TurnNumber   int    `json:"turn_number"`
}

// turnLog is a Subscriber that finds the user message of one turn in a
// replay, collects the evidence events written with it (they follow it in
// the same batch), and then refuses the next frame, which ends the replay
// without a live subscription (the case drops a refusing subscriber).
type turnLog struct {
	turn int

	mu     sync.Mutex
	found  bool
	closed bool
	at     time.Time
	events []evidenceEvent
}

func (c *turnLog) Deliver(f actors.Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || f.Type != "event" { // "subscribed": the log ended
		c.closed = true
		return false
	}
	if !c.found {
		if f.Kind == "message" {
			var m struct {
				Role       string    `json:"role"`
				TurnNumber int       `json:"turn_number"`
				CreatedAt  time.Time `json:"created_at"`
			}
			if json.Unmarshal(f.Data, &m) == nil && m.Role == "user" && m.TurnNumber == c.turn {
				c.found, c.at = true, m.CreatedAt
			}
		}
		return true
	}
	if f.Kind == "evidence" {
		var e evidenceEvent
		if json.Unmarshal(f.Data, &e) == nil && e.TurnNumber == c.turn {
			c.events = append(c.events, e)
			return true
		}
	}
	c.closed = true
	return false
}

func (c *turnLog) result() (time.Time, []evidenceEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at, c.events
}
