package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params is the Argon2id cost. The values used for a hash are stored
// in its PHC string, so changing them later does not break existing hashes.
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
	KeyLen    uint32 // bytes of derived hash
	SaltLen   uint32 // bytes of random salt
}

// defaultArgon2 is OWASP's minimum recommendation for Argon2id
// (m=19 MiB, t=2, p=1).
var defaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 19456, Threads: 1, KeyLen: 32, SaltLen: 16}

// Bounds on what a PHC string may ask for. A corrupted or hostile record
// must not make one verification allocate gigabytes or spin for minutes.
const (
	maxArgonMemoryKiB = 1 << 21 // 2 GiB
	maxArgonTime      = 64
	maxArgonKeyLen    = 128
	maxArgonSaltLen   = 64
)

var errBadPHC = errors.New("auth: malformed password hash")

// withDefaults fills each zero field from defaultArgon2.
func (p Argon2Params) withDefaults() Argon2Params {
	if p.Time == 0 {
		p.Time = defaultArgon2.Time
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = defaultArgon2.MemoryKiB
	}
	if p.Threads == 0 {
		p.Threads = defaultArgon2.Threads
	}
	if p.KeyLen == 0 {
		p.KeyLen = defaultArgon2.KeyLen
	}
	if p.SaltLen == 0 {
		p.SaltLen = defaultArgon2.SaltLen
	}
	return p
}

func (p Argon2Params) validate() error {
	switch {
	case p.Time > maxArgonTime:
		return fmt.Errorf("auth: config Argon2.Time %d exceeds %d", p.Time, maxArgonTime)
	case p.MemoryKiB > maxArgonMemoryKiB:
		return fmt.Errorf("auth: config Argon2.MemoryKiB %d exceeds %d", p.MemoryKiB, maxArgonMemoryKiB)
	case p.MemoryKiB < 8*uint32(p.Threads):
		return fmt.Errorf("auth: config Argon2.MemoryKiB %d must be at least 8 x Threads (%d)", p.MemoryKiB, 8*uint32(p.Threads))
	case p.KeyLen < 16 || p.KeyLen > maxArgonKeyLen:
		return fmt.Errorf("auth: config Argon2.KeyLen %d must be in [16, %d]", p.KeyLen, maxArgonKeyLen)
	case p.SaltLen < 8 || p.SaltLen > maxArgonSaltLen:
		return fmt.Errorf("auth: config Argon2.SaltLen %d must be in [8, %d]", p.SaltLen, maxArgonSaltLen)
	}
	return nil
}

// phcB64 is the PHC string format's base64: standard alphabet, no padding.
var phcB64 = base64.RawStdEncoding

// hashPassword derives a fresh-salted Argon2id hash and encodes it as
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<hash>.
func hashPassword(password string, p Argon2Params) string {
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go ≥ 1.24)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		phcB64.EncodeToString(salt), phcB64.EncodeToString(key))
}

// checkPassword reports whether password matches the PHC-encoded hash. The
// final comparison is constant-time so that response timing does not leak
// how many leading bytes of the derived key matched.
func checkPassword(encoded, password string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC decodes an Argon2id PHC string, rejecting anything outside the
// bounds a hash of ours could have.
func parsePHC(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadPHC
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", errBadPHC, parts[2])
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, errBadPHC
	}
	var seen [3]bool
	for _, kv := range params {
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			return p, nil, nil, errBadPHC
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return p, nil, nil, errBadPHC
		}
		switch {
		case name == "m" && !seen[0]:
			p.MemoryKiB, seen[0] = uint32(n), true
		case name == "t" && !seen[1]:
			p.Time, seen[1] = uint32(n), true
		case name == "p" && !seen[2] && n <= 255:
			p.Threads, seen[2] = uint8(n), true
		default:
			return p, nil, nil, errBadPHC
		}
	}
	salt, err := phcB64.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, errBadPHC
	}
	key, err := phcB64.DecodeString(parts[5])
	if err != nil {
		return p, nil, nil, errBadPHC
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if p.Time == 0 || p.Threads == 0 {
		return p, nil, nil, errBadPHC
	}
	if p.validate() != nil {
		return p, nil, nil, errBadPHC
	}
	return p, salt, key, nil
}
