// Package redact keeps secrets from reaching an LLM. Before a request
// leaves, every secret in it is replaced with a stable per-case pseudonym
// ("<secret-3f9a1c>"); pseudonyms in what the model answers are restored
// before the user sees them; a request that cannot be redacted is not sent
// (fail closed); and an audit callback receives exactly what was sent.
//
// Pieces:
//
//   - Detect finds secrets in text: vendor tokens (AWS, GitHub, OpenAI,
//     Anthropic, Slack, Stripe, Google), JWTs, PEM private keys, passwords
//     in connection strings and command lines, values of secret-like keys
//     in env/INI/YAML/JSON/header/query syntax, Kubernetes Secret data and
//     long random tokens right after a secret-like word. Spans cover only
//     the secret: scheme, user, host, port and database of a URL stay.
//   - Pseudonymizer turns secrets into "<secret-" + hex(HMAC-SHA256(case
//     key, secret))[:6] + ">", lengthened (8, 10, 12 … hex) for the newer of
//     two secrets that collide, and remembers pseudonym → original (bounded,
//     least recently used forgotten first) so Restore can put them back.
//     The same secret gets the same pseudonym in every turn of a case
//     without a stored table; other cases get other pseudonyms.
//   - StreamRestorer restores model output that arrives in fragments.
//   - WrapClient puts all of it around an llm.Client.
//
// Deliberately not redacted, because they are the diagnostic facts a
// troubleshooting case is about: IP and MAC addresses, host names, ports,
// UUIDs, git SHAs and other hashes, timestamps, durations, file paths, log
// levels, user names in URLs, Kubernetes object names (secret="ns/name"),
// and keys that only describe a secret (password_reset_count, max_tokens,
// token_bucket, secret_name, token_url, auth_method, PASSWORD_FILE). E-mail
// addresses are replaced only with Options.Emails. Public certificates and
// public keys are not secrets. Known gaps: credentials in free prose
// ("my password is hunter2"), numbers as values of secret keys inside
// tool-call JSON ({"password": 1234}), cookies, XML elements
// (<password>x</password>), signatures of pre-signed URLs, and pseudonyms a
// model rewrites (upper-case hex, dropped brackets).
//
// Concurrency contract: a Pseudonymizer belongs to one case and is normally
// used by one turn at a time, but it is not an actor and is safe for
// concurrent use: its table is guarded by a mutex (detection runs outside
// the lock). Detect is a pure function, safe for concurrent use. A
// StreamRestorer serves one stream and must not be used concurrently. The
// client returned by WrapClient holds no per-call state and is as safe for
// concurrent use as the client it wraps; the audit callback may be called
// concurrently by concurrent calls. Nothing here starts a goroutine.
//
// Must not: log, return in errors or otherwise expose a secret or the case
// key (errors name the message index and kind of failure only); persist
// the pseudonym table (stability comes from the key); send anything when
// redaction or the intent audit fails.
package redact
