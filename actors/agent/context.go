package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// The prompt is one system message (rules, status guidance, case file,
// summary of older turns, evidence digests, knowledge snippets), the most
// recent turns verbatim, and the user message. Everything untrusted that is
// not a conversation message sits in a data block.

const (
	msgOverhead = 4 // tokens of framing per message
	dataOpen    = "<<<BEGIN DATA"
	dataClose   = "<<<END DATA>>>"

	markerDigest    = "[digest truncated]"
	markerSnippet   = "[snippet truncated]"
	markerMessage   = "[message truncated]"
	summaryLineMax  = 200 // runes of each older message kept in the summary
	minBlockTokens  = 24  // smallest body a data block is cut down to
	noReplyRecorded = "(no reply was recorded for this message)"
	noUserText      = "(The engineer sent no text this turn.)"
)

// Shares of the flexible part of the budget, as weights: recent turns,
// evidence digests, knowledge snippets, summary of older turns. A part that
// needs less than its share leaves the rest to the others.
var shareWeights = []int{4, 3, 2, 1}

// buildMessages assembles the first request of a turn within
// ContextTokens, leaving an eighth of it as headroom for tool results.
func (a *Agent) buildMessages(t *turn, jsonMode bool) []llm.Message {
	budget := a.cfg.ContextTokens
	toolTok := a.requestExtras(t, jsonMode)
	target := budget - budget/8 - toolTok
	squeeze := 0
	var msgs []llm.Message
	for range 4 {
		msgs = a.assemble(t, jsonMode, target-squeeze)
		over := promptTokens(msgs) - target
		if over <= 0 {
			break
		}
		squeeze += over + 16
	}
	if over := promptTokens(msgs) - target; over > 0 {
		// Only reachable when the fixed parts alone do not fit: cut the
		// tail of the system message rather than exceed the budget.
		msgs[0].Content = truncateTokens(msgs[0].Content, EstimateTokens(msgs[0].Content)-over, "[prompt truncated]")
	}
	t.headroom = budget - toolTok - promptTokens(msgs)
	return msgs
}

// requestExtras estimates what a request adds to its messages: the tool
// definitions, or the response format in structured mode.
func (a *Agent) requestExtras(t *turn, jsonMode bool) int {
	if jsonMode {
		js, _ := json.Marshal(t.responseFormat(false))
		return EstimateTokens(string(js))
	}
	t.nextTools = t.offeredTools()
	return toolsTokens(t.nextTools)
}

// finalRoomTokens: when less than this is left after a tool round, the next
// reply is the last one.
const finalRoomTokens = 300

// fitLoop keeps a growing tool conversation within budget tokens and, when
// it can, keeps reserve tokens free for the next round's results. To make
// room it replaces tool results and interim replies with a stub: those of
// earlier rounds (from loopStart) to restore the reserve, those of the latest
// round (from roundStart) only when the budget is exceeded. As a last resort
// it drops the oldest verbatim turns (user/assistant pairs after the system
// message). It returns the messages, the new loopStart and the tokens left.
func fitLoop(msgs []llm.Message, loopStart, roundStart, budget, reserve int) ([]llm.Message, int, int) {
	left := budget - promptTokens(msgs)
	if left >= reserve {
		return msgs, loopStart, left
	}
	msgs = slices.Clone(msgs)
	stub := func(from, to, want int) {
		for i := from; i < to && left < want; i++ {
			s := droppedResult
			if msgs[i].Role == llm.RoleAssistant {
				s = ""
			}
			if saved := EstimateTokens(msgs[i].Content) - EstimateTokens(s); saved > 0 {
				msgs[i].Content = s
				left += saved
			}
		}
	}
	stub(loopStart, roundStart, reserve)
	stub(roundStart, len(msgs), 0)
	// msgs[1:loopStart-1] are verbatim turns, alternating from a user
	// message; msgs[loopStart-1] is the current user message.
	for left < 0 && loopStart-2 >= 2 {
		left += EstimateTokens(msgs[1].Content) + EstimateTokens(msgs[2].Content) + 2*msgOverhead
		msgs = slices.Delete(msgs, 1, 3)
		loopStart -= 2
	}
	return msgs, loopStart, left
}

const droppedResult = "[earlier result dropped to stay within the context budget]"

// histMsg is a history message with its role normalised.
type histMsg struct {
	role    string
	content string
	turn    int
}

func (m histMsg) cost() int { return EstimateTokens(m.content) + msgOverhead }

