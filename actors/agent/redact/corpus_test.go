package redact

// The corpus shared by the detector, pseudonymizer, client, fuzz and
// benchmark tests: realistic pastes with the secrets they hold, and log
// lines that must pass through untouched. All credentials are fake.

type found struct {
	kind, secret string
}

type corpusCase struct {
	name string
	in   string
	want []found // in order of appearance
}

const (
	fakeJWT        = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	fakeAWSSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	fakeGitHub     = "ghp_wJ4kT9qZ2xV7mB1nC8dF3gH6jK0lP5rS9tUv"
	fakeGitHubPAT  = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"
	fakeOpenAI     = "sk-T3BlbkFJq8Zx2Lm4Nv6Rt0Yw9Ua7Sc5De1Fg3Hj5Kl7Mp9Qz"
	fakeOpenAIProj = "sk-proj-Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x_yZ-T3BlbkFJ"
	fakeAnthropic  = "sk-ant-api03-Xy9Zk3Lm5Np7Qr9St1Uv3Wx5Yz7Ab9Cd1Ef3Gh5Ij7Kl9Mn1Op3Qr5St7Uv9Wx1Yz3Ab5-QrAA"
	fakeSlack      = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	fakeStripe     = "sk_live_51HxYzAbCdEfGhIjKlMnOpQrStUv"
	fakeStripeRK   = "rk_live_51HxYzAbCdEfGhIjKlMnOpQr"
	fakeGoogle     = "AIzaSyD3f9Gh2Jk4Lm6Np8Qr0St2Uv4Wx6Yz8Ab"
	fakeRSA        = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aumPuASOkQXJX7ZOBtuVY=\nq2mXQ7k0sP+1r9VfZk2xJ8w3aB4cD5eF6gH7iJ8kL9mN0oP1qR2sT3uV4wX=\n-----END RSA PRIVATE KEY-----"
	fakeOpenSSH    = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDkXk2qL0hS6pVx5Jc4D7bR1mZ3nT8oY9wA2fG6hK0lEgAAAJgtest=\n-----END OPENSSH PRIVATE KEY-----"
)

