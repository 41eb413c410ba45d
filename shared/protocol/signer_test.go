package protocol

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"testing"
)

func TestVerifierConstructors(t *testing.T) {
	s := agentSigner(t)
	der := s.PublicKeyDER()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name string
		make func() (*Verifier, error)
		ok   bool
	}{
		{"public key", func() (*Verifier, error) { return NewVerifier(s.PublicKey()) }, true},
		{"der", func() (*Verifier, error) { return ParseVerifierDER(der) }, true},
		{"pem", func() (*Verifier, error) {
			return ParseVerifierPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}, true},
		{"nil key", func() (*Verifier, error) { return NewVerifier(nil) }, false},
		{"p384 key", func() (*Verifier, error) { return NewVerifier(&p384.PublicKey) }, false},
		{"rsa der", func() (*Verifier, error) { return ParseVerifierDER(spkiDER(t, &rsaKey(t, 2048).PublicKey)) }, false},
		{"garbage der", func() (*Verifier, error) { return ParseVerifierDER([]byte{0x30}) }, false},
		{"no pem", func() (*Verifier, error) { return ParseVerifierPEM(der) }, false},
		{"wrong pem type", func() (*Verifier, error) {
			return ParseVerifierPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		}, false},
	}
	digest := Digest(ActionHello, []byte(`{}`))
	sig, err := s.SignDigest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.make()
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyDigest(digest, sig); err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyDigest(digest, nil); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("empty signature: %v", err)
			}
		})
	}
}

func TestECDSASignerRejects(t *testing.T) {
	s := agentSigner(t)
	if _, err := s.SignDigest(context.Background(), make([]byte, 20)); err == nil {
		t.Error("20-byte digest signed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.SignDigest(ctx, make([]byte, 32)); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled ctx: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewECDSASigner(p384); err == nil {
		t.Error("P-384 signer accepted")
	}
	g, err := GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	if g.PublicKey().Equal(s.PublicKey()) {
		t.Error("generated key equals fixed key")
	}
}

// TestDigestDomainSeparation: the digest depends on the action and on the
// boundary between action and payload.
func TestDigestDomainSeparation(t *testing.T) {
	p := []byte(`{"a":1}`)
	d := map[string]bool{}
	for _, a := range Actions() {
		d[string(Digest(a, p))] = true
	}
	if len(d) != len(Actions()) {
		t.Fatal("two actions share a digest")
	}
	// "error" + "\x00x..." vs "error\x00" + "x": the NUL separator keeps them apart.
	if string(Digest("hello", []byte("x"))) == string(Digest("hellox", nil)) {
		t.Fatal("action/payload boundary is ambiguous")
	}
}
