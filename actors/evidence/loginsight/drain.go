package loginsight

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MinerConfig tunes the template miner. The zero value gives the defaults,
// which are the one configuration used for every log (no per-source
// tuning); out-of-range fields are replaced by their defaults.
type MinerConfig struct {
	// Depth of the parse tree counting the root and the token-count layer,
	// as in Drain: Depth-2 leading tokens route a line to its leaf.
	// Default 4.
	Depth int
	// Similarity is the share of a template's constant tokens a line must
	// repeat (position by position) to join it. Default 0.5.
	Similarity float64
	// MaxChildren caps the children of a tree node; further distinct
	// leading tokens share the node's wildcard child. Default 100.
	MaxChildren int
	// MaxClusters caps the clusters (as reported by Clusters) kept in
	// memory; beyond it the rarest tenth of the groups is evicted and
	// counted. Default 10,000.
	MaxClusters int
	// MaxTokens caps the tokens of a line; the rest becomes one wildcard.
	// Default 100.
	MaxTokens int
	// MaxExampleBytes caps the stored example line. Default 256.
	MaxExampleBytes int
	// EnumValues: a position the tree generalised from a word keeps
	// being reported as separate clusters while it has held at most this
	// many distinct words (see Miner). Default 4; negative disables it.
	EnumValues int
}

func (c MinerConfig) withDefaults() MinerConfig {
	if c.Depth < 3 || c.Depth > 16 {
		c.Depth = 4
	}
	if !(c.Similarity > 0 && c.Similarity <= 1) {
		c.Similarity = 0.5
	}
	if c.MaxChildren <= 0 {
		c.MaxChildren = 100
	}
	if c.MaxClusters <= 0 {
		c.MaxClusters = 10_000
	}
	if c.MaxTokens <= 1 {
		c.MaxTokens = 100
	}
	if c.MaxExampleBytes <= 0 {
		c.MaxExampleBytes = 256
	}
	if c.EnumValues == 0 {
		c.EnumValues = 4
	}
	return c
}

const (
	// maxEnumPositions bounds the positions of one group tracked as
	// possible enumerations.
	maxEnumPositions = 4
	// maxVariants bounds the clusters one group is reported as.
	maxVariants = 32
	// maxLeafGroups bounds the groups compared in one leaf: beyond it the
	// rarest is evicted, so garbage input cannot make matching quadratic.
	maxLeafGroups = 200
)

// Cluster is one mined template and what was seen of it.
type Cluster struct {
	// ID is the group the miner's Add returned for the cluster's lines.
	// A group is reported as several clusters (same ID, different
	// Template) while a generalised position held only a few words.
	ID        int           `json:"id"`
	Template  string        `json:"template"`
	Count     int           `json:"count"`
	FirstSeen time.Time     `json:"first_seen,omitzero"`
	LastSeen  time.Time     `json:"last_seen,omitzero"`
	Levels    map[Level]int `json:"levels,omitempty"`
	Example   string        `json:"example"`
}

// Miner groups log messages into templates, Drain style: a line is masked
// (see masker), routed through a fixed-depth tree by its token count and
// leading tokens, and joins the most similar template in that leaf when at
// least Similarity of the template's constant tokens match; joining turns
// the differing positions into wildcards. Otherwise it starts a new group.
//
// Beyond Drain, a position generalised from plain words (not masked data)
// is watched: while it has held at most EnumValues distinct words, each
// combination is reported as its own cluster. Enumerations ("state
// FOLLOWING" vs "LOOKING", "Bye Bye [preauth]" vs "disconnected by user")
// stay apart, while a position that keeps seeing new words (user names)
// becomes a true wildcard and its clusters merge, with exact counts.
//
// A Miner is not safe for concurrent use.
type Miner struct {
	cfg     MinerConfig
	mk      *masker
	roots   map[int]*node
	groups  map[int]*group
	nextID  int
	nVar    int
	scratch []string
	keyBuf  []byte

	// EvictedGroups and EvictedLines count what the caps threw away.
	EvictedGroups, EvictedLines int
}

