package hsm

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	mod := "/usr/lib/softhsm/libsofthsm2.so"
	ok := Config{Module: mod, TokenLabel: "t", PINFile: "/p", PoolSize: 4}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"valid", func(*Config) {}, ""},
		{"serial instead of label", func(c *Config) { c.TokenLabel, c.TokenSerial = "", "123" }, ""},
		{"pin env", func(c *Config) { c.PINFile, c.PINEnv = "", "KF_PIN" }, ""},
		{"kwp 0x210B", func(c *Config) { c.KWPMechanism = CKM_AES_KEY_WRAP_KWP }, ""},
		{"no module", func(c *Config) { c.Module = "" }, "module"},
		{"module missing", func(c *Config) { c.Module = "/nonexistent.so" }, "module"},
		{"module is dir", func(c *Config) { c.Module = "/usr/lib" }, "module"},
		{"label and serial", func(c *Config) { c.TokenSerial = "1" }, "token_label/token_serial"},
		{"neither label nor serial", func(c *Config) { c.TokenLabel = "" }, "token_label/token_serial"},
		{"pin file and env", func(c *Config) { c.PINEnv = "X" }, "pin_file/pin_env"},
		{"no pin source", func(c *Config) { c.PINFile = "" }, "pin_file/pin_env"},
		{"pool 0", func(c *Config) { c.PoolSize = 0 }, "pool_size"},
		{"pool 65", func(c *Config) { c.PoolSize = 65 }, "pool_size"},
		{"bad kwp", func(c *Config) { c.KWPMechanism = 0x1091 }, "kwp_mechanism"},
		{"nss init args", func(c *Config) {
			c.InitArgs = "configdir='sql:/tmp' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
		}, ""},
		{"init args without configdir", func(c *Config) { c.InitArgs = "some-module-option" }, ""},
		{"nss configdir missing", func(c *Config) { c.InitArgs = "configdir='sql:/nonexistent/nssdb' flags=" }, "init_args"},
		{"nss configdir is a file", func(c *Config) { c.InitArgs = "configdir='sql:/etc/hostname'" }, "init_args"},
		{"unquoted configdir missing", func(c *Config) { c.InitArgs = "configdir=sql:/nonexistent flags=" }, "init_args"},
		{"unbalanced quotes", func(c *Config) { c.InitArgs = "configdir='sql:/tmp" }, "init_args"},
		{"newline in init args", func(c *Config) { c.InitArgs = "configdir='sql:/tmp'\nflags=" }, "init_args"},
		{"init args too long", func(c *Config) { c.InitArgs = strings.Repeat("x", MaxInitArgs+1) }, "init_args"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig)):
				t.Fatalf("got %v, want ConfigError on %s", err, tc.field)
			}
		})
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KF_TEST_PIN", "env-pin")
	t.Setenv("KF_EMPTY_PIN", "")
	file := dir + "/pin"
	if err := writeFile(file, "file-pin\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg     Config
		want    string
		wantErr bool
	}{
		{Config{PINFile: file}, "file-pin", false},
		{Config{PINEnv: "KF_TEST_PIN"}, "env-pin", false},
		{Config{PINEnv: "KF_EMPTY_PIN"}, "", true},
		{Config{PINEnv: "KF_UNSET_PIN_XYZ"}, "", true},
		{Config{PINFile: dir + "/missing"}, "", true},
	} {
		got, err := tc.cfg.readPIN()
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("readPIN(%+v) = %q, %v", tc.cfg, got, err)
		}
	}
}
