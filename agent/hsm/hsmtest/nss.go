package hsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
)

// NSS softoken facts (Debian libnss3 3.87).
const (
	// NSSModule is the Debian path of NSS's softoken PKCS#11 module.
	NSSModule = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so"
	// NSSUserPIN is the database password the fixture sets (certutil -N).
	NSSUserPIN = "kf-nss-1234"
)

// NSSInitArgs is the C_Initialize reserved string that starts NSS softoken
// on the database in dir, its database token labelled label.
func NSSInitArgs(dir, label string) string {
	return fmt.Sprintf("configdir='sql:%s' certPrefix='' keyPrefix='' secmod='secmod.db' flags= dbTokenDescription='%s'", dir, label)
}

// NSS creates a fresh NSS database in t.TempDir() and returns a Config for
// its database token. NSS softoken keeps one configuration per process:
// close any HSM opened on another NSS database before opening this one.
func NSS(t testing.TB) hsm.Config {
	t.Helper()
	cfg, err := NewNSSToken(t.TempDir())
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	return cfg
}

// NewNSSToken is NSS for programs and TestMain: a fresh database under
// dir/nssdb made with certutil -N (password NSSUserPIN, also written to the
// config's PIN file), its token labelled kf-nss-<random>, pool size 4.
func NewNSSToken(dir string) (hsm.Config, error) {
	if _, err := os.Stat(NSSModule); err != nil {
		return hsm.Config{}, fmt.Errorf("NSS softoken missing (%v): run `make deps` (apt-get install libnss3 libnss3-tools)", err)
	}
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		return hsm.Config{}, fmt.Errorf("certutil not found: run `make deps` (apt-get install libnss3-tools)")
	}
	db := filepath.Join(dir, "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return hsm.Config{}, err
	}
	pinFile := filepath.Join(dir, "nss-user.pin")
	if err := os.WriteFile(pinFile, []byte(NSSUserPIN+"\n"), 0o600); err != nil {
		return hsm.Config{}, err
	}
	if out, err := exec.Command(certutil, "-N", "-d", "sql:"+db, "-f", pinFile).CombinedOutput(); err != nil {
		return hsm.Config{}, fmt.Errorf("certutil -N: %v: %s", err, out)
	}
	label := "kf-nss-" + randHex(4)
	return hsm.Config{
		Module:     NSSModule,
		InitArgs:   NSSInitArgs(db, label),
		TokenLabel: label,
		PINFile:    pinFile,
		PoolSize:   4,
		// KWPMechanism stays 0: the probe finds that NSS's RFC 5649 is
		// CKM_AES_KEY_WRAP_KWP (0x210B), not its CKM_AES_KEY_WRAP_PAD
		// (RFC 3394 over PKCS#7 padding).
	}, nil
}