type node struct {
	parent   *node
	key      string
	children map[string]*node
	groups   []*group
}

type group struct {
	id     int
	tokens []string
	consts int // tokens that are not Wildcard
	leaf   *node
	count  int
	enum   []enumPos
	subs   map[string]*variant
}

// enumPos is a generalised position still holding few distinct words.
type enumPos struct {
	pos  int
	vals []string
}

type variant struct {
	count       int
	first, last time.Time
	levels      [numLevels]int
	example     string
}

// NewMiner returns an empty miner.
func NewMiner(cfg MinerConfig) *Miner {
	return &Miner{
		cfg:    cfg.withDefaults(),
		mk:     newMasker(),
		roots:  make(map[int]*node),
		groups: make(map[int]*group),
	}
}

// Add mines one message and returns the ID of the group it joined.
func (m *Miner) Add(content string) int {
	return m.Observe(content, time.Time{}, LevelUnknown)
}

// Observe is Add for a message with a known timestamp (zero if none) and
// level, which feed the cluster's FirstSeen/LastSeen and Levels.
func (m *Miner) Observe(content string, ts time.Time, lvl Level) int {
	// Make room first: this call adds at most one cluster, and evicting
	// before the descent never detaches the leaf we are about to use.
	if m.nVar >= m.cfg.MaxClusters {
		m.evict()
	}
	toks := m.mk.tokens(content, m.scratch, m.cfg.MaxTokens)
	m.scratch = toks
	leaf := m.descend(toks)
	g := m.best(leaf, toks)
	if g == nil {
		g = m.newGroup(leaf, toks)
	} else {
		m.merge(g, toks)
	}
	g.count++
	key := m.key(g, toks)
	v := g.subs[string(key)]
	for v == nil && len(g.subs) >= min(maxVariants, m.cfg.MaxClusters) && len(g.enum) > 0 {
		m.untrackWidest(g)
		key = m.key(g, toks)
		v = g.subs[string(key)]
	}
	if v == nil {
		v = &variant{example: clip(content, m.cfg.MaxExampleBytes)}
		g.subs[string(key)] = v
		m.nVar++
	}
	v.count++
	if lvl < numLevels {
		v.levels[lvl]++
	}
	if !ts.IsZero() {
		if v.first.IsZero() || ts.Before(v.first) {
			v.first = ts
		}
		if ts.After(v.last) {
			v.last = ts
		}
	}
	return g.id
}

// TemplateOf returns the template of the cluster a message added earlier
// with Add (which returned id) belongs to now, or "" if the group is gone.
func (m *Miner) TemplateOf(id int, content string) string {
	g := m.groups[id]
	if g == nil {
		return ""
	}
	toks := m.mk.tokens(content, m.scratch, m.cfg.MaxTokens)
	m.scratch = toks
	if len(toks) != len(g.tokens) {
		return strings.Join(g.tokens, " ")
	}
	out := slices.Clone(g.tokens)
	for _, e := range g.enum {
		out[e.pos] = toks[e.pos]
	}
	return strings.Join(out, " ")
}

// GroupTemplate returns the fully generalised template of a group (all
// its clusters in one), or "" if the group is gone.
func (m *Miner) GroupTemplate(id int) string {
	if g := m.groups[id]; g != nil {
		return strings.Join(g.tokens, " ")
	}
	return ""
}

// Len returns the number of clusters Clusters would report.
func (m *Miner) Len() int { return m.nVar }

