package index

import (
	"slices"
	"testing"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ...   ", nil},
		{"OOMKilled", []string{"oomkilled", "oom", "kill"}},
		{"CrashLoopBackOff", []string{"crashloopbackoff", "crash", "loop", "back", "off"}},
		{"HTTP 502 Bad Gateway", []string{"http", "502", "bad", "gateway"}},
		{"k8s", []string{"k8s"}},
		{"IPv4 and http2", []string{"ipv4", "http2"}},
		{"getURL", []string{"geturl", "get", "url"}},
		{"nginx.conf", []string{"nginx.conf", "nginx", "conf"}},
		{"edit nginx.conf.", []string{"edit", "nginx.conf", "nginx", "conf"}},
		{"/etc/nginx/nginx.conf", []string{"etc/nginx/nginx.conf", "etc", "nginx", "nginx", "conf"}},
		{"max_connections", []string{"max_connections", "max", "connection"}},
		{"kube-apiserver", []string{"kube-apiserver", "kub", "apiserver"}},
		{"10.0.0.1:8080", []string{"10.0.0.1:8080", "10", "8080"}},
		{"https://example.com/a", []string{"http", "example.com/a", "exampl", "com"}},
		{"--max-old-space-size=4096", []string{"max-old-space-size", "max", "old", "spac", "siz", "4096"}},
		{"The pods are restarting.", []string{"pod", "restart"}},
		{"Connection refused!", []string{"connection", "refus"}},
		{"cached caching caches cache", []string{"cach", "cach", "cach", "cach"}},
		{"retries retried retry", []string{"retry", "retry", "retry"}},
		{"stopped running processes", []string{"stop", "run", "process"}},
		{"status redis analysis", []string{"status", "redis", "analysis"}},
		{"don't", []string{"dont"}},
		{"not found, out of memory", []string{"not", "found", "out", "memory"}},
		{"a b c x1", []string{"x1"}},
		{"Größe Überlauf", []string{"größe", "überlauf"}},
		{"error:timeout", []string{"error:timeout", "error", "timeout"}},
		{"a..b", nil},
		{"sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", []string{"sha256", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
	}
	for _, tt := range tests {
		got := tokenize(tt.in, nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("tokenize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStem(t *testing.T) {
	// Forms of one word must meet; distinct words must not collapse.
	same := [][]string{
		{"restart", "restarts", "restarted", "restarting"},
		{"pod", "pods"},
		{"fail", "fails", "failed", "failing"},
		{"kill", "kills", "killed", "killing"},
		{"evict", "evicts", "evicted", "evicting"},
		{"node", "nodes"},
		{"service", "services"},
		{"policy", "policies"},
		{"timeout", "timeouts"},
		{"class", "classes"},
		{"time", "timed", "timing", "times"},
	}
	for _, forms := range same {
		for _, f := range forms[1:] {
			if stem(f) != stem(forms[0]) {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: want equal", f, stem(f), forms[0], stem(forms[0]))
			}
		}
	}
	distinct := [][2]string{{"string", "str"}, {"status", "statu"}, {"ping", "p"}, {"address", "addres"}}
	for _, d := range distinct {
		if stem(d[0]) == d[1] {
			t.Errorf("stem(%q) = %q, want it left alone", d[0], stem(d[0]))
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"OOMKilled nginx.conf", "a-b_c.d/e:f", "’'", "ÀÉÎ", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range tokenize(s, nil) {
			if tok == "" {
				t.Fatalf("empty token from %q", s)
			}
		}
	})
}
