package auth

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits (contract §2.1 and the account form).
const (
	minUsername    = 3
	maxUsername    = 50
	minPassword    = 8
	maxPassword    = 1024 // bytes; bounds the Argon2 input a caller can make us hash
	maxEmail       = 254  // RFC 5321 path limit
	maxDisplayName = 100
)

// normalize trims the free-text fields and fills the display name default.
// The password is left exactly as typed.
func normalize(u NewUser) NewUser {
	u.Username = strings.TrimSpace(u.Username)
	u.Email = strings.TrimSpace(u.Email)
	u.DisplayName = strings.TrimSpace(u.DisplayName)
	if u.DisplayName == "" {
		u.DisplayName = u.Username
	}
	return u
}

// validateNewUser checks a normalized NewUser; errors wrap ErrInvalidInput
// with a reason fit to show the user.
func validateNewUser(u NewUser) error {
	if err := validateUsername(u.Username); err != nil {
		return err
	}
	if err := validatePassword(u.Password); err != nil {
		return err
	}
	if err := validateEmail(u.Email); err != nil {
		return err
	}
	return validateDisplayName(u.DisplayName)
}

func validateUsername(name string) error {
	if len(name) < minUsername || len(name) > maxUsername {
		return fmt.Errorf("%w: username must be %d-%d characters", ErrInvalidInput, minUsername, maxUsername)
	}
	for i := 0; i < len(name); i++ {
		if !usernameByte(name[i]) {
			return fmt.Errorf("%w: username may contain only letters, digits and . _ @ -", ErrInvalidInput)
		}
	}
	return nil
}

// usernameByte reports whether c may appear in a username. The set is
// ASCII-only so that case folding is unambiguous and byte length equals
// character length.
func usernameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == '@', c == '-':
		return true
	}
	return false
}

func validatePassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return fmt.Errorf("%w: password must be %d-%d bytes", ErrInvalidInput, minPassword, maxPassword)
	}
	return nil
}

// validateEmail accepts "" (email is optional) or one bare addr-spec.
func validateEmail(email string) error {
	if email == "" {
		return nil
	}
	bad := fmt.Errorf("%w: email address is not valid", ErrInvalidInput)
	if len(email) > maxEmail {
		return fmt.Errorf("%w: email must be at most %d characters", ErrInvalidInput, maxEmail)
	}
	for _, r := range email {
		if r < 0x21 || r == 0x7f { // no spaces or control characters anywhere
			return bad
		}
	}
	addr, err := mail.ParseAddress(email)
	// ParseAddress also accepts `Name <a@b>` and comments; requiring the
	// parsed address to equal the input keeps only the bare form.
	if err != nil || addr.Address != email {
		return bad
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return bad
	}
	return nil
}

func validateDisplayName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: display name must be valid UTF-8", ErrInvalidInput)
	}
	if utf8.RuneCountInString(name) > maxDisplayName {
		return fmt.Errorf("%w: display name must be at most %d characters", ErrInvalidInput, maxDisplayName)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: display name must not contain control characters", ErrInvalidInput)
		}
	}
	return nil
}
