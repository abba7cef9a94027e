// Package agent owns FaultMaven's investigation method as code: the system
// prompt for each case status, the tools the model may call and the strict
// validation of their arguments, the tool loop with repair rounds, a
// structured-output fallback for models without tool calling, the
// token-budgeted prompt, and a clearly labelled retrieval-only answer when
// no language model is configured.
//
// One Run is one turn. The case actor calls it from a turn child actor with
// the case as it stands (Input) and its own implementation of Tools. The
// model proposes; the agent validates every tool call (JSON, required
// fields, enums, lengths, known hypothesis ids, allowed status moves) before
// anything reaches Tools, and answers an invalid call with a message that
// says exactly what to fix. Milestones and hypotheses change only through
// such validated calls, never because of words in the answer. Status
// changes are proposals: the answer ends with the copilot's
// "[✅ Yes] [❌ No]" confirmation and the user decides.
//
// Untrusted text (evidence digests, knowledge snippets, tool results,
// quotes of older turns) is placed in delimited data blocks that the system
// prompt declares to be data, and the delimiters are neutralised inside it.
//
// Concurrency contract: an Agent is immutable after New and safe for
// concurrent use; each Run keeps its state on its own stack. Run calls
// Tools and onDelta synchronously (onDelta possibly from the model client's
// goroutine while a reply streams) and never after it returns. Run starts
// no goroutines and returns promptly when ctx is cancelled.
//
// Must not: persist anything, know about actors or the wire format beyond
// the suggested-action shape, let unvalidated model output reach Tools, or
// edit the llm and redact sub-packages (owned elsewhere).
package agent