// assemble builds the messages for avail tokens.
func (a *Agent) assemble(t *turn, jsonMode bool, avail int) []llm.Message {
	in := t.in
	head := instructions(t, jsonMode) + "\n\n" + caseFile(t, avail)
	user := strings.TrimSpace(in.UserText)
	if user == "" {
		user = noUserText
	}
	user = truncateTokens(user, max(avail/4, 64), markerMessage)
	const sections = 40 // headings of the optional sections
	flex := max(avail-EstimateTokens(head)-EstimateTokens(user)-2*msgOverhead-sections, 0)

	hist := normalizeHistory(in.History)
	start := recentStart(hist, a.cfg.RecentTurns)
	evidence := evidenceItems(in.Evidence)
	knowledge := knowledgeItems(in.Knowledge)
	needs := []int{0, blocksNeed(evidence), blocksNeed(knowledge), 0}
	for _, m := range hist[start:] {
		needs[0] += m.cost()
	}
	// Each older message's summary line is made once per request: both
	// the allocation and the summary itself need it.
	lines := make([]string, len(hist))
	line := func(i int) string {
		if lines[i] == "" {
			lines[i] = summaryLine(hist[i])
		}
		return lines[i]
	}
	for i := range start {
		needs[3] += EstimateTokens(line(i)) + 1
	}
	alloc := allocate(flex, needs, shareWeights)

	recent, first := pickRecent(hist, start, alloc[0])
	used := 0
	for _, m := range recent {
		used += EstimateTokens(m.Content) + msgOverhead
	}
	evText, evUsed := fitBlocks(evidence, alloc[1], markerDigest)
	knText, knUsed := fitBlocks(knowledge, alloc[2], markerSnippet)
	summary := summarize(first, line, flex-used-evUsed-knUsed)

	var b strings.Builder
	b.Grow(len(head) + len(summary) + len(evText) + len(knText) + 160)
	b.WriteString(head)
	if summary != "" {
		b.WriteString("\n\n## Earlier conversation (summary)\n")
		b.WriteString(summary)
	}
	b.WriteString("\n\n## Evidence digests\n")
	if evText == "" {
		b.WriteString("None uploaded.")
	}
	b.WriteString(evText)
	b.WriteString("\n\n## Knowledge base articles for the current message\n")
	if knText == "" {
		b.WriteString("None found.")
	}
	b.WriteString(knText)

	msgs := make([]llm.Message, 0, len(recent)+2)
	msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: b.String()})
	msgs = append(msgs, recent...)
	return append(msgs, llm.Message{Role: llm.RoleUser, Content: user})
}

// normalizeHistory maps roles to user/assistant, drops empty messages and
// merges consecutive messages of the same role, so that chat templates that
// require alternation accept the conversation.
func normalizeHistory(in []HistoryMessage) []histMsg {
	out := make([]histMsg, 0, len(in))
	for _, m := range in {
		c := m.Content
		if strings.TrimSpace(c) == "" {
			continue
		}
		role := llm.RoleAssistant
		if strings.EqualFold(strings.TrimSpace(m.Role), llm.RoleUser) {
			role = llm.RoleUser
		}
		if n := len(out); n > 0 && out[n-1].role == role {
			out[n-1].content += "\n\n" + c
			continue
		}
		out = append(out, histMsg{role: role, content: c, turn: m.Turn})
	}
	return out
}

// recentStart is the index of the first message of the last n turns. Turns
// are told apart by HistoryMessage.Turn, or, when no message carries one,
// by each user message starting a turn.
func recentStart(hist []histMsg, n int) int {
	numbered := false
	for _, m := range hist {
		numbered = numbered || m.turn != 0
	}
	keys := make([]int, len(hist))
	k := 0
	for i, m := range hist {
		if numbered {
			keys[i] = m.turn
		} else {
			if m.role == llm.RoleUser {
				k++
			}
			keys[i] = k
		}
	}
	seen := 0
	for i := len(hist) - 1; i >= 0; i-- {
		if i == len(hist)-1 || keys[i] != keys[i+1] {
			seen++
			if seen > n {
				return i + 1
			}
		}
	}
	return 0
}

