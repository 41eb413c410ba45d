package hsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
)

// SoftHSMModule is the Debian path of the SoftHSM2 PKCS#11 module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSM test token PINs (the user PIN is also written to the config's PIN file).
const (
	SoftHSMUserPIN = "kf-user-1234"
	SoftHSMSOPIN   = "kf-so-5678"
)

// installHint names the command that installs the test HSMs.
const installHint = "run `make deps` (apt-get install softhsm2 opencryptoki opensc)"

// SoftHSM creates a fresh SoftHSM2 token in t.TempDir() and returns a
// Config for it (PIN in a file, pool size 4). It points SOFTHSM2_CONF at
// the token's own softhsm2.conf with t.Setenv, so tests that call it cannot
// be parallel (the environment is process-wide; testing panics on
// t.Parallel). SoftHSM reads SOFTHSM2_CONF at C_Initialize: close any HSM
// opened on another SoftHSM token before opening this one.
func SoftHSM(t testing.TB) hsm.Config {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	t.Setenv("SOFTHSM2_CONF", conf)
	cfg, err := newSoftHSMToken(dir)
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	return cfg
}

// NewSoftHSMToken is SoftHSM for programs (the sandbox): it creates a fresh
// token under dir and sets SOFTHSM2_CONF for the whole process with
// os.Setenv.
func NewSoftHSMToken(dir string) (hsm.Config, error) {
	if err := os.Setenv("SOFTHSM2_CONF", filepath.Join(dir, "softhsm2.conf")); err != nil {
		return hsm.Config{}, err
	}
	return newSoftHSMToken(dir)
}

// NewSoftHSMTokenForChild creates a fresh token under dir for another
// process (which gets SOFTHSM2_CONF=dir/softhsm2.conf in its own
// environment) and leaves this process's SOFTHSM2_CONF alone: SoftHSM
// re-reads the variable whenever the module is initialised again (an HSM
// recovering from a device or session loss does that), so replacing it
// under a live HSM of this process makes that HSM lose its token.
func NewSoftHSMTokenForChild(dir string) (hsm.Config, error) { return newSoftHSMToken(dir) }

func newSoftHSMToken(dir string) (hsm.Config, error) {
	if _, err := os.Stat(SoftHSMModule); err != nil {
		return hsm.Config{}, fmt.Errorf("SoftHSM2 module missing (%v): %s", err, installHint)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return hsm.Config{}, fmt.Errorf("softhsm2-util not found: %s", installHint)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return hsm.Config{}, err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return hsm.Config{}, err
	}
	label := "kf-test-" + randHex(4)
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", SoftHSMUserPIN, "--so-pin", SoftHSMSOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return hsm.Config{}, fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	pinFile := filepath.Join(dir, "user.pin")
	if err := os.WriteFile(pinFile, []byte(SoftHSMUserPIN+"\n"), 0o600); err != nil {
		return hsm.Config{}, err
	}
	return hsm.Config{Module: SoftHSMModule, TokenLabel: label, PINFile: pinFile, PoolSize: 4}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
