package hsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// This file compiles without cgo (Config and its validation need no
// module); it names the two mechanisms it checks by value.

// CKM_AES_KEY_WRAP_KWP is the PKCS#11 3.0 mechanism for RFC 5649 AES key
// wrap with padding. github.com/miekg/pkcs11 v1.1.2 does not define it.
const CKM_AES_KEY_WRAP_KWP uint = 0x0000210B //nolint:revive // PKCS#11 name

// ckmAESKeyWrapPad is pkcs11.CKM_AES_KEY_WRAP_PAD (0x210A), which this
// cgo-free file cannot import; wrap.go fails to compile if they differ.
const ckmAESKeyWrapPad uint = 0x0000210A

// Pool size bounds accepted by Config.Validate.
const (
	MinPoolSize = 1
	MaxPoolSize = 64
)

// Config selects the module, the token and the PIN source, and carries the
// vendor quirks as flags (never as branches on token names).
type Config struct {
	// Module is the path of the vendor's PKCS#11 shared library.
	Module string `json:"module"`
	// TokenLabel or TokenSerial selects the token (exactly one).
	TokenLabel  string `json:"token_label,omitempty"`
	TokenSerial string `json:"token_serial,omitempty"`
	// PINFile or PINEnv names where the user PIN comes from (exactly one).
	// The PIN is never a flag and never logged.
	PINFile string `json:"pin_file,omitempty"`
	PINEnv  string `json:"pin_env,omitempty"`
	// PoolSize bounds the number of concurrently open sessions (1..64).
	PoolSize int `json:"pool_size"`

	// InitArgs, when set, is passed as CK_C_INITIALIZE_ARGS.pReserved (a
	// NUL-terminated string) to C_Initialize, for modules that take their
	// configuration there. NSS softoken refuses to start without it, e.g.
	// "configdir='sql:/var/lib/keyferry/nssdb' certPrefix='' keyPrefix=''
	// secmod='secmod.db' flags=" (optionally dbTokenDescription='LABEL' to
	// give its database token a label of its own).
	InitArgs string `json:"init_args,omitempty"`

	// KWPMechanism is the mechanism that implements RFC 5649 on this token
	// for the second step of RSA_AES_KEY_WRAP_* when it has no
	// CKM_RSA_AES_KEY_WRAP. 0 lets the capability probe choose: it tries
	// CKM_AES_KEY_WRAP_KWP (0x210B, PKCS#11 3.0; NSS softoken) when the token
	// lists it, then CKM_AES_KEY_WRAP_PAD (0x210A: RFC 5649 on SoftHSM2, but
	// RFC 3394 over PKCS#7 padding on NSS), and keeps the first whose trial
	// wrap the pure-Go reference unwraps to the key. Set one of them to try
	// only that one.
	KWPMechanism uint `json:"kwp_mechanism,omitempty"`
	// OAEPSourceNone passes source=0 with no data in CK_RSA_PKCS_OAEP_PARAMS
	// instead of CKZ_DATA_SPECIFIED with an empty label, for tokens that
	// reject the latter. The wire result (empty OAEP label) is the same.
	OAEPSourceNone bool `json:"oaep_source_none,omitempty"`
	// NoRSAAESKeyWrap ignores CKM_RSA_AES_KEY_WRAP even when the token lists
	// it, and always uses the two-step OAEP + AES key wrap construction.
	NoRSAAESKeyWrap bool `json:"no_rsa_aes_key_wrap,omitempty"`

	// LockOwner names this process among the agents sharing the token (the
	// agent id; one process per agent id). A generation lock that an
	// earlier process of the same owner left when it was killed is removed
	// at once instead of after the stale period (genlock.go). Empty: every
	// lock of another Generate call waits out the stale period.
	LockOwner string `json:"-"`

	// Logger receives JSON-friendly structured logs; nil means slog.Default().
	Logger *slog.Logger `json:"-"`
}

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("hsm: invalid config")

// ConfigError names the offending field.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("hsm: invalid config: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate checks the config without touching the token.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if c.Module == "" {
		return bad("module", "missing PKCS#11 module path")
	}
	st, err := os.Stat(c.Module)
	if err != nil {
		return bad("module", "%v", err)
	}
	if st.IsDir() {
		return bad("module", "%s is a directory", c.Module)
	}
	if (c.TokenLabel == "") == (c.TokenSerial == "") {
		return bad("token_label/token_serial", "set exactly one of token_label and token_serial")
	}
	if (c.PINFile == "") == (c.PINEnv == "") {
		return bad("pin_file/pin_env", "set exactly one of pin_file and pin_env")
	}
	if c.PoolSize < MinPoolSize || c.PoolSize > MaxPoolSize {
		return bad("pool_size", "%d is outside %d..%d", c.PoolSize, MinPoolSize, MaxPoolSize)
	}
	if err := validateInitArgs(c.InitArgs); err != nil {
		return bad("init_args", "%v", err)
	}
	switch c.KWPMechanism {
	case 0, ckmAESKeyWrapPad, CKM_AES_KEY_WRAP_KWP:
	default:
		return bad("kwp_mechanism", "0x%X is neither CKM_AES_KEY_WRAP_PAD (0x210A) nor CKM_AES_KEY_WRAP_KWP (0x210B)", c.KWPMechanism)
	}
	return nil
}

// MaxInitArgs bounds Config.InitArgs.
const MaxInitArgs = 4096

// validateInitArgs checks the C_Initialize reserved string: printable, no
// NUL, bounded, quotes balanced, and a configdir it names (NSS) exists.
func validateInitArgs(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxInitArgs {
		return fmt.Errorf("%d bytes, more than %d", len(s), MaxInitArgs)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character 0x%02X at byte %d", r, i)
		}
	}
	if strings.Count(s, "'")%2 != 0 {
		return errors.New("unbalanced single quotes")
	}
	if dir, ok := nssConfigDir(s); ok {
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("configdir: %w", err)
		}
		if !st.IsDir() {
			return fmt.Errorf("configdir %s is not a directory", dir)
		}
	}
	return nil
}

// nssConfigDir returns the directory of an NSS configdir='[sql:|dbm:]DIR'
// parameter, if s has one.
func nssConfigDir(s string) (string, bool) {
	const key = "configdir="
	i := strings.Index(strings.ToLower(s), key)
	if i < 0 {
		return "", false
	}
	v := s[i+len(key):]
	if strings.HasPrefix(v, "'") || strings.HasPrefix(v, `"`) {
		q := v[:1]
		v = v[1:]
		if j := strings.Index(v, q); j >= 0 {
			v = v[:j]
		}
	} else if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	for _, p := range []string{"sql:", "dbm:", "extern:"} {
		v = strings.TrimPrefix(v, p)
	}
	return v, v != ""
}

// tokenName is how errors and logs name the token.
func (c Config) tokenName() string {
	if c.TokenLabel != "" {
		return c.TokenLabel
	}
	return "serial:" + c.TokenSerial
}

// readPIN loads the user PIN from the configured file or environment variable.
func (c Config) readPIN() (string, error) {
	var pin string
	if c.PINFile != "" {
		b, err := os.ReadFile(c.PINFile)
		if err != nil {
			return "", fmt.Errorf("hsm: read PIN file: %w", err)
		}
		pin = strings.TrimRight(string(b), "\r\n")
	} else {
		v, ok := os.LookupEnv(c.PINEnv)
		if !ok {
			return "", fmt.Errorf("hsm: PIN environment variable %s is not set", c.PINEnv)
		}
		pin = v
	}
	if pin == "" {
		return "", errors.New("hsm: PIN is empty")
	}
	return pin, nil
}
