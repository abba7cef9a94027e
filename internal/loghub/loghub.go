// Package loghub finds the loghub sample logs (HDFS, OpenSSH, Zookeeper,
// 2,000 lines each with their ground truth) that tests read. The samples
// are shared, read-only data kept outside the repository: CI puts the
// shared folder beside the clone, and the Makefile exports its path as
// FM_LOGHUB.
package loghub

import (
	"os"
	"path/filepath"
	"testing"
)

// fallback is the workspace's copy, used when neither FM_LOGHUB nor a
// shared folder beside the repository is found.
const fallback = "/work/shared/data/loghub"

// Dir returns the directory holding the samples: FM_LOGHUB, else a
// shared/data/loghub folder beside the working directory or one of its
// parents (where CI keeps it beside the clone), else the workspace's copy.
func Dir() string {
	if d := os.Getenv("FM_LOGHUB"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; {
			root := filepath.Join(filepath.Dir(dir), "shared", "data", "loghub")
			if st, err := os.Stat(root); err == nil && st.IsDir() {
				return root
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return fallback
}

// File returns the path of rel ("HDFS/HDFS_2k.log") under Dir, and skips
// the test when the sample is not there.
func File(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(Dir(), rel)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("loghub sample %s not available: %v", rel, err)
	}
	return p
}
