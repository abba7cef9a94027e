package loginsight

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestMaskTokens(t *testing.T) {
	tests := []struct{ in, want string }{
		{"PacketResponder 1 for block blk_38865049064139660 terminating", "PacketResponder <*> for block blk_<*> terminating"},
		{"block blk_-6952295868487656571", "block blk_<*>"},
		{"Received connection request /10.10.34.11:45307", "Received connection request /<*>"},
		{"10.251.30.85:50010:Got exception", "<*>:Got exception"},
		{"session 0x14ed93111f20027 timeout 10000ms", "session <*> timeout <*>"},
		{"snapshot b00000084 and 300000dcd", "snapshot <*> and <*>"},
		{"id 123e4567-e89b-12d3-a456-426614174000 ok", "id <*> ok"},
		{"from fe80::1ff:fe23:4567:890a port 22", "from <*> port <*>"},
		{"from ::ffff:abcd port 22", "from <*> port <*>"},
		{"file /var/log/app/server.log opened", "file <*> opened"},
		{"load ./conf/app.yaml", "load <*>"},
		{`open C:\logs\a.txt`, "open <*>"},
		{"GET https://example.com/a?b=1 200 in 5ms", "GET <*> in <*>"}, // adjacent equal masks collapse
		{"uid=0 euid=0 tty=ssh ruser= rhost=5.36.59.76.dynamic-dsl", "uid=<*> euid=<*> tty=ssh ruser= rhost=<*>"},
		{"state=RUNNING enabled=false", "state=RUNNING enabled=false"},
		{"by (uid=0)", "by (uid=<*>)"},
		{"took 1.5s then 250ms then 2h3m", "took <*> then <*> then <*>"},
		{"delete blk_1 blk_2 blk_3 done", "delete blk_<*> done"},
		{"dropping the connection: (2, 1)", "dropping the connection: (<*>, <*>)"},
		{"zookeeper/version-2 sshd[24200]: ssh2 amd64", "zookeeper/version-<*> sshd[<*>]: ssh2 amd64"},
		{"user123456 logged in", "<*> logged in"},
		{"at 2013-06-10 17:26 GMT", "at <*> GMT"},
		{"txntype:-1 reqpath:n/a", "txntype:<*> reqpath:n/a"},
		{"ratio -0.5 and 3.14", "ratio <*> and <*>"},
		{"plain words stay plain", "plain words stay plain"},
		{"  spaced \t out\x00words  ", "spaced out words"},
	}
	mk := newMasker()
	for _, tt := range tests {
		got := strings.Join(mk.tokens(tt.in, nil, 100), " ")
		if got != tt.want {
			t.Errorf("mask(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
	if got := mk.tokens(strings.Repeat("a ", 500), nil, 10); len(got) != 10 || got[9] != Wildcard {
		t.Errorf("token cap: %d tokens, last %q", len(got), got[len(got)-1])
	}
}

func templates(m *Miner) map[string]int {
	out := map[string]int{}
	for _, c := range m.Clusters() {
		out[c.Template] += c.Count
	}
	return out
}

func TestMinerSameTemplateDifferentValues(t *testing.T) {
	m := NewMiner(MinerConfig{})
	ids := map[int]bool{}
	for i := range 50 {
		ids[m.Add(fmt.Sprintf("Connection from 10.0.%d.%d port %d closed after %dms", i, i*3, 40000+i, i*7))] = true
	}
	got := templates(m)
	want := map[string]int{"Connection from <*> port <*> closed after <*>": 50}
	if len(ids) != 1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ids %v, templates %v; want one cluster %v", ids, got, want)
	}
}

func TestMinerStructurallyDifferent(t *testing.T) {
	m := NewMiner(MinerConfig{})
	lines := []string{
		"disk full on /dev/sda1",
		"cache miss for key users:42",
		"cache miss for key users:43",
		"Starting service api",
		"Stopping service api now",
		"worker 3 crashed: out of memory",
		"worker 4 crashed: out of memory",
	}
	for _, l := range lines {
		m.Add(l)
	}
	got := templates(m)
	want := map[string]int{
		"disk full on <*>":                  1,
		"cache miss for key users:<*>":      2,
		"Starting service api":              1,
		"Stopping service api now":          1,
		"worker <*> crashed: out of memory": 2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("templates\n got %v\nwant %v", got, want)
	}
}

// A generalised word position stays split while it holds few words
// (an enumeration) and merges, with exact counts, once it holds many.
func TestMinerEnumerations(t *testing.T) {
	m := NewMiner(MinerConfig{})
	states := []string{"LOOKING", "FOLLOWING", "LEADING"}
	for i := range 30 {
		m.Add(fmt.Sprintf("peer %d changed state to %s after %d rounds", i, states[i%3], i))
	}
	got := templates(m)
	if len(got) != 3 {
		t.Fatalf("want 3 clusters for 3 states, got %v", got)
	}
	for _, s := range states {
		if got["peer <*> changed state to "+s+" after <*> rounds"] != 10 {
			t.Fatalf("state %s: %v", s, got)
		}
	}
	// user names: past EnumValues distinct words the position is a variable
	m = NewMiner(MinerConfig{})
	users := []string{"root", "alice", "bob", "carol", "dave", "erin"}
	var id int
	for i := range 60 {
		id = m.Add(fmt.Sprintf("session opened for user %s by uid %d", users[i%len(users)], i))
	}
	got = templates(m)
	if len(got) != 1 || got["session opened for user <*> by uid <*>"] != 60 {
		t.Fatalf("user names should merge into one cluster of 60: %v", got)
	}
	if tpl := m.TemplateOf(id, "session opened for user zed by uid 1"); tpl != "session opened for user <*> by uid <*>" {
		t.Fatalf("TemplateOf = %q", tpl)
	}
	// disabled: plain Drain merges the states too
	m = NewMiner(MinerConfig{EnumValues: -1})
	for i := range 30 {
		m.Add(fmt.Sprintf("peer %d changed state to %s after %d rounds", i, states[i%3], i))
	}
	if got := templates(m); len(got) != 1 {
		t.Fatalf("with enumerations off want 1 cluster, got %v", got)
	}
}

func TestMinerObserveStats(t *testing.T) {
	m := NewMiner(MinerConfig{})
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m.Observe("job 1 failed", t0.Add(time.Minute), LevelError)
	m.Observe("job 2 failed", t0, LevelWarn)
	m.Observe("job 3 failed", time.Time{}, LevelError)
	cs := m.Clusters()
	if len(cs) != 1 {
		t.Fatalf("clusters %v", cs)
	}
	c := cs[0]
	if c.Count != 3 || !c.FirstSeen.Equal(t0) || !c.LastSeen.Equal(t0.Add(time.Minute)) ||
		c.Levels[LevelError] != 2 || c.Levels[LevelWarn] != 1 || c.Example != "job 1 failed" {
		t.Fatalf("cluster %+v", c)
	}
}

// Under a flood of distinct lines the miner stays within its cap, every
// Add lands in a live group, and nothing is lost from the accounting.
func TestMinerCap(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const max = 50
	m := NewMiner(MinerConfig{MaxClusters: max})
	n := 5000
	for i := range n {
		words := make([]string, 1+rng.IntN(6))
		for j := range words {
			words[j] = string(rune('a'+rng.IntN(26))) + string(rune('a'+rng.IntN(26)))
		}
		line := strings.Join(words, " ")
		id := m.Add(line)
		if m.TemplateOf(id, line) == "" {
			t.Fatalf("line %d: group %d gone right after Add", i, id)
		}
		if m.Len() > max {
			t.Fatalf("line %d: %d clusters, cap %d", i, m.Len(), max)
		}
	}
	total := m.EvictedLines
	for _, c := range m.Clusters() {
		total += c.Count
	}
	if total != n || m.EvictedGroups == 0 {
		t.Fatalf("accounted %d of %d lines (evicted groups %d)", total, n, m.EvictedGroups)
	}
}

func TestMinerExampleClipped(t *testing.T) {
	m := NewMiner(MinerConfig{MaxExampleBytes: 10})
	m.Add("héllo wörld ünïcode line")
	ex := m.Clusters()[0].Example
	if len(ex) > 10 || !strings.HasPrefix("héllo wörld ünïcode line", ex) {
		t.Fatalf("example %q", ex)
	}
}

func TestMinerLongLines(t *testing.T) {
	m := NewMiner(MinerConfig{})
	for _, unit := range []string{"1 ", "a ", "1.1.", "::", "0x", "=", "a=1 ", "/", "blk_1 ", "-", "x"} {
		line := strings.Repeat(unit, (1<<20)/len(unit))
		id := m.Add(line)
		if m.TemplateOf(id, line) == "" {
			t.Fatalf("unit %q: lost", unit)
		}
	}
}

func FuzzMiner(f *testing.F) {
	f.Add("a b c\na b d\nx 1 2\n\n")
	f.Add("state=RUNNING\nstate=FAILED\nuser root\nuser bob\nuser x\nuser y\nuser z\n")
	f.Add("\x00\xff\xfe<*> <*>\n<*>")
	f.Fuzz(func(t *testing.T, data string) {
		const max = 8
		m := NewMiner(MinerConfig{MaxClusters: max, MaxTokens: 8, Depth: 3})
		lines := strings.Split(data, "\n")
		for _, l := range lines {
			id := m.Add(l)
			if m.TemplateOf(id, l) == "" && len(m.groups[id].tokens) > 0 {
				t.Fatalf("line %q not assigned", l)
			}
			if _, ok := m.groups[id]; !ok {
				t.Fatalf("line %q: group %d missing", l, id)
			}
			if m.Len() > max {
				t.Fatalf("%d clusters over cap %d", m.Len(), max)
			}
		}
		total := m.EvictedLines
		for _, c := range m.Clusters() {
			total += c.Count
		}
		if total != len(lines) {
			t.Fatalf("accounted %d of %d lines", total, len(lines))
		}
	})
}
