//go:build cgo

package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// HSM is one logged-in token behind a bounded session pool. It is safe for
// concurrent use. After device loss (CKR_DEVICE_ERROR, CKR_GENERAL_ERROR,
// CKR_SESSION_HANDLE_INVALID, CKR_CRYPTOKI_NOT_INITIALIZED, ...) the next
// operation drains the pool, finalises and re-initialises the module,
// reopens and re-logs in, and retries the operation once.
//
// Several HSM values on the same module in one process share the module's
// global state: C_Finalize (Close, or recovery) of one ends the others'
// sessions, which then recover on their next operation.
type HSM struct {
	cfg   Config
	log   *slog.Logger
	token string
	pin   string

	// sem bounds the sessions in use; idle holds open sessions ready to reuse.
	sem  chan struct{}
	idle chan pkcs11.SessionHandle

	// mu: operations hold it shared; recovery and Close hold it exclusive,
	// so no operation is in flight while the module is re-initialised.
	mu     sync.RWMutex
	p      module
	slot   uint
	epoch  uint64
	closed bool

	capMu  sync.Mutex
	probed *probeResult
}

// session is what an operation gets from the pool.
type session struct {
	p     module
	h     pkcs11.SessionHandle
	token string
	hsm   *HSM
}

// wrapErr turns a pkcs11 error into a *Error for op.
func (s session) wrapErr(op string, err error) error {
	return s.hsm.wrapErr(op, "", err)
}

func (s session) wrapMechErr(op string, mech uint, err error) error {
	return s.hsm.wrapErr(op, mechName(mech), err)
}

func (h *HSM) wrapErr(op, mech string, err error) error {
	if err == nil {
		return nil
	}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return &Error{Op: op, Code: uint(pe), Token: h.token, Mechanism: mech, Err: err}
	}
	return fmt.Errorf("hsm: %s on token %q: %w", op, h.token, err)
}

// Open loads the module, initialises it with OS locking, finds the token,
// reads the PIN and logs in. ctx bounds nothing inside the module (PKCS#11
// calls cannot be cancelled) but is checked before starting.
func Open(ctx context.Context, cfg Config) (*HSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pin, err := cfg.readPIN()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &HSM{
		cfg:   cfg,
		log:   log.With("component", "hsm", "token", cfg.tokenName()),
		token: cfg.tokenName(),
		pin:   pin,
		sem:   make(chan struct{}, cfg.PoolSize),
		idle:  make(chan pkcs11.SessionHandle, cfg.PoolSize),
	}
	p, err := loadModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	h.p = p
	if moduleHook != nil {
		h.p = moduleHook(p)
	}
	if err := h.start(); err != nil {
		return nil, err
	}
	h.log.Info("hsm opened", "module", cfg.Module, "slot", h.slot, "pool_size", cfg.PoolSize)
	return h, nil
}

// start initialises the module, selects the slot and logs in one session,
// which it leaves in the idle pool (the login state lives as long as one
// session of the application is open). Caller holds mu exclusively or owns h.
func (h *HSM) start() error {
	// miekg v1.1.2 passes CK_C_INITIALIZE_ARGS with flags = CKF_OS_LOCKING_OK
	// by default; say so explicitly.
	opts := []pkcs11.InitializeOption{pkcs11.InitializeWithFlags(pkcs11.CKF_OS_LOCKING_OK)}
	if h.cfg.InitArgs != "" {
		opts = append(opts, pkcs11.InitializeWithReserved(initReserved(h.cfg.InitArgs)))
	}
	err := h.p.Initialize(opts...)
	if err != nil && codeOf(err) != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
		return h.wrapErr("C_Initialize", "", err)
	}
	slot, err := h.findSlot()
	if err != nil {
		return err
	}
	h.slot = slot
	h.epoch++
	sh, err := h.openSession()
	if err != nil {
		return err
	}
	h.idle <- sh
	return nil
}

