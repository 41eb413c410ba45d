package groups

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// testPEM returns a fresh PEM SPKI of an EC key on curve c.
func testPEM(t testing.TB, c elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

type m = map[string]any

// baseGroup is a valid SYMMETRIC_DEFAULT alias-swap group.
func baseGroup(name string) m {
	return m{
		"name":        name,
		"key_spec":    "SYMMETRIC_DEFAULT",
		"schedule":    "rate(30 days)",
		"alias":       "alias/" + name,
		"policy_file": "policies/default.json",
		"account":     "111122223333",
		"region":      "us-east-1",
		"hsm_pool":    "pool-a",
	}
}

// baseDoc is a valid configuration with one group, as generic YAML values.
func baseDoc(t testing.TB) m {
	return m{
		"version": 1,
		"hsm_pools": []any{m{
			"name":   "pool-a",
			"agents": []any{m{"id": "agent-1", "public_key": testPEM(t, elliptic.P256())}},
		}},
		"groups": []any{baseGroup("g0")},
	}
}

// group0 returns the first group of a baseDoc for mutation.
func group0(doc m) m { return doc["groups"].([]any)[0].(m) }

func marshalDoc(t testing.TB, doc m) []byte {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// problemsOf returns the problems of err, failing if err is not a *ValidationError.
func problemsOf(t testing.TB, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T (%v), want *ValidationError", err, err)
	}
	return ve.Problems
}

// requireProblem fails unless err holds a problem at path whose message contains frag.
func requireProblem(t testing.TB, err error, path, frag string) {
	t.Helper()
	ps := problemsOf(t, err)
	for _, p := range ps {
		if p.Path == path && strings.Contains(p.Message, frag) {
			return
		}
	}
	t.Fatalf("no problem %q containing %q; got:\n%v", path, frag, err)
}