// Clusters returns every cluster, most frequent first.
func (m *Miner) Clusters() []Cluster {
	out := make([]Cluster, 0, m.nVar)
	tmpl := make([]string, 0, 16)
	for _, g := range m.groups {
		for key, v := range g.subs {
			tmpl = append(tmpl[:0], g.tokens...)
			if len(g.enum) > 0 {
				vals := strings.Split(key, "\x00")
				for i, e := range g.enum {
					if i < len(vals) {
						tmpl[e.pos] = vals[i]
					}
				}
			}
			c := Cluster{ID: g.id, Template: strings.Join(tmpl, " "), Count: v.count,
				FirstSeen: v.first, LastSeen: v.last, Example: v.example}
			for l, n := range v.levels {
				if n > 0 {
					if c.Levels == nil {
						c.Levels = make(map[Level]int)
					}
					c.Levels[Level(l)] = n
				}
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Cluster) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Template, b.Template)
	})
	return out
}

// descend walks (and grows) the tree to the leaf for toks.
func (m *Miner) descend(toks []string) *node {
	n := m.roots[len(toks)]
	if n == nil {
		n = &node{key: "", children: map[string]*node{}}
		m.roots[len(toks)] = n
	}
	for d := 0; d < m.cfg.Depth-2 && d < len(toks); d++ {
		k := toks[d]
		if strings.Contains(k, Wildcard) {
			k = Wildcard
		}
		c := n.children[k]
		if c == nil {
			if len(n.children) >= m.cfg.MaxChildren && k != Wildcard {
				k = Wildcard
				c = n.children[k]
			}
			if c == nil {
				c = &node{parent: n, key: k, children: map[string]*node{}}
				n.children[k] = c
			}
		}
		n = c
	}
	return n
}

// best returns the leaf's group most similar to toks, if similar enough.
// Ties go to the more general template (more wildcards). A comparison stops
// as soon as the group can no longer reach the threshold or the best so
// far, which keeps floods of one-off lines cheap.
func (m *Miner) best(leaf *node, toks []string) *group {
	var (
		best     *group
		bestSim  = -1.0
		bestWild = -1
	)
	for _, g := range leaf.groups {
		consts := g.consts
		floor := max(m.cfg.Similarity, bestSim)
		// most mismatches g can take and still reach floor
		allowed := consts - int(math.Ceil(floor*float64(consts)-1e-9))
		misses := 0
		for i, t := range g.tokens {
			if t != Wildcard && t != toks[i] {
				if misses++; misses > allowed {
					break
				}
			}
		}
		if misses > allowed {
			continue
		}
		sim := 1.0
		if consts > 0 {
			sim = float64(consts-misses) / float64(consts)
		}
		wild := len(g.tokens) - consts
		if sim > bestSim || (sim == bestSim && wild > bestWild) {
			best, bestSim, bestWild = g, sim, wild
		}
	}
	if best == nil || bestSim < m.cfg.Similarity {
		return nil
	}
	return best
}

func (m *Miner) newGroup(leaf *node, toks []string) *group {
	if len(leaf.groups) >= maxLeafGroups {
		victim := leaf.groups[0]
		for _, g := range leaf.groups[1:] {
			if g.count < victim.count {
				victim = g
			}
		}
		m.drop(victim)
	}
	m.nextID++
	g := &group{id: m.nextID, tokens: make([]string, len(toks)), leaf: leaf, subs: map[string]*variant{}}
	for i, t := range toks {
		g.tokens[i] = strings.Clone(t)
		if t != Wildcard {
			g.consts++
		}
	}
	m.groups[g.id] = g
	leaf.groups = append(leaf.groups, g)
	return g
}