func (h *HSM) findSlot() (uint, error) {
	slots, err := h.p.GetSlotList(true)
	if err != nil {
		return 0, h.wrapErr("C_GetSlotList", "", err)
	}
	var seen []string
	var match []uint
	for _, s := range slots {
		ti, err := h.p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		label := strings.TrimRight(ti.Label, " \x00")
		serial := strings.TrimRight(ti.SerialNumber, " \x00")
		seen = append(seen, fmt.Sprintf("%q/%s", label, serial))
		if (h.cfg.TokenLabel != "" && label == h.cfg.TokenLabel) ||
			(h.cfg.TokenSerial != "" && serial == h.cfg.TokenSerial) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 0:
		return 0, fmt.Errorf("%w: %s in module %s (present: %s)", ErrTokenNotFound, h.token, h.cfg.Module, strings.Join(seen, ", "))
	case 1:
		return match[0], nil
	}
	// NSS softoken: both of its tokens carry serial 0000000000000000, so a
	// serial may name more than one token; never pick one of them silently.
	return 0, fmt.Errorf("%w: %s names %d tokens in module %s (present: %s); select the token by a label or serial only it has",
		ErrAmbiguousToken, h.token, len(match), h.cfg.Module, strings.Join(seen, ", "))
}

// openSession opens a read/write session and makes sure the user is logged
// in (CKR_USER_ALREADY_LOGGED_IN is success).
func (h *HSM) openSession() (pkcs11.SessionHandle, error) {
	sh, err := h.p.OpenSession(h.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, h.wrapErr("C_OpenSession", "", err)
	}
	if err := h.p.Login(sh, pkcs11.CKU_USER, h.pin); err != nil && codeOf(err) != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		_ = h.p.CloseSession(sh)
		return 0, h.wrapErr("C_Login", "", err)
	}
	return sh, nil
}

// withSession runs fn with a pooled session. Waiting for a free session
// honours ctx. The session always goes back to the pool (or is closed when
// it failed). When fn fails with session or device loss, the module is
// re-initialised and fn runs once more on a fresh session.
func (h *HSM) withSession(ctx context.Context, fn func(s session) error) error {
	err, epoch := h.runOnce(ctx, fn)
	if err == nil || !sessionLoss(err) {
		return err
	}
	h.log.Warn("hsm session lost; re-initialising module", "error", err.Error())
	if rerr := h.recover(epoch); rerr != nil {
		return fmt.Errorf("%w (recovery failed: %w)", err, rerr)
	}
	err, _ = h.runOnce(ctx, fn)
	return err
}

func (h *HSM) runOnce(ctx context.Context, fn func(s session) error) (error, uint64) { //nolint:revive // error first reads better here
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("hsm: waiting for a session: %w", ctx.Err()), 0
	}
	defer func() { <-h.sem }()
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return ErrClosed, 0
	}
	epoch := h.epoch
	var sh pkcs11.SessionHandle
	select {
	case sh = <-h.idle:
	default:
		var err error
		if sh, err = h.openSession(); err != nil {
			return err, epoch
		}
	}
	err := fn(session{p: h.p, h: sh, token: h.token, hsm: h})
	if err != nil && sessionLoss(err) {
		// The handle is dead; do not close it (after re-initialisation the
		// same number may name somebody else's session).
		return err, epoch
	}
	h.idle <- sh // cannot block: at most PoolSize sessions exist
	return err, epoch
}

// recover re-initialises the module unless another goroutine already did
// since epoch.
func (h *HSM) recover(epoch uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if h.epoch != epoch {
		return nil
	}
	h.drainLocked()
	_ = h.p.Finalize() // may already be finalised: that is the failure we recover from
	if err := h.start(); err != nil {
		return err
	}
	h.log.Info("hsm re-initialised", "slot", h.slot, "epoch", h.epoch)
	return nil
}

// drainLocked closes every idle session. Caller holds mu exclusively.
func (h *HSM) drainLocked() {
	for {
		select {
		case sh := <-h.idle:
			_ = h.p.CloseSession(sh)
		default:
			return
		}
	}
}

// modules holds each PKCS#11 module loaded by this process. Modules are
// never unloaded: opencryptoki 3.8 crashes (SIGSEGV in C_Initialize) when
// it is dlclose'd and loaded again in the same process, and a daemon loads
// its module once anyway.
var modules sync.Map // path -> *pkcs11.Ctx

var loadMu sync.Mutex

func loadModule(path string) (*pkcs11.Ctx, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if p, ok := modules.Load(path); ok {
		return p.(*pkcs11.Ctx), nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("hsm: cannot load PKCS#11 module %s", path)
	}
	modules.Store(path, p)
	return p, nil
}

// Close logs out, closes the sessions and finalises the module (which stays
// loaded for the next Open).
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.drainLocked()
	err := h.p.Finalize()
	if err != nil && codeOf(err) != pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED {
		return h.wrapErr("C_Finalize", "", err)
	}
	h.log.Info("hsm closed")
	return nil
}

// Token returns the configured token name (label, or serial:...).
func (h *HSM) Token() string { return h.token }
