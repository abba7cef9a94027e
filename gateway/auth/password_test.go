package auth

import (
	"regexp"
	"strings"
	"testing"
)

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword(t *testing.T) {
	h1 := hashPassword("hunter2hunter2", tinyArgon)
	h2 := hashPassword("hunter2hunter2", tinyArgon)
	if !phcRE.MatchString(h1) {
		t.Fatalf("hash %q is not the expected PHC string", h1)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	cases := []struct {
		pw   string
		want bool
	}{
		{"hunter2hunter2", true},
		{"hunter2hunter3", false},
		{"Hunter2hunter2", false},
		{"hunter2hunter2 ", false},
		{"", false},
	}
	for _, tc := range cases {
		ok, err := checkPassword(h1, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("checkPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
}

func TestDefaultArgon2Params(t *testing.T) {
	p := Argon2Params{}.withDefaults()
	if p != (Argon2Params{Time: 2, MemoryKiB: 19456, Threads: 1, KeyLen: 32, SaltLen: 16}) {
		t.Fatalf("defaults = %+v", p)
	}
	if err := p.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParsePHCRejects(t *testing.T) {
	good := hashPassword("hunter2hunter2", tinyArgon)
	parts := strings.Split(good, "$")
	join := func(p ...string) string { return strings.Join(p, "$") }
	cases := map[string]string{
		"empty":           "",
		"bcrypt":          "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"argon2i":         join("", "argon2i", parts[2], parts[3], parts[4], parts[5]),
		"version 16":      join("", "argon2id", "v=16", parts[3], parts[4], parts[5]),
		"missing hash":    join("", "argon2id", parts[2], parts[3], parts[4]),
		"extra field":     good + "$x",
		"two params":      join("", "argon2id", parts[2], "m=64,t=1", parts[4], parts[5]),
		"repeated param":  join("", "argon2id", parts[2], "m=64,m=64,p=1", parts[4], parts[5]),
		"unknown param":   join("", "argon2id", parts[2], "m=64,t=1,x=1", parts[4], parts[5]),
		"zero time":       join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5]),
		"zero threads":    join("", "argon2id", parts[2], "m=64,t=1,p=0", parts[4], parts[5]),
		"huge memory":     join("", "argon2id", parts[2], "m=4294967295,t=1,p=1", parts[4], parts[5]),
		"huge time":       join("", "argon2id", parts[2], "m=64,t=100000,p=1", parts[4], parts[5]),
		"threads > 255":   join("", "argon2id", parts[2], "m=64,t=1,p=256", parts[4], parts[5]),
		"negative":        join("", "argon2id", parts[2], "m=-64,t=1,p=1", parts[4], parts[5]),
		"bad salt base64": join("", "argon2id", parts[2], parts[3], "!!!!", parts[5]),
		"short salt":      join("", "argon2id", parts[2], parts[3], "AAAA", parts[5]),
		"short hash":      join("", "argon2id", parts[2], parts[3], parts[4], "AAAA"),
		"padded base64":   join("", "argon2id", parts[2], parts[3], parts[4]+"==", parts[5]),
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := parsePHC(enc); err == nil {
				t.Fatalf("parsePHC accepted %q", enc)
			}
			if ok, err := checkPassword(enc, "hunter2hunter2"); ok || err == nil {
				t.Fatalf("checkPassword on %q = %v, %v", enc, ok, err)
			}
		})
	}
	if _, _, _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(good): %v", err)
	}
}
