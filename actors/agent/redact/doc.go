// Package redact keeps secrets from reaching an LLM. Before a request
// leaves, every secret in it is replaced with a stable per-case pseudonym
// ("<secret-3f9a1c>"); pseudonyms in what the model answers are restored
// before the user sees them; a request that cannot be redacted is not sent
// (fail closed); and an audit callback receives exactly what was sent.
//
// Pieces:
//
//   - Detect finds secrets in text: vendor tokens (AWS, GitHub, OpenAI,
//     Anthropic, Slack, Stripe, Google, GitLab, npm, Vault, Hugging Face,
//     SendGrid, Docker Hub, Grafana, PyPI, DigitalOcean, Shopify, Telegram,
//     Discord webhooks, Azure AD, Databricks, Atlassian and others), JWTs,
//     PEM private keys, password hashes (crypt, bcrypt, apr1, argon2),
//     passwords in connection strings, command lines (mysql -p, sshpass -p,
//     docker login -p, redis-cli -a, ldapsearch -w, --password VALUE …),
//     .pgpass and .netrc lines, configuration directives ("requirepass x",
//     "api_key 3f9a…" alone on a line) and sentences ("the password is
//     x1y2z3"),
//     values of secret-like keys in env/INI/YAML/JSON/header/query/XML
//     syntax (<password>x</password>, <add key="DbPassword" value="x"/>),
//     cookie values, signatures of pre-signed URLs, Kubernetes Secret data
//     and long random tokens right after a secret-like word. Spans cover
//     only the secret: scheme, user, host, port and database of a URL stay,
//     and so do cookie names.
//   - Pseudonymizer turns secrets into "<secret-" + hex(HMAC-SHA256(case
//     key, secret))[:6] + ">", lengthened (8, 10, 12 … hex) for the newer of
//     two secrets that collide, and remembers pseudonym → original (bounded,
//     least recently used forgotten first) so Restore can put them back,
//     also where a model rewrote one (<SECRET-3F9A1C>, secret-3f9a1c
//     standing alone). The same secret gets the same pseudonym in every
//     turn of a case without a stored table; other cases get other
//     pseudonyms. The agent's system prompt tells the model what the
//     placeholders are and to write them as they are.
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
// public keys are not secrets. Known gaps: a password in a sentence that
// is an ordinary word ("the password is swordfish": only words with digits
// or symbols, quoted words, .netrc lines and a word after "password:" are
// taken), cookie values
// under 8 characters, numbers as values of secret keys inside tool-call
// JSON ({"password": 1234}), vendor tokens without a prefix outside a
// key=value pair, and pseudonyms a model rewrites beyond case and brackets
// (a changed or shortened hex part).
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
