package evidence

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/evidence/loginsight"
	"github.com/faultmaven/faultmaven/internal/loghub"
)

// hdfsSample is a read-only loghub sample.
var hdfsSample = filepath.Join(loghub.Dir(), "HDFS", "HDFS_2k.log")

// putSample uploads a read-only sample file, streaming it.
func putSample(t *testing.T, h *harness, caseID, path string) File {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Skipf("sample not available: %v", err)
	}
	defer src.Close()
	f, err := h.Put(context.Background(), Upload{CaseID: caseID, Filename: path, Body: src})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTimelineHDFS(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	hdfs := putSample(t, h, caseA, hdfsSample)
	if hdfs.Kind != KindLogs || hdfs.AnalysisStatus != AnalysisCompleted || hdfs.Lines != 2000 ||
		hdfs.FirstTS == nil || hdfs.LastTS == nil || !hdfs.FirstTS.Before(*hdfs.LastTS) || hdfs.Filename != "HDFS_2k.log" {
		t.Fatalf("HDFS file: %+v", hdfs)
	}
	if !strings.HasPrefix(hdfs.Summary, "2,000 lines, ") || !strings.Contains(hdfs.Summary, "% errors") ||
		!strings.Contains(hdfs.Summary, "templates") {
		t.Fatalf("summary %q", hdfs.Summary)
	}
	app := h.put(t, caseA, "app.log", sampleLog4j)
	h.put(t, caseA, "app-again.log", sampleLog4j) // a duplicate adds nothing
	h.put(t, caseA, "nginx.conf", sampleNginx)    // no timestamps, no entries
	h.put(t, caseB, "other.log", sampleKlog)      // another case

	tl, err := h.Timeline(ctx, caseA)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) < 4 {
		t.Fatalf("only %d entries: %+v", len(tl), tl)
	}
	perFile := map[string]map[string]int{}
	for i, e := range tl {
		if i > 0 && e.At.Before(tl[i-1].At) {
			t.Fatalf("entry %d (%s) before entry %d (%s)", i, e.At, i-1, tl[i-1].At)
		}
		if e.Source != "evidence" || e.Text == "" || e.Filename == "" {
			t.Fatalf("entry %+v", e)
		}
		if perFile[e.FileID] == nil {
			perFile[e.FileID] = map[string]int{}
		}
		perFile[e.FileID][e.Kind]++
	}
	if len(perFile) != 2 || perFile[hdfs.FileID] == nil || perFile[app.FileID] == nil {
		t.Fatalf("entries by file: %v", perFile)
	}
	for id, kinds := range perFile {
		if kinds[EventFileStart] != 1 || kinds[EventFileEnd] != 1 {
			t.Fatalf("file %s: %v", id, kinds)
		}
	}
	if first := tl[0]; first.FileID != hdfs.FileID || first.Kind != EventFileStart || !first.At.Equal(*hdfs.FirstTS) {
		t.Fatalf("first entry %+v, want the start of the 2008 HDFS log", first)
	}
	if perFile[app.FileID][EventErrorFirstSeen] == 0 {
		t.Fatalf("no error sighting from the log4j sample: %v", perFile[app.FileID])
	}
	if other, err := h.Timeline(ctx, caseB); err != nil || len(other) == 0 || other[0].FileID == hdfs.FileID {
		t.Fatalf("case B timeline: %v, %v", other, err)
	}

	ds, err := h.Digests(ctx, caseA)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[len(ds)-1].FileID != hdfs.FileID || ds[len(ds)-1].Digest == "" {
		t.Fatalf("Digests: %d files, last %+v", len(ds), ds[len(ds)-1])
	}
	if len(ds[len(ds)-1].Digest) > DefaultDigestBudget*4 {
		t.Fatalf("digest of %d bytes for a budget of %d characters", len(ds[len(ds)-1].Digest), DefaultDigestBudget)
	}
}

func TestAnalysisFailure(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	defer func(orig func(io.Reader, loginsight.Options) (*loginsight.Report, error)) { logAnalyzer = orig }(logAnalyzer)

	logAnalyzer = func(io.Reader, loginsight.Options) (*loginsight.Report, error) {
		return nil, errors.New("template tree exploded")
	}
	f := h.put(t, caseA, "app.log", sampleLog4j)
	if f.AnalysisStatus != AnalysisFailed || !strings.Contains(f.Summary, "template tree exploded") {
		t.Fatalf("failed analysis: %+v", f)
	}
	if _, err := h.Read(ctx, caseA, f.FileID, 1, 1); err != nil {
		t.Fatalf("file not readable after a failed analysis: %v", err)
	}

	logAnalyzer = func(io.Reader, loginsight.Options) (*loginsight.Report, error) { panic("bug") }
	g := h.put(t, caseA, "other.log", sampleKlog)
	if g.AnalysisStatus != AnalysisFailed || !strings.Contains(g.Summary, "internal error") {
		t.Fatalf("panicking analysis: %+v", g)
	}
	if list, _ := h.List(ctx, caseA); len(list) != 2 {
		t.Fatalf("files: %+v", list)
	}
}
