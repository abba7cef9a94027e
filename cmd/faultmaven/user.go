package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/persistence"
)

const userUsage = `Usage: faultmaven user add --username NAME [--email E] [--display-name D] [--admin] (--password-stdin | FM_PASSWORD)

Creates a user directly in the data directory. The server must not be running on it.
`

func runUser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, userUsage)
		return errors.New("unknown or missing user command (only 'add' exists)")
	}
	var (
		data, username, email, display string
		admin, pwStdin                 bool
	)
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.StringVar(&data, "data", "./data", "data directory of the server")
	fs.StringVar(&username, "username", "", "user name (3-50 characters of A-Z a-z 0-9 . _ @ -)")
	fs.StringVar(&email, "email", "", "e-mail address (optional)")
	fs.StringVar(&display, "display-name", "", "display name (optional, defaults to the user name)")
	fs.BoolVar(&admin, "admin", false, "give the user the admin role")
	fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input (otherwise from FM_PASSWORD)")
	if err := parseFlags(fs, args[1:], func(k string) string {
		if k == "FM_PASSWORD_STDIN" || k == "FM_ADMIN" {
			return "" // never switch these on from the environment by accident
		}
		return getenv(k)
	}, stdout); err != nil {
		return err
	}
	if username == "" {
		return errors.New("--username is required")
	}
	password := getenv("FM_PASSWORD")
	if pwStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return errors.New("no password given: pipe it with --password-stdin or set FM_PASSWORD")
	}
	store, err := persistence.Open(data, nil)
	if err != nil {
		if errors.Is(err, persistence.ErrLocked) {
			return fmt.Errorf("data directory %s is in use by a running faultmaven server: stop it first, "+
				"or register through the API", data)
		}
		return err
	}
	defer store.Close()
	ks, err := store.Keyspace(persistence.SpaceAuth)
	if err != nil {
		return err
	}
	svc, err := auth.New(ks, auth.Config{KeyFile: filepath.Join(data, "secrets", "jwt.key")})
	if err != nil {
		return err
	}
	u, err := svc.CreateUser(ctx, auth.NewUser{Username: username, Password: password, Email: email, DisplayName: display, Admin: admin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (%s) with roles %s\n", u.Username, u.UserID, strings.Join(u.Roles, ","))
	return nil
}
