// Package e2e holds end-to-end tests that build bin/faultmaven and drive it
// as a real OS process over loopback HTTP: crash recovery under kill -9,
// restarts, and the full client flows.
package e2e