// pickRecent takes messages from hist[start:] newest first while they fit
// budget. A message that does not fit is cut down when it is the newest or
// when at least a useful amount of budget is left; older ones then go to
// the summary. It returns the messages (oldest first, starting with a user
// message, alternating) and the index of the first one taken.
func pickRecent(hist []histMsg, start, budget int) ([]llm.Message, int) {
	first := len(hist)
	var picked []histMsg
	left := budget
	for i := len(hist) - 1; i >= start; i-- {
		m := hist[i]
		if c := m.cost(); c <= left {
			picked = append(picked, m)
			left -= c
			first = i
			continue
		}
		if len(picked) == 0 || left >= 200 {
			if room := left - msgOverhead; room >= minBlockTokens {
				m.content = truncateTokens(m.content, room, markerMessage)
				picked = append(picked, m)
				first = i
			}
		}
		break
	}
	// Chat templates want the conversation to open with the user.
	for len(picked) > 0 && picked[len(picked)-1].role != llm.RoleUser {
		picked = picked[:len(picked)-1]
		first++
	}
	out := make([]llm.Message, 0, len(picked)+1)
	for i := len(picked) - 1; i >= 0; i-- {
		out = append(out, llm.Message{Role: picked[i].role, Content: picked[i].content})
	}
	if len(out) > 0 && out[len(out)-1].Role == llm.RoleUser {
		// A turn that failed left no reply; keep the roles alternating.
		out = append(out, llm.Message{Role: llm.RoleAssistant, Content: noReplyRecorded})
	}
	return out, first
}

// summaryLine is the extractive summary of one older message.
func summaryLine(m histMsg) string {
	who := "engineer"
	if m.role != llm.RoleUser {
		who = "FaultMaven"
	}
	prefix := "- " + who + ": "
	if m.turn > 0 {
		prefix = fmt.Sprintf("- turn %d, %s: ", m.turn, who)
	}
	return prefix + firstSentence(m.content, summaryLineMax)
}

// summarize keeps the summary lines (line(i), i < older) of the older
// messages, newest first, while they fit budget, and returns them oldest
// first in a data block.
func summarize(older int, line func(int) string, budget int) string {
	if older == 0 {
		return ""
	}
	const intro = "The first sentence of each earlier message, oldest first.\n"
	overhead := EstimateTokens(dataBlock("conversation-summary", "")) + EstimateTokens(intro) + 12
	left := budget - overhead
	var lines []string
	for i := older - 1; i >= 0; i-- {
		line := sanitizeData(line(i))
		c := EstimateTokens(line) + 1
		if c > left {
			break
		}
		left -= c
		lines = append(lines, line)
	}
	if len(lines) == 0 && budget < overhead {
		return ""
	}
	var b strings.Builder
	b.WriteString(intro)
	if omitted := older - len(lines); omitted > 0 {
		fmt.Fprintf(&b, "(%d older messages omitted)\n", omitted)
	}
	for i := len(lines) - 1; i >= 0; i-- {
		b.WriteString(lines[i])
		b.WriteString("\n")
	}
	return dataBlock("conversation-summary", strings.TrimRight(b.String(), "\n"))
}

// firstSentence returns the first sentence of the first line that says
// something, cut to n runes.
//
// The line's words are joined with single spaces up to the first word that
// ends a sentence (., ? or !), or until more than n runes are collected,
// after which the rest cannot change the clipped result: a long message
// costs no more than its first sentence.
func firstSentence(s string, n int) string {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.IndexFunc(l, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) < 0 {
			continue
		}
		var b strings.Builder
		runes := 0
		for w := range strings.FieldsSeq(l) {
			if b.Len() > 0 {
				b.WriteByte(' ')
				runes++
			}
			b.WriteString(w)
			runes += utf8.RuneCountInString(w)
			if c := w[len(w)-1]; c == '.' || c == '?' || c == '!' || runes > n {
				break
			}
		}
		return clipChars(b.String(), n)
	}
	return ""
}

// dataItem is one data block before fitting.
type dataItem struct{ header, body string }

func evidenceItems(ev []EvidenceDigest) []dataItem {
	out := make([]dataItem, 0, len(ev))
	for _, d := range ev {
		out = append(out, dataItem{
			header: fmt.Sprintf(`evidence file="%s" kind="%s" id="%s"`, attr(d.Filename), attr(d.Kind), attr(d.EvidenceID)),
			body:   sanitizeData(strings.TrimSpace(d.Digest)),
		})
	}
	return out
}

func knowledgeItems(ks []Source) []dataItem {
	out := make([]dataItem, 0, len(ks))
	for _, k := range ks {
		out = append(out, dataItem{header: knowledgeHeader(k), body: sanitizeData(strings.TrimSpace(k.Snippet))})
	}
	return out
}

func knowledgeHeader(s Source) string {
	return fmt.Sprintf(`knowledge title="%s" url="%s"`, attr(s.Title), attr(s.URL))
}

func blockOverhead(it dataItem) int { return EstimateTokens(dataBlock(it.header, "")) + 1 }

func blocksNeed(items []dataItem) int {
	n := 0
	for _, it := range items {
		n += blockOverhead(it) + EstimateTokens(it.body)
	}
	return n
}

