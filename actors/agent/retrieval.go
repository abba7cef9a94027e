package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// RetrievalBanner opens every answer built without a language model.
const RetrievalBanner = "> ⚠️ No language model is configured — this is a retrieval-only answer."

const (
	retrievalEvidenceLimit = 10
	retrievalSnippetChars  = 300
)

// retrievalOnly answers without a model: the knowledge and evidence that
// match the user's text, and the method's next questions for the case. It
// fails only when ctx ends; unavailable searches are skipped.
func (a *Agent) retrievalOnly(ctx context.Context, t *turn, em *emitter) (Output, error) {
	query := clipChars(strings.TrimSpace(t.in.UserText), maxArgChars)
	var evHits []EvidenceHit
	if query != "" {
		hits, err := t.tools.SearchKnowledge(ctx, query, defKnowledgeLimit)
		if err := interrupted(ctx, err); err != nil {
			return Output{}, err
		}
		for _, h := range hits {
			t.addSource(h)
		}
		evHits, err = t.tools.SearchEvidence(ctx, query, retrievalEvidenceLimit)
		if err := interrupted(ctx, err); err != nil {
			return Output{}, err
		}
		if len(evHits) > retrievalEvidenceLimit {
			evHits = evHits[:retrievalEvidenceLimit]
		}
	}

	var b strings.Builder
	b.WriteString(RetrievalBanner)
	b.WriteString("\n> It shows what the knowledge base and this case's evidence hold for your message; nothing below was written or interpreted by a model.\n")
	c := t.in.Case
	fmt.Fprintf(&b, "\n**Case:** %s · status **%s** · turn %d\n", mdText(oneLine(c.Title), 200), t.status, c.Turn)

	b.WriteString("\n### From the knowledge base\n")
	if len(t.sources) == 0 {
		b.WriteString("_No knowledge base article matched your message._\n")
	}
	for i, s := range t.sources {
		title := mdText(oneLine(s.Title), 200)
		if title == "" {
			title = "Untitled document"
		}
		fmt.Fprintf(&b, "%d. **%s**", i+1, title)
		if snip := mdText(oneLine(s.Snippet), retrievalSnippetChars); snip != "" {
			b.WriteString(" — " + snip)
		}
		b.WriteString("\n")
	}

	b.WriteString("\n### From the evidence\n")
	switch {
	case len(evHits) == 0 && len(t.in.Evidence) == 0:
		b.WriteString("_No evidence has been uploaded to this case._\n")
	case len(evHits) == 0 && query != "":
		b.WriteString("_No evidence line matched your message._\n")
	}
	for _, h := range evHits {
		fmt.Fprintf(&b, "- %s line %d: %s\n", codeSpan(h.Filename, 120), h.Line, codeSpan(h.Text, 200))
	}
	for _, d := range t.in.Evidence {
		fmt.Fprintf(&b, "- Uploaded %s (%s): %s\n", codeSpan(d.Filename, 120), mdText(d.Kind, 40), mdText(firstSentence(d.Digest, 200), 200))
	}

	b.WriteString("\n### Next questions\n")
	questions := nextQuestions(t)
	b.WriteString(questionsIntro(t))
	for _, q := range questions {
		b.WriteString("\n- " + q)
	}
	em.block(strings.TrimRight(b.String(), "\n"))
	t.finish(em)

	out := t.output(em)
	out.RetrievalOnly = true
	if len(questions) > 0 && !terminal(t.status) {
		hints := make([]string, 0, 4)
		for _, q := range questions[:min(len(questions), 4)] {
			hints = append(hints, stripMarkdown(q))
		}
		out.SuggestedActions = append(out.SuggestedActions, SuggestedAction{
			Type: ActionFreeSpeech, Label: "Answer one of these to move the case forward", Hints: hints,
		})
	}
	return out, nil
}

// interrupted reports ctx's error if the search was cut short by it; other
// search failures (including ErrToolUnavailable) are not errors here.
func interrupted(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func questionsIntro(t *turn) string {
	switch t.status {
	case StatusInquiry:
		return "To pin the problem down:"
	case StatusInvestigating:
		done := 0
		for _, m := range milestones {
			if slices.Contains(t.completed, m) {
				done++
			}
		}
		return fmt.Sprintf("Milestones done: %d of %d (%s). The open ones, and the question that moves each forward:",
			done, len(milestones), listOrNone(canonicalMilestones(intersect(t.completed, milestones))))
	default:
		return fmt.Sprintf("This case is %s and read-only. You can still search the knowledge base and the evidence; a summary or report needs a language model.", mdText(t.status, 40))
	}
}

// nextQuestions are the method's questions for the case's status: the
// clarifying questions in inquiry, one per open milestone while
// investigating (plus the active hypotheses), none once the case is over.
func nextQuestions(t *turn) []string {
	switch t.status {
	case StatusInquiry:
		return slices.Clone(inquiryQuestions)
	case StatusInvestigating:
		var qs []string
		for _, m := range milestones {
			if !slices.Contains(t.completed, m) {
				qs = append(qs, fmt.Sprintf("**%s**: %s", m, milestoneQuestions[m]))
			}
		}
		for _, h := range t.hyps {
			if h.Status == "active" || h.Status == "captured" {
				qs = append(qs, fmt.Sprintf("Hypothesis %s (%s, %s): what evidence would confirm or rule out “%s”?",
					mdText(h.ID, 40), mdText(h.Status, 20), mdText(h.Confidence, 20), mdText(oneLine(h.Statement), 160)))
			}
		}
		return qs
	default:
		return nil
	}
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// mdText clips untrusted text for display and stops it from opening HTML or
// breaking the surrounding list item.
func mdText(s string, n int) string {
	return clipChars(strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(oneLine(s)), n)
}

// codeSpan shows untrusted text verbatim as inline code.
func codeSpan(s string, n int) string {
	s = clipChars(oneLine(strings.ReplaceAll(s, "`", "'")), n)
	if s == "" {
		return "``"
	}
	return "`" + s + "`"
}

func stripMarkdown(s string) string { return strings.ReplaceAll(s, "**", "") }
