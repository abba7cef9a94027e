package persistence

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/faultmaven/faultmaven/"

// storageModules own a keyspace each. None may import another: they share
// nothing but the exported APIs the gateway and cmd wire together, so no
// module can reach into another module's keys.
var storageModules = []string{
	"gateway/auth",
	"gateway/session",
	"actors",
	"actors/evidence",
	"embed",
}

// TestArchitecture fails the build when a package outside persistence (and
// its test helpers, persistence/persisttest) imports Pebble, or when one
// storage module imports another.
func TestArchitecture(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "bin" || name == "data" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/cockroachdb/pebble") && rel != "persistence" && !strings.HasPrefix(rel, "persistence/") {
				t.Errorf("%s imports %s: only persistence may use Pebble directly", path, p)
			}
			own := moduleOf(rel)
			if own == "" || !strings.HasPrefix(p, modulePath) {
				continue
			}
			if other := moduleOf(strings.TrimPrefix(p, modulePath)); other != "" && other != own {
				t.Errorf("%s (module %s) imports %s (module %s): storage modules talk only through the gateway/cmd wiring", path, own, p, other)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d files checked: the walk is broken", checked)
	}
}

// moduleOf returns the storage module a package directory belongs to: the
// longest module path that is the directory or one of its parents. Sub-packages
// holding only wire types (…pb) belong to nobody and may be shared.
func moduleOf(dir string) string {
	if strings.HasSuffix(dir, "pb") {
		return ""
	}
	best := ""
	for _, m := range storageModules {
		if (dir == m || strings.HasPrefix(dir, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}
