//go:build cgo

package hsmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/agent/hsm"
)

// opencryptoki soft-token facts (Debian opencryptoki 3.8).
const (
	OpenCryptokiModule = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so"
	// OpenCryptokiSOPIN is the soft token's default SO PIN; the fixture
	// re-initialises the token with the same SO PIN, so it stays valid.
	OpenCryptokiSOPIN   = "87654321"
	OpenCryptokiUserPIN = "kf112233" // the soft token takes 4..8 characters
	OpenCryptokiLabel   = "keyferry-ock-test"
	pkcsslotdPIDFile    = "/var/run/pkcsslotd.pid"
	// ockLockFile serialises every user of the machine's single soft token
	// across test processes (go test runs packages in parallel).
	ockLockFile = "/var/lock/keyferry-hsmtest-opencryptoki.lock"
)

// OpenCryptoki makes sure pkcsslotd runs, re-initialises the opencryptoki
// soft token (there is one per machine: every object on it is deleted) and
// returns a Config for it. It holds a machine-wide file lock until the
// test ends, so suites in different packages take turns; do not call it
// twice in one test.
func OpenCryptoki(t testing.TB) hsm.Config {
	t.Helper()
	cfg, release, err := NewOpenCryptokiToken(t.TempDir())
	if err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	t.Cleanup(release)
	return cfg
}

// NewOpenCryptokiToken is OpenCryptoki for programs and TestMain: the PIN
// file goes under dir, and release drops the machine-wide lock (call it
// after closing every HSM on the token).
func NewOpenCryptokiToken(dir string) (cfg hsm.Config, release func(), err error) {
	if _, err := os.Stat(OpenCryptokiModule); err != nil {
		return hsm.Config{}, nil, fmt.Errorf("opencryptoki module missing (%v): %s", err, installHint)
	}
	if _, err := exec.LookPath("pkcsslotd"); err != nil {
		return hsm.Config{}, nil, fmt.Errorf("pkcsslotd not found: %s", installHint)
	}
	lock, err := os.OpenFile(ockLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return hsm.Config{}, nil, fmt.Errorf("open %s: %w", ockLockFile, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return hsm.Config{}, nil, fmt.Errorf("lock %s: %w", ockLockFile, err)
	}
	release = func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		_ = lock.Close()
	}
	fail := func(err error) (hsm.Config, func(), error) {
		release()
		return hsm.Config{}, nil, err
	}
	if err := ensurePkcsslotd(); err != nil {
		return fail(err)
	}
	if err := initOpenCryptokiToken(); err != nil {
		return fail(err)
	}
	pinFile := filepath.Join(dir, "ock-user.pin")
	if err := os.WriteFile(pinFile, []byte(OpenCryptokiUserPIN+"\n"), 0o600); err != nil {
		return fail(err)
	}
	return hsm.Config{Module: OpenCryptokiModule, TokenLabel: OpenCryptokiLabel, PINFile: pinFile, PoolSize: 4}, release, nil
}

func pkcsslotdRunning() bool {
	b, err := os.ReadFile(pkcsslotdPIDFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "pkcsslotd"
}

// ensurePkcsslotd starts the slot daemon if it is not running (it
// daemonises itself; we are root on test machines).
func ensurePkcsslotd() error {
	if pkcsslotdRunning() {
		return nil
	}
	if out, err := exec.Command("pkcsslotd").CombinedOutput(); err != nil {
		return fmt.Errorf("start pkcsslotd: %v: %s (needs root and the pkcs11 group)", err, out)
	}
	for i := 0; i < 50; i++ {
		if pkcsslotdRunning() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pkcsslotd did not come up (no live pid in %s)", pkcsslotdPIDFile)
}

// initOpenCryptokiToken runs C_InitToken on the soft token's slot with the
// SO PIN, then sets the user PIN with C_InitPIN.
func initOpenCryptokiToken() (err error) {
	p := pkcs11.New(OpenCryptokiModule)
	if p == nil {
		return fmt.Errorf("cannot load %s", OpenCryptokiModule)
	}
	// No p.Destroy(): opencryptoki 3.8 crashes in C_Initialize when it is
	// unloaded and loaded again in one process; keep it loaded.
	if err := p.Initialize(); err != nil {
		return fmt.Errorf("opencryptoki C_Initialize: %w", err)
	}
	defer func() {
		if ferr := p.Finalize(); ferr != nil && err == nil {
			err = fmt.Errorf("opencryptoki C_Finalize: %w", ferr)
		}
	}()
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("opencryptoki C_GetSlotList: %w", err)
	}
	slot, found := uint(0), false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && strings.Contains(ti.Model, "SoftTok") {
			slot, found = s, true
			break
		}
	}
	if !found {
		return fmt.Errorf("opencryptoki: no soft token (model SoftTok) among slots %v; is libpkcs11_sw.so configured in /etc/opencryptoki/opencryptoki.conf?", slots)
	}
	if err := p.InitToken(slot, OpenCryptokiSOPIN, OpenCryptokiLabel); err != nil {
		return fmt.Errorf("opencryptoki C_InitToken (SO PIN %s): %w", OpenCryptokiSOPIN, err)
	}
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("opencryptoki C_OpenSession: %w", err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_SO, OpenCryptokiSOPIN); err != nil {
		return fmt.Errorf("opencryptoki C_Login(SO): %w", err)
	}
	if err := p.InitPIN(sh, OpenCryptokiUserPIN); err != nil {
		return fmt.Errorf("opencryptoki C_InitPIN: %w", err)
	}
	if err := p.Logout(sh); err != nil {
		return fmt.Errorf("opencryptoki C_Logout: %w", err)
	}
	return nil
}
