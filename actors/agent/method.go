package agent

import "slices"

// The investigation method's vocabulary. The names are the original
// FaultMaven's and are shown to users and to the copilot extension, so they
// must not change.

// Case statuses.
const (
	StatusInquiry       = "inquiry"
	StatusInvestigating = "investigating"
	StatusResolved      = "resolved"
	StatusClosed        = "closed"
)

// Milestone names, in the order they are usually reached (they may complete
// in any order).
const (
	MilestoneSymptomVerified     = "symptom_verified"
	MilestoneScopeAssessed       = "scope_assessed"
	MilestoneTimelineEstablished = "timeline_established"
	MilestoneChangesIdentified   = "changes_identified"
	MilestoneRootCauseIdentified = "root_cause_identified"
	MilestoneSolutionProposed    = "solution_proposed"
	MilestoneSolutionApplied     = "solution_applied"
	MilestoneSolutionVerified    = "solution_verified"
)

var (
	milestones = []string{
		MilestoneSymptomVerified, MilestoneScopeAssessed, MilestoneTimelineEstablished,
		MilestoneChangesIdentified, MilestoneRootCauseIdentified, MilestoneSolutionProposed,
		MilestoneSolutionApplied, MilestoneSolutionVerified,
	}
	hypothesisCategories = []string{"code", "config", "environment", "network", "data", "hardware", "external", "human"}
	hypothesisStatuses   = []string{"captured", "active", "validated", "refuted", "inconclusive", "retired"}
	confidenceLevels     = []string{"speculation", "probable", "confident", "verified"}
	solutionKinds        = []string{"rollback", "config_change", "restart", "scaling", "code_fix", "workaround", "infrastructure", "data_fix"}
)

// milestoneQuestions are the questions that move each milestone forward. The
// prompt shows them for the milestones still open, and the retrieval-only
// answer asks them directly.
var milestoneQuestions = map[string]string{
	MilestoneSymptomVerified:     "What exactly fails, and how do you see it (error text, alert, user report)? Can you show it in a log line, metric or command output?",
	MilestoneScopeAssessed:       "What is affected: which services, hosts, regions or users? All requests or only some?",
	MilestoneTimelineEstablished: "When did it start? What changed just before? Is it constant, intermittent or getting worse?",
	MilestoneChangesIdentified:   "Which deployments, configuration changes, upgrades, certificate or infrastructure changes happened around that time?",
	MilestoneRootCauseIdentified: "Which hypothesis does the evidence support, and what single check would rule out the others?",
	MilestoneSolutionProposed:    "Which fix or mitigation matches the cause: rollback, config change, restart, scaling, code fix, workaround?",
	MilestoneSolutionApplied:     "Has the fix been applied? Where, and at what time?",
	MilestoneSolutionVerified:    "Is the symptom gone? Which metric, log or check shows it stayed gone?",
}

// inquiryQuestions clarify a problem before any investigation.
var inquiryQuestions = []string{
	"What exactly is failing, and what do you see (error message, alert, symptom)?",
	"When did it start, and is it still happening?",
	"What is affected (services, hosts, users), and did anything change recently?",
}

// nextStatuses lists the statuses a case may move to from status, given the
// completed milestones. investigating → resolved needs solution_verified;
// inquiry → resolved is the knowledge-base fast track and needs nothing.
func nextStatuses(status string, completed []string) []string {
	switch status {
	case StatusInquiry:
		return []string{StatusInvestigating, StatusResolved, StatusClosed}
	case StatusInvestigating:
		if slices.Contains(completed, MilestoneSolutionVerified) {
			return []string{StatusResolved, StatusClosed}
		}
		return []string{StatusClosed}
	default:
		return nil
	}
}

// terminal reports whether status is final (read-only).
func terminal(status string) bool {
	return status == StatusResolved || status == StatusClosed
}

// canonicalMilestones orders names by the method's order, unknown names
// last in their original order, without duplicates.
func canonicalMilestones(names []string) []string {
	out := make([]string, 0, len(names))
	for _, m := range milestones {
		if slices.Contains(names, m) {
			out = append(out, m)
		}
	}
	for _, n := range names {
		if !slices.Contains(milestones, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
