package gateway

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func TestAuthFlow(t *testing.T) {
	e := newEnv(t, Config{})

	// Register: 201 with tokens and the user the extension stores.
	rec := e.call("POST", "/api/v1/auth/register", "",
		`{"username":"erin","password":"`+testPassword+`","email":"erin@example.com","display_name":"Erin"}`)
	wantStatus(t, rec, http.StatusCreated)
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"access_token", "token_type", "expires_in", "refresh_token", "user"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("register response lacks %s: %s", k, rec.Body)
		}
	}
	reg := decode[tokenResponse](t, rec)
	if reg.TokenType != "bearer" || reg.ExpiresIn <= 300 || reg.User == nil ||
		reg.User.UserID == "" || reg.User.Username != "erin" || len(reg.User.Roles) == 0 {
		t.Fatalf("register tokens: %+v user %+v", reg, reg.User)
	}
	wantError(t, e.call("POST", "/api/v1/auth/register", "",
		`{"username":"ERIN","password":"`+testPassword+`"}`), http.StatusConflict, CodeUserExists)
	body := wantError(t, e.call("POST", "/api/v1/auth/register", "", `{"username":"x","password":"`+testPassword+`"}`),
		http.StatusUnprocessableEntity, CodeValidation)
	if body.Detail != "username must be 3-50 characters" {
		t.Fatalf("422 reason not passed through: %q", body.Detail)
	}

	// Login.
	body = wantError(t, e.call("POST", "/api/v1/auth/login", "", `{"username":"erin","password":"wrong password"}`),
		http.StatusUnauthorized, CodeInvalidCredentials)
	if body.Detail != "Invalid username or password" {
		t.Fatalf("login failure detail %q", body.Detail)
	}
	rec = e.call("POST", "/api/v1/auth/login", "", `{"username":" erin ","password":"`+testPassword+`","email":null,"display_name":null}`)
	wantStatus(t, rec, http.StatusOK)
	login := decode[tokenResponse](t, rec)
	if login.AccessToken == "" || login.RefreshToken == "" || login.User == nil || login.User.UserID != reg.User.UserID {
		t.Fatalf("login tokens: %+v", login)
	}

	// Refresh rotates: the new pair works, the old refresh token is spent.
	rec = e.call("POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+login.RefreshToken+`"}`)
	wantStatus(t, rec, http.StatusOK)
	ref := decode[tokenResponse](t, rec)
	if ref.AccessToken == "" || ref.RefreshToken == "" || ref.ExpiresIn <= 0 || ref.RefreshToken == login.RefreshToken {
		t.Fatalf("refresh did not rotate: %+v", ref)
	}
	wantError(t, e.call("POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+login.RefreshToken+`"}`),
		http.StatusUnauthorized, CodeInvalidToken)
	wantError(t, e.call("POST", "/api/v1/auth/refresh", "", `{"refresh_token":"made-up"}`),
		http.StatusUnauthorized, CodeInvalidToken)

	// Me, with the registration token (still valid: refresh revoked only
	// the reused family).
	rec = e.call("GET", "/api/v1/auth/me", reg.AccessToken, "")
	wantStatus(t, rec, http.StatusOK)
	me := decode[map[string]any](t, rec)
	if me["user_id"] != reg.User.UserID || me["username"] != "erin" {
		t.Fatalf("me: %v", me)
	}
	if roles, ok := me["roles"].([]any); !ok || len(roles) == 0 {
		t.Fatalf("me roles: %v", me["roles"])
	}

	// Logout: bodiless POST with Content-Type: application/json.
	rec = e.call("POST", "/api/v1/auth/logout", reg.AccessToken, "", "X-Session-Id", "whatever")
	wantStatus(t, rec, http.StatusOK)
	out := decode[map[string]any](t, rec)
	if out["all_sessions_ended"] != true || out["message"] != "Logged out" {
		t.Fatalf("logout: %v", out)
	}
	if n, ok := out["revoked_tokens"].(float64); !ok || n < 1 {
		t.Fatalf("revoked_tokens %v", out["revoked_tokens"])
	}

	// Every token issued before logout is dead.
	for _, tok := range []string{reg.AccessToken, login.AccessToken, ref.AccessToken} {
		wantError(t, e.call("GET", "/api/v1/auth/me", tok, ""), http.StatusUnauthorized, CodeInvalidToken)
	}
	wantError(t, e.call("POST", "/api/v1/auth/refresh", "", `{"refresh_token":"`+ref.RefreshToken+`"}`),
		http.StatusUnauthorized, CodeInvalidToken)
	// Logging in again works.
	wantStatus(t, e.call("POST", "/api/v1/auth/login", "", `{"username":"erin","password":"`+testPassword+`"}`), http.StatusOK)
}

func TestAuthConfig(t *testing.T) {
	e := newEnv(t, Config{})
	rec := e.call("GET", "/api/v1/auth/config", "", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	want := map[string]any{
		"auth_mode": "local", "login_endpoint": "/api/v1/auth/login",
		"register_endpoint": "/api/v1/auth/register", "supports_registration": true, "oauth": nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("auth config %v, want %v", got, want)
	}

	closed := newEnv(t, Config{}, func(o *envOption) { o.closedRegistration = true })
	got = decode[map[string]any](t, closed.call("GET", "/api/v1/auth/config", "", ""))
	if got["supports_registration"] != false || got["auth_mode"] != "local" {
		t.Fatalf("closed registration config: %v", got)
	}
	wantError(t, closed.call("POST", "/api/v1/auth/register", "", `{"username":"frank","password":"`+testPassword+`"}`),
		http.StatusForbidden, CodeRegistrationClosed)
}

func TestAuthBadBodies(t *testing.T) {
	e := newEnv(t, Config{})
	wantError(t, e.call("POST", "/api/v1/auth/login", "", `{"username":`), http.StatusBadRequest, CodeMalformedJSON)
	wantError(t, e.call("POST", "/api/v1/auth/login", "", ``), http.StatusUnprocessableEntity, CodeValidation)
	wantError(t, e.call("POST", "/api/v1/auth/refresh", "", `{}`), http.StatusUnprocessableEntity, CodeValidation)
	wantError(t, e.call("POST", "/api/v1/auth/register", "", `{"username":5}`), http.StatusUnprocessableEntity, CodeValidation)
}
