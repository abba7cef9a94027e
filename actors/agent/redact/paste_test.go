package redact

import (
	"fmt"
	"strings"
	"testing"
)

// TestDetectCoversPastedSecrets holds what engineers paste into a case
// while troubleshooting: configuration files, command lines, headers,
// connection strings and vendor tokens, each with the one secret in it.
// The secret must lie wholly inside one span (the kind and the exact
// extent are the corpus tests' business). All credentials are fake.
func TestDetectCoversPastedSecrets(t *testing.T) {
	cases := []struct{ name, text, secret string }{
		{"xml password", "<password>Tr0ub4dor&3x</password>", "Tr0ub4dor&3x"},
		{"maven settings", "<server>\n  <id>nexus</id>\n  <username>deploy</username>\n  <password>n3xusDepl0y!</password>\n</server>", "n3xusDepl0y!"},
		{"hibernate prop", `<property name="hibernate.connection.password">hib3rn8Pass</property>`, "hib3rn8Pass"},
		{"xml attr", `<user username="tomcat" password="t0mc4tS3cret" roles="manager-gui"/>`, "t0mc4tS3cret"},
		{"cookie header", "Cookie: sessionid=8f14e45fceea167a5a36dedd4bea2543; csrftoken=abc", "8f14e45fceea167a5a36dedd4bea2543"},
		{"set-cookie", "Set-Cookie: JSESSIONID=4A1B2C3D4E5F60718293A4B5C6D7E8F9; Path=/; HttpOnly", "4A1B2C3D4E5F60718293A4B5C6D7E8F9"},
		{"presigned s3", "https://bucket.s3.amazonaws.com/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024", "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"},
		{"azure sas", "https://acct.blob.core.windows.net/c/b?sv=2021-06-08&ss=b&srt=sco&sp=rl&se=2024-01-01&sig=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy%3D", "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFy%3D"},
		{"azure conn", "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="},
		{"prose password", "I logged in with password hunter2 and it failed", "hunter2"},
		{"password colon word mid-line", "I tried the db password: swordfish, user admin, no luck", "swordfish"},
		{"redis requirepass", "# redis.conf\nbind 0.0.0.0\nrequirepass Zx9sT4vQ8pL2mN7k\n", "Zx9sT4vQ8pL2mN7k"},
		{"redis masterauth word", "masterauth foobared\n", "foobared"},
		{"directive api key", "  api_key 3f9a0c1d2e4b\n", "3f9a0c1d2e4b"},
		{"redis requirepass in a message", "redis latency spikes; requirepass Zx9sT4vQ8pL2mN7k", "Zx9sT4vQ8pL2mN7k"},
		{"prose password is", "the db password is Sup3rS3cret! but it keeps saying denied", "Sup3rS3cret!"},
		{"netrc", "machine api.example.com login deploy password n3trcP4ss", "n3trcP4ss"},
		{"gitlab pat", "export GL=glpat-xxxxxxxxxxxxxxxxxxxx1234", "glpat-xxxxxxxxxxxxxxxxxxxx1234"},
		{"gitlab pat bare", "token glpat-Ab3dEfGh1jKlMn0pQr5t in CI", "glpat-Ab3dEfGh1jKlMn0pQr5t"},
		{"npm token", "//registry.npmjs.org/:_authToken=npm_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6", "npm_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"},
		{"npm bare", "I used npm_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6 to publish", "npm_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"},
		{"vault token", "VAULT_TOKEN=hvs.CAESIJ3b4tYQxXr8k2Lw9mN1pQ7sT0uV3wX6yZ9aB2cD5eF8", "hvs.CAESIJ3b4tYQxXr8k2Lw9mN1pQ7sT0uV3wX6yZ9aB2cD5eF8"},
		{"vault bare", "login with hvs.CAESIJ3b4tYQxXr8k2Lw9mN1pQ7sT0uV3wX6yZ9aB2cD5eF8 failed", "hvs.CAESIJ3b4tYQxXr8k2Lw9mN1pQ7sT0uV3wX6yZ9aB2cD5eF8"},
		{"hf token bare", "HF says 401 for hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567", "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"},
		{"sendgrid", "key SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012 rejected", "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012"},
		{"docker pat", "docker login -u me -p dckr_pat_2b3e36beeb386dfdaacb9b46004", "dckr_pat_2b3e36beeb386dfdaacb9b46004"},
		{"docker login p", "docker login -u me -p Pa55w0rdDock3r registry.io", "Pa55w0rdDock3r"},
		{"basic auth", "Authorization: Basic ZGVwbG95OnMzY3JldFBhc3M=", "ZGVwbG95OnMzY3JldFBhc3M="},
		{"curl H bearer", `curl -H "Authorization: Bearer abcdef0123456789abcdef0123456789" https://x`, "abcdef0123456789abcdef0123456789"},
		{"x-api-key", "curl -H 'X-API-Key: 9f8e7d6c5b4a39281706f5e4d3c2b1a0' https://api", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"},
		{"sentry dsn", "SENTRY_DSN=https://1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6@o123456.ingest.sentry.io/7654321", "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"},
		{"token in a clone url", "git clone https://0123456789abcdef0123456789abcdef01234567@github.com/acme/infra.git", "0123456789abcdef0123456789abcdef01234567"},
		{"redis url", "redis://:r3disP4ss@cache:6379/0", "r3disP4ss"},
		{"mongodb srv", "mongodb+srv://app:M0ng0Pa55@cluster0.ab1cd.mongodb.net/prod", "M0ng0Pa55"},
		{"jdbc password param", "jdbc:postgresql://db:5432/app?user=app&password=JdbcP4ss99", "JdbcP4ss99"},
		{"sqlserver conn", "Server=tcp:db.example.com,1433;Database=app;User ID=sa;Password=Sql$erver2019;Encrypt=true", "Sql$erver2019"},
		{"pgpass", "db.example.com:5432:app:appuser:PgP4ssw0rd", "PgP4ssw0rd"},
		{"mysql -p", "mysql -u root -pMyR00tPw -h db", "MyR00tPw"},
		{"sshpass", "sshpass -p 'Ssh9assW0rd' ssh deploy@host", "Ssh9assW0rd"},
		{"env export", "export DB_PASSWORD='qwerty12345'", "qwerty12345"},
		{"yaml pw", "database:\n  password: \"yamlPa55word\"\n", "yamlPa55word"},
		{"json number pw", `{"user":"app","password":123456789}`, "123456789"},
		{"openssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"},
		{"gcp sa json", `{"type": "service_account", "private_key_id": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"}`, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"},
		{"telegram bot", "bot token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw works", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
		{"discord webhook", "https://discord.com/api/webhooks/123456789012345678/abcDEF_ghiJKL-mnoPQRstuVWXyz0123456789abcdefGHIJKLmnopQRSTuv", "abcDEF_ghiJKL-mnoPQRstuVWXyz0123456789abcdefGHIJKLmnopQRSTuv"},
		{"twilio", "TWILIO_AUTH_TOKEN=8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543"},
		{"kube token", "users:\n- name: admin\n  user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlc2lnbmF0dXJl", "c2lnbmF0dXJlc2lnbmF0dXJl"},
		{"kube client key data", "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB\n", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB"},
		{"docker config auth", `{"auths":{"https://index.docker.io/v1/":{"auth":"ZGVwbG95OnMzY3JldFBhc3M="}}}`, "ZGVwbG95OnMzY3JldFBhc3M="},
		{"aws secret bare", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		{"aws session token", "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"},
		{"password flag eq", "./app --db-password=Fl4gP4ss --port 80", "Fl4gP4ss"},
		{"password flag space", "./app --password Fl4gP4ss2 --port 80", "Fl4gP4ss2"},
		{"htpasswd", "admin:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"},
		{"ldap bind", "ldapsearch -x -D cn=admin,dc=ex,dc=com -w LdapB1nd! -b dc=ex", "LdapB1nd!"},
		{"PGPASSWORD cmd", "PGPASSWORD=pgCmdP4ss psql -h db -U app", "pgCmdP4ss"},
		{"slack xapp", "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
		{"grafana sa", "glsa_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345_1a2b3c4d", "glsa_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345_1a2b3c4d"},
		{"pypi", "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZjAxLTIzNDUtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OQACKlszLCJhYmMiXQAABiD", "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZjAxLTIzNDUtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OQACKlszLCJhYmMiXQAABiD"},
		{"digitalocean", "dop_v1_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b", "dop_v1_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"},
		{"shopify", "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", "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"},
		{"private key rsa escaped in json", `"key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA\\n-----END RSA PRIVATE KEY-----"`, "MIIEpAIBAAKCAQEA"},
		{"redis-cli -a", "redis-cli -h cache -a R3disCl1Pass ping", "R3disCl1Pass"},
		{"rabbitmq amqp", "amqp://guest:Rabb1tPw@mq:5672/", "Rabb1tPw"},
		{"ini pw", "[client]\nuser=root\npassword = IniP4ssw0rd\n", "IniP4ssw0rd"},
		{"properties", "spring.datasource.password=Spr1ngP4ss", "Spr1ngP4ss"},
		{"terraform", `  password = "TfV4rP4ss"`, "TfV4rP4ss"},
		{"wifi psk", "wpa_passphrase=W1f1Passphrase", "W1f1Passphrase"},
		{"private token header", "PRIVATE-TOKEN: 9koXpg98eAheJpvBs5tK", "9koXpg98eAheJpvBs5tK"},
		{"client secret", "client_secret: 7c1e0f4b-2a3d-4e5f-8a9b-0c1d2e3f4a5b", "7c1e0f4b-2a3d-4e5f-8a9b-0c1d2e3f4a5b"},
	}
	for _, c := range cases {
		at := strings.Index(c.text, c.secret)
		if at < 0 {
			t.Fatalf("%s: the secret is not in the text", c.name)
		}
		spans := Detect(c.text)
		covered := false
		var got []string
		for _, s := range spans {
			if s.Start <= at && s.End >= at+len(c.secret) {
				covered = true
			}
			got = append(got, fmt.Sprintf("%s:%q", s.Kind, c.text[s.Start:s.End]))
		}
		if !covered {
			t.Errorf("%s: %q not redacted; spans %v", c.name, c.secret, got)
		}
		checkSpanContract(t, c.text, spans)
	}
}