// merge generalises g's template with toks and updates the enumerations.
func (m *Miner) merge(g *group, toks []string) {
	enumOn := m.cfg.EnumValues > 0
	var drop []int // indexes into g.enum that stopped being enumerations
	for ei := range g.enum {
		e := &g.enum[ei]
		v := toks[e.pos]
		if strings.Contains(v, Wildcard) {
			drop = append(drop, ei)
			continue
		}
		if !slices.Contains(e.vals, v) {
			if len(e.vals) >= m.cfg.EnumValues {
				drop = append(drop, ei)
				continue
			}
			e.vals = append(e.vals, strings.Clone(v))
		}
	}
	if len(drop) > 0 {
		m.untrack(g, drop)
	}
	for i, t := range g.tokens {
		if t == Wildcard || t == toks[i] {
			continue
		}
		g.tokens[i] = Wildcard
		g.consts--
		if !enumOn || len(g.enum) >= maxEnumPositions || strings.Contains(t, Wildcard) || strings.Contains(toks[i], Wildcard) {
			continue
		}
		g.enum = append(g.enum, enumPos{pos: i, vals: []string{t, strings.Clone(toks[i])}})
		// every line so far had t here: extend the variant keys with it
		subs := make(map[string]*variant, len(g.subs))
		for k, v := range g.subs {
			if len(g.enum) > 1 {
				subs[k+"\x00"+t] = v
			} else {
				subs[t] = v
			}
		}
		g.subs = subs
	}
}

// key builds the variant key of toks in g: its words at the enum positions.
func (m *Miner) key(g *group, toks []string) []byte {
	b := m.keyBuf[:0]
	for i, e := range g.enum {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, toks[e.pos]...)
	}
	m.keyBuf = b
	return b
}

// untrackWidest stops watching g's enumeration with the most values.
func (m *Miner) untrackWidest(g *group) {
	if len(g.enum) == 0 {
		return
	}
	w := 0
	for i, e := range g.enum {
		if len(e.vals) > len(g.enum[w].vals) {
			w = i
		}
	}
	m.untrack(g, []int{w})
}

// untrack turns enumerations into plain wildcards, merging the variants
// that differed only there (counts add, first/last widen).
func (m *Miner) untrack(g *group, idx []int) {
	gone := make([]bool, len(g.enum))
	for _, i := range idx {
		gone[i] = true
	}
	subs := make(map[string]*variant, len(g.subs))
	for k, v := range g.subs {
		parts := strings.Split(k, "\x00")
		kept := parts[:0]
		for i, p := range parts {
			if i < len(gone) && !gone[i] {
				kept = append(kept, p)
			}
		}
		nk := strings.Join(kept, "\x00")
		if old := subs[nk]; old != nil {
			old.absorb(v)
			m.nVar--
		} else {
			subs[nk] = v
		}
	}
	g.subs = subs
	enum := g.enum[:0]
	for i, e := range g.enum {
		if !gone[i] {
			enum = append(enum, e)
		}
	}
	g.enum = enum
}

func (v *variant) absorb(o *variant) {
	v.count += o.count
	for i := range v.levels {
		v.levels[i] += o.levels[i]
	}
	if !o.first.IsZero() && (v.first.IsZero() || o.first.Before(v.first)) {
		v.first = o.first
	}
	if o.last.After(v.last) {
		v.last = o.last
	}
}

// evict drops the rarest tenth of the groups (and more while still at the
// cap), so a flood of one-off lines costs O(log n) per line, not a scan.
func (m *Miner) evict() {
	all := make([]*group, 0, len(m.groups))
	for _, g := range m.groups {
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *group) int {
		if c := cmp.Compare(a.count, b.count); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	n := max(1, len(all)/10)
	for _, g := range all[:min(n, len(all))] {
		m.drop(g)
	}
	for _, g := range all[min(n, len(all)):] {
		if m.nVar < m.cfg.MaxClusters {
			break
		}
		m.drop(g)
	}
}

// drop removes a group and prunes the tree branch it leaves empty.
func (m *Miner) drop(g *group) {
	m.EvictedGroups++
	m.EvictedLines += g.count
	m.nVar -= len(g.subs)
	delete(m.groups, g.id)
	leaf := g.leaf
	leaf.groups = slices.DeleteFunc(leaf.groups, func(x *group) bool { return x == g })
	for n := leaf; n != nil && len(n.groups) == 0 && len(n.children) == 0; {
		p := n.parent
		if p == nil {
			for k, r := range m.roots {
				if r == n {
					delete(m.roots, k)
				}
			}
			break
		}
		delete(p.children, n.key)
		n = p
	}
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}