// fitBlocks renders items within budget tokens. When they do not fit, the
// largest bodies are cut first (all bodies are capped at the largest size
// that fits, each cut one marked); when even minimal bodies do not fit, the
// last items are left out. It returns the text and its token cost.
func fitBlocks(items []dataItem, budget int, marker string) (string, int) {
	if len(items) == 0 {
		return "", 0
	}
	over := make([]int, len(items))
	size := make([]int, len(items))
	largest := 0
	for i, it := range items {
		over[i], size[i] = blockOverhead(it), EstimateTokens(it.body)
		largest = max(largest, size[i])
	}
	cost := func(n, limit int) int {
		c := 0
		for i := range n {
			c += over[i] + min(size[i], limit)
		}
		if n < len(items) {
			c += 12 // the "omitted" note
		}
		return c
	}
	n := len(items)
	for n > 0 && cost(n, minBlockTokens) > budget {
		n--
	}
	if n == 0 {
		return "", 0
	}
	limit := largest
	if cost(n, largest) > budget {
		lo, hi := minBlockTokens, largest // cost(lo) fits, cost(hi) does not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if cost(n, mid) <= budget {
				lo = mid
			} else {
				hi = mid
			}
		}
		limit = lo
	}
	parts := make([]string, 0, n+1)
	for i := range n {
		body := items[i].body
		if size[i] > limit {
			body = truncateTokens(body, limit, marker)
		}
		parts = append(parts, dataBlock(items[i].header, body))
	}
	if n < len(items) {
		parts = append(parts, fmt.Sprintf("(%d more left out for lack of room)", len(items)-n))
	}
	text := strings.Join(parts, "\n")
	return text, EstimateTokens(text)
}

// allocate splits total between parts in proportion to weights, never
// giving a part more than it needs; what one part does not need goes to the
// others.
func allocate(total int, needs, weights []int) []int {
	alloc := make([]int, len(needs))
	for total > 0 {
		wsum := 0
		for i := range needs {
			if alloc[i] < needs[i] {
				wsum += weights[i]
			}
		}
		if wsum == 0 {
			break
		}
		given, rem := 0, total
		for i := range needs {
			if alloc[i] >= needs[i] {
				continue
			}
			g := min(rem*weights[i]/wsum, needs[i]-alloc[i])
			alloc[i] += g
			given += g
		}
		total -= given
		if given == 0 { // shares rounded to zero: hand out the rest in order
			for i := range needs {
				g := min(total, max(needs[i]-alloc[i], 0))
				alloc[i] += g
				total -= g
			}
			break
		}
	}
	return alloc
}

// promptTokens estimates the prompt tokens of messages.
func promptTokens(msgs []llm.Message) int {
	n := 0
	for _, m := range msgs {
		n += EstimateTokens(m.Content) + msgOverhead
		for _, c := range m.ToolCalls {
			n += EstimateTokens(c.Name) + EstimateTokens(c.Arguments) + msgOverhead
		}
	}
	return n
}

// dataBlock wraps untrusted text. body must already be sanitized.
func dataBlock(header, body string) string {
	return dataOpen + " " + header + ">>>\n" + body + "\n" + dataClose
}

// sanitizeData makes untrusted text unable to close its data block or open
// a fake one, and replaces invalid UTF-8.
func sanitizeData(s string) string {
	if utf8.ValidString(s) && !strings.Contains(s, "<<<") && !strings.Contains(s, ">>>") {
		return s
	}
	return blockMarks.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// blockMarks defuses data block delimiters (a Replacer is safe for
// concurrent use).
var blockMarks = strings.NewReplacer("<<<", "‹‹‹", ">>>", "›››")

// attr renders an untrusted value on one line inside a block header.
func attr(s string) string {
	return clipChars(strings.ReplaceAll(oneLine(sanitizeData(s)), `"`, "'"), 160)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clipChars cuts s to n runes, marking the cut with an ellipsis.
func clipChars(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// truncateTokens cuts s so that EstimateTokens of the result, marker
// included, is at most maxTok; it prefers to cut at a line break.
func truncateTokens(s string, maxTok int, marker string) string {
	if EstimateTokens(s) <= maxTok {
		return s
	}
	suffix := "\n" + marker
	room := maxTok*4 - len(suffix)
	if room <= 0 {
		if EstimateTokens(marker) <= maxTok {
			return marker
		}
		return ""
	}
	cut := room
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	head := s[:cut]
	if i := strings.LastIndexByte(head, '\n'); i > cut*4/5 {
		head = head[:i]
	}
	return head + suffix
}
