package groups

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestCheckers(t *testing.T) {
	cases := []struct {
		name  string
		check func(string) error
		in    string
		frag  string
	}{
		{"alias ok", CheckAlias, "alias/team/pay_ments-1", ""},
		{"alias bare prefix", CheckAlias, "alias/", "at least one"},
		{"alias space", CheckAlias, "alias/a b", "only a-z"},
		{"timezone ok", CheckTimezone, "America/New_York", ""},
		{"timezone UTC", CheckTimezone, "UTC", ""},
		{"timezone empty", CheckTimezone, "", "IANA"},
		{"timezone path traversal", CheckTimezone, "../../etc/passwd", "IANA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check(tc.in)
			if tc.frag == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.frag) {
				t.Fatalf("want %q, got %v", tc.frag, err)
			}
		})
	}
}

func TestParseAgentPublicKey(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	p256 := testPEM(t, elliptic.P256())
	cases := []struct {
		name, pem, frag string
	}{
		{"P-256", p256, ""},
		{"P-384", testPEM(t, elliptic.P384()), "got curve P-384"},
		{"Ed25519", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER})), "ed25519"},
		{"not PEM", "MFkwEwYH", "BEGIN PUBLIC KEY"},
		{"wrong block type", strings.ReplaceAll(p256, "PUBLIC KEY", "CERTIFICATE"), "BEGIN PUBLIC KEY"},
		{"trailing data", p256 + "junk", "extra data"},
		{"bad DER", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})), "not a PEM EC P-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseAgentPublicKey(tc.pem)
			if tc.frag == "" {
				if err != nil || k == nil {
					t.Fatalf("%v", err)
				}
				a := Agent{ID: "a", PublicKey: tc.pem}
				if k2, err := a.PublicKeyEC(); err != nil || !k2.Equal(k) {
					t.Fatalf("PublicKeyEC: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.frag) {
				t.Fatalf("want %q, got %v", tc.frag, err)
			}
		})
	}
	if k, err := (&Agent{ID: "unregistered"}).PublicKeyEC(); k != nil || err != nil {
		t.Fatalf("unregistered agent: %v %v", k, err)
	}
}