var positives = []corpusCase{
	{"env aws key id", "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		[]found{{KindAWSAccessKeyID, "AKIAIOSFODNN7EXAMPLE"}}},
	{"aws credentials file",
		"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = " + fakeAWSSecret + "\nregion = eu-west-1\n",
		[]found{{KindAWSAccessKeyID, "AKIAIOSFODNN7EXAMPLE"}, {KindAWSSecretAccessKey, fakeAWSSecret}}},
	{"env aws secret", "export AWS_SECRET_ACCESS_KEY=" + fakeAWSSecret,
		[]found{{KindAWSSecretAccessKey, fakeAWSSecret}}},
	{"aws secret key json", `{"AccessKeyId": "ASIAY34FZKBOKMUTVV7A", "SecretAccessKey": "` + fakeAWSSecret + `", "Expiration": "2024-06-12T11:00:00Z"}`,
		[]found{{KindAWSAccessKeyID, "ASIAY34FZKBOKMUTVV7A"}, {KindAWSSecretAccessKey, fakeAWSSecret}}},
	{"postgres url", "postgres://app:S3cr3t!@db.internal:5432/orders?sslmode=require",
		[]found{{KindURLPassword, "S3cr3t!"}}},
	{"mysql url in env", "DATABASE_URL=mysql://root:my-p4ss@10.0.0.12:3306/shop",
		[]found{{KindURLPassword, "my-p4ss"}}},
	{"mongodb srv url", "mongodb+srv://admin:Zx9%40q@cluster0.ab1cd.mongodb.net/prod?retryWrites=true&w=majority",
		[]found{{KindURLPassword, "Zx9%40q"}}},
	{"redis url without user", "REDIS_URL=redis://:r3d1sPass@cache.internal:6379/0",
		[]found{{KindURLPassword, "r3d1sPass"}}},
	{"amqp url", `amqp_url: "amqp://svc-orders:Rabb1tPw@rabbitmq.svc:5672/%2f"`,
		[]found{{KindURLPassword, "Rabb1tPw"}}},
	{"e-mail as url user", "smtp://alerts@example.com:M4ilPass@smtp.example.com:587",
		[]found{{KindURLPassword, "M4ilPass"}}},
	{"raw @ in url password", "dial postgresql://app:p@ss#1@db.internal:5432/x failed",
		[]found{{KindURLPassword, "p@ss#1"}}},
	{"jdbc query password", "jdbc:postgresql://db.internal:5432/orders?user=app&password=hunter2&ssl=true",
		[]found{{KindPassword, "hunter2"}}},
	{"go mysql dsn", `dsn := "app:Tr0ub4dor@tcp(db.internal:3306)/orders?parseTime=true"`,
		[]found{{KindURLPassword, "Tr0ub4dor"}}},
	{"ado.net", "Server=sql01;Database=app;User Id=sa;Password=Passw0rd!;Encrypt=true",
		[]found{{KindPassword, "Passw0rd!"}}},
	{"yaml quoted one char", "database:\n  host: db.internal\n  port: 5432\n  password: \"x\"\n",
		[]found{{KindPassword, "x"}}},
	{"yaml unquoted rest of line", "spring:\n  datasource:\n    password: correct horse battery staple # prod\n",
		[]found{{KindPassword, "correct horse battery staple"}}},
	{"yaml block scalar", "auth:\n  client_secret: |\n    line-one-of-secret\n    line-two-of-secret\n  client_id: web\n",
		[]found{{KindSecretValue, "line-one-of-secret\n    line-two-of-secret"}}},
	{"json client secret", `{"client_id": "fm-web", "client_secret": "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "redirect_uri": "https://fm.example.com/cb"}`,
		[]found{{KindSecretValue, "9f8e7d6c5b4a39281706f5e4d3c2b1a0"}}},
	{"json escaped in json", `{"log":"{\"user\":\"bob\",\"password\":\"hunter2\"}","stream":"stdout"}`,
		[]found{{KindPassword, "hunter2"}}},
	{"env changeme", "DB_PASSWORD=changeme\nDB_HOST=db.internal",
		[]found{{KindPassword, "changeme"}}},
	{"env quoted", `export MYSQL_ROOT_PASSWORD='s3cr3t with spaces'`,
		[]found{{KindPassword, "s3cr3t with spaces"}}},
	{"ini with spaces", "[client]\nuser = app\npassword = my pass phrase\n",
		[]found{{KindPassword, "my pass phrase"}}},
	{"camel case keys", `{"apiKey":"k-8d7f6e5d4c3b2a19","dbPassword":"pw-123","secretName":"db-creds","tokenUrl":"https://idp/token"}`,
		[]found{{KindSecretValue, "k-8d7f6e5d4c3b2a19"}, {KindPassword, "pw-123"}}},
	{"header x-api-key", "X-Api-Key: 4c1d2e3f-live-key\nAccept: application/json\n",
		[]found{{KindSecretValue, "4c1d2e3f-live-key"}}},
	{"docker config auth", `{"auths":{"registry.example.com":{"auth":"YWRtaW46aHVudGVyMg=="}}}`,
		[]found{{KindAuthorization, "YWRtaW46aHVudGVyMg=="}}},
	{"bearer jwt header", "Authorization: Bearer " + fakeJWT,
		[]found{{KindJWT, fakeJWT}}},
	{"basic auth in curl", `curl -sS -H "Authorization: Basic YWRtaW46cGFzc3dvcmQ=" https://api.internal/health`,
		[]found{{KindAuthorization, "YWRtaW46cGFzc3dvcmQ="}}},
	{"json headers", `{"headers":{"Authorization":"Bearer opaque-Tok3n-value-123456"}}`,
		[]found{{KindAuthorization, "opaque-Tok3n-value-123456"}}},
	{"bare bearer", "sent request with bearer Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA== to upstream",
		[]found{{KindAuthorization, "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA=="}}},
	{"curl -u", "curl -u admin:s3cret! https://jenkins.internal/api/json",
		[]found{{KindCLIPassword, "s3cret!"}}},
	{"mysql -p", "mysql -h db.internal -u root -phunter2 orders < dump.sql",
		[]found{{KindCLIPassword, "hunter2"}}},
	{"rsa pem", "key.pem:\n" + fakeRSA + "\n",
		[]found{{KindPrivateKey, fakeRSA}}},
	{"openssh pem", fakeOpenSSH,
		[]found{{KindPrivateKey, fakeOpenSSH}}},
	{"pem in json string", `{"private_key_id":"abc","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n","client_email":"sa@proj.iam.gserviceaccount.com"}`,
		[]found{{KindPrivateKey, `-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n`}}},
	{"truncated pem", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5owkR\nAwEHoUQDQgAE\n[truncated]",
		[]found{{KindPrivateKey, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5owkR\nAwEHoUQDQgAE"}}},
	{"github tokens", "GITHUB_TOKEN=" + fakeGitHub + "\ngit clone https://x-access-token:" + fakeGitHubPAT + "@github.com/org/repo.git",
		[]found{{KindGitHubToken, fakeGitHub}, {KindGitHubToken, fakeGitHubPAT}}},
	{"openai keys", "OPENAI_API_KEY=" + fakeOpenAI + " and later " + fakeOpenAIProj,
		[]found{{KindOpenAIKey, fakeOpenAI}, {KindOpenAIKey, fakeOpenAIProj}}},
	{"anthropic key", "anthropic.APIError: 401 with key " + fakeAnthropic,
		[]found{{KindAnthropicKey, fakeAnthropic}}},
	{"slack token", "slack: posting with " + fakeSlack + " failed: invalid_auth",
		[]found{{KindSlackToken, fakeSlack}}},
	{"slack webhook", "webhook_url: https://hooks.slack.com/services/T0000AAAA/B0000BBBB/XXXXabcdXXXXabcdXXXXabcd",
		[]found{{KindSlackToken, "T0000AAAA/B0000BBBB/XXXXabcdXXXXabcdXXXXabcd"}}},
	{"stripe keys", "stripe.api_key = '" + fakeStripe + "'; restricted=" + fakeStripeRK,
		[]found{{KindStripeKey, fakeStripe}, {KindStripeKey, fakeStripeRK}}},
	{"google api key", "https://maps.googleapis.com/maps/api/geocode/json?address=x&key=" + fakeGoogle,
		[]found{{KindGoogleAPIKey, fakeGoogle}}},
	{"k8s secret yaml",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-creds\n  namespace: payments\ntype: Opaque\ndata:\n  username: YWRtaW4=\n  password: MWYyZDFlMmU2N2Rm\n  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t\n",
		[]found{{KindK8sSecretData, "YWRtaW4="}, {KindK8sSecretData, "MWYyZDFlMmU2N2Rm"}, {KindK8sSecretData, "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t"}}},
	{"k8s configmap then secret",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: debug\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  DSN: host=pg.orders.internal port=5432 user=app\n",
		[]found{{KindK8sSecretData, "host=pg.orders.internal port=5432 user=app"}}},
	{"k8s secret json",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db"},"data":{"user":"YXBw","pass":"aHVudGVyMg=="},"type":"Opaque"}`,
		[]found{{KindK8sSecretData, "YXBw"}, {KindK8sSecretData, "aHVudGVyMg=="}}},
	{"api key flag with space", "./deploy --api-key 4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4 --region eu-west-1",
		[]found{{KindHighEntropy, "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4"}}},
	{"logfmt token", `level=debug msg="calling upstream" access_token=ya29.a0AfH6SMBx3kQ_z1 user=bob`,
		[]found{{KindSecretValue, "ya29.a0AfH6SMBx3kQ_z1"}}},
	{"go assignment", `password := "hunter2"`,
		[]found{{KindPassword, "hunter2"}}},
	{"mid-line colon with credential shape", `error connecting: password: Hunter2!x rejected`,
		[]found{{KindPassword, "Hunter2!x"}}},
	{"pwd as password in dsn", "Driver={ODBC Driver 18};Server=sql01;Uid=sa;Pwd=Winter2024!;",
		[]found{{KindPassword, "Winter2024!"}}},
	{"commented yaml secret", "# password: oldPass123\npassword: newPass456\n",
		[]found{{KindPassword, "oldPass123"}, {KindPassword, "newPass456"}}},
	{"password hash", "password_hash: $2b$12$KIXQJ8w9lmN0aB1cD2eF3uGhIjKlMnOpQrStUvWxYz0123456789a",
		[]found{{KindPasswordHash, "$2b$12$KIXQJ8w9lmN0aB1cD2eF3uGhIjKlMnOpQrStUvWxYz0123456789a"}}},
}

// negatives must come out of Detect with no span: the diagnostic facts of
// ordinary logs, and text that merely talks about secrets.
var negatives = []struct{ name, in string }{
	{"nginx access", `192.168.1.10 - - [12/Jun/2024:10:00:00 +0000] "GET /api/v1/cases/3f2504e0-4f89-11d3-9a0c-0305e82c3301?page=2 HTTP/1.1" 502 157 "-" "curl/8.4.0" rt=30.001 uct="0.000" uht="30.000" urt="30.001"`},
	{"nginx error", `2024/06/12 10:00:00 [error] 31#31: *4021 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.3.7, server: api.example.com, request: "POST /v1/login HTTP/1.1", upstream: "http://10.244.1.17:8080/v1/login", host: "api.example.com"`},
	{"syslog kernel", "Jun 12 10:00:00 web-01 kernel: [12345.678901] eth0: renamed from veth1a2b3c4, link/ether 02:42:ac:11:00:02 brd ff:ff:ff:ff:ff:ff"},
	{"journald systemd", "Jun 12 10:00:01 db-01 systemd[1]: postgresql.service: Main process exited, code=exited, status=1/FAILURE"},
	{"sshd failed password", "Jun 12 10:00:02 bastion sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 52814 ssh2"},
	{"sshd publickey", "Jun 12 10:00:02 bastion sshd[2212]: Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2: ED25519 SHA256:uMHRr1hPzR8yWq3kD2xN5vL0aB9cE7fG6hJ4iK1lM8o"},
	{"postgres fatal", `2024-06-12 10:00:05.123 UTC [2231] FATAL:  password authentication failed for user "app"`},
	{"klog secret reference", `I0612 10:00:03.123456       1 reconciler.go:221] "Secret not found" secret="payments/db-creds" controller="external-secrets" reconcileID="6b1f5c3e-2d4a-4e8b-9f7c-1a2b3c4d5e6f"`},
	{"json log", `{"ts":"2024-06-12T10:00:04.123Z","level":"error","msg":"token refresh failed","err":"context deadline exceeded","host":"api-7d9f8c6b5-x2x9z","ip":"10.244.1.17","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","duration_ms":30001}`},
	{"logfmt prose colon", `level=warn ts=2024-06-12T10:00:05Z msg="failed to refresh token: context deadline exceeded" pod=api-0 latency=1.5s`},
	{"error chain", "Error: invalid token: Token is expired (exp=1718186400)"},
	{"counters", "password_reset_count=3 token_bucket_capacity=100 max_tokens=4096 prompt_tokens=1234 completion_tokens: 87 tokens=5"},
	{"prose", "the token bucket is empty; the password was wrong and the secret sauce is logs"},
	{"describing keys", "auth_method=md5 secret_name=db-creds tokenUrl=https://login.example.com/oauth2/token token_type: Bearer expires_in: 3600 PASSWORD_FILE=/run/secrets/db"},
	{"auth results", `auth=ok user=bob auth: failed "auth": "ldap"`},
	{"placeholders", "password=**** token=<redacted> api_key=${API_KEY} secret: \"\" client_secret=$CLIENT_SECRET passwd=[FILTERED] pass=%s password: null token: xxxxxxxx"},
	{"env paths", "PWD=/home/ci/src/app\nOLDPWD=/home/ci\nGOOGLE_APPLICATION_CREDENTIALS=/var/secrets/google/key.json"},
	{"go test output", "--- PASS: TestRedact2 (0.00s)\n--- FAIL: TestLogin (0.01s)\nPASS\nok  \tgithub.com/x/y\t0.123s"},
	{"git", "commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main, origin/main)\nMerge: 1a2b3c4 5d6e7f8\nAuthor: Jane Doe <jane@example.com>"},
	{"ipv6 and ports", "listen [2001:db8::1]:8443 fe80::1ff:fe23:4567:890a%eth0 upstream=10.0.0.12:5432"},
	{"go panic", "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]\n\ngoroutine 1 [running]:\nmain.main()\n\t/home/ci/src/app/main.go:42 +0x1d"},
	{"k8s event", "Warning  BackOff  3m (x12 over 10m)  kubelet  Back-off restarting failed container api in pod api-7d9f8c6b5-x2x9z_payments(8f14e45f-ceea-467a-9575-5a9c8e2b3d1f)"},
	{"pod volume secret", "volumes:\n- name: creds\n  secret:\n    secretName: db-creds\n    defaultMode: 420\n"},
	{"urls without credentials", "https://db.internal:5432/orders?sslmode=require ssh://git@github.com:22/org/repo.git http://localhost:8080/health"},
	{"docker uid", "docker run -u 1000:1000 -p 8080:8080 registry.example.com/app:1.2.3"},
	{"public certificate", "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----"},
	{"kubectl describe secret", "Name:         db-creds\nNamespace:    payments\nType:  Opaque\n\nData\n====\npassword:  16 bytes\nusername:  5 bytes"},
	{"hostnames starting with sk", "sk-prod-cluster-node-0001.internal resolved to 10.1.2.3"},
	{"token followed by host", "token endpoint vault-0.vault-internal.vault.svc.cluster.local:8200 unreachable"},
	{"arn and account", "arn:aws:iam::123456789012:role/app-deployer assumed, request id 1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718"},
	{"quoted prose", `level=error msg="token: context deadline exceeded" error="bad token": retrying`},
	{"host and port", "dial tcp: lookup auth:8080 failed; vault-token:8200 refused; connect to secrets:443"},
	{"bearer prose", "the bearer tokens-are-rotated-hourly policy applies"},
	{"authorization prose", "Authorization header missing; 401 returned to 10.0.0.9"},
	// Shapes near the paste detectors (paste_test.go) that hold no secret.
	{"prose about passwords", "Failed password for root from 10.0.0.1; the password is incorrect; password was changed yesterday; " +
		"tried the password 3 times; the password to db-01 expired; password policy v2 applies; the username/password **form**"},
	{"password status after a colon", "login failed - password: incorrect; user bob password: expired; the password: the one in vault"},
	{"directive-like lines", "Secret rotated\nToken expired\nPassword changed successfully\ntoken_bucket 100\nsecret_name db-creds\nPassword: \nrequirepass \"\"\n"},
	{"password in word", "bypass=true passwordless=yes passwords: 3 compass-01 reset-password-link"},
	{"xml without secrets", "<secretName>db-creds</secretName>\n<password-policy>strict</password-policy>\n<token-url>https://login.example.com</token-url>\n" +
		"<key>cache-1</key>\n<password></password>\n<password>${DB_PASS}</password>\n<add key=\"LogLevel\" value=\"debug\"/>\n" +
		"<property name=\"hibernate.dialect\">org.hibernate.dialect.PostgreSQLDialect</property>\n<auth>ldap</auth>"},
	{"short cookies and prose", "Cookie: lang=en-US; theme=dark\nthe cookie expired; cookie_name: session\nSet-Cookie attributes: Path=/; HttpOnly"},
	{"colon-separated fields", "12:34:56:78:90\nfe80:0:0:0:1\naa:bb:cc:dd:ee\nJun 12 10:00:01 host app: started"},
	{"command lines", "docker login -u me --password-stdin registry.io\nssh -p 2222 deploy@host\ndocker run -p 8080:80 app\n" +
		"kubectl --token-file /var/run/token get pods\nhelm install --password $HELM_PW app\nfaultmaven kb ingest --server URL --token T"},
	{"shell positional args", `echo $1$2 "$6$HOME" cp $1$HOME/backup/file.txt`},
	{"vendor-like words", "hf_hub_download npm_config_cache=/tmp/npm dapiClient sig=SIGTERM xapp-config glpat-short"},
	{"github actions permissions", "permissions:\n  contents: read\n  id-token: write\n  pull-requests: write\n"},
	{"s3 url without signature", "https://bucket.s3.amazonaws.com/key?X-Amz-SignedHeaders=host&X-Amz-Expires=3600&SignatureVersion=4"},
}
