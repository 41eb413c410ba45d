package protocol

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fuzzParty is a signer with its id and verifier.
type fuzzParty struct {
	s  *ECDSASigner
	id string
	v  *Verifier
}

// openAny opens env as its action with v; it returns the message value.
func openAny(env *Envelope, v *Verifier) (any, error) {
	switch env.Action {
	case ActionHello:
		m, err := OpenHello(env, v, testNow, testSkew)
		return deref(m), err
	case ActionWrapRequest:
		m, err := OpenWrapRequest(env, v, testNow, testSkew)
		return deref(m), err
	case ActionWrapResult:
		m, err := OpenWrapResult(env, v, testNow, testSkew)
		return deref(m), err
	case ActionError:
		m, err := OpenError(env, v)
		return deref(m), err
	case ActionHeartbeat:
		m, err := OpenHeartbeat(env, v)
		return deref(m), err
	}
	return nil, ErrUnknownAction
}

// checkOpen opens env with every party (and nil); whatever opens must
// re-seal and re-open to an equal message.
func checkOpen(t *testing.T, env *Envelope, parties []fuzzParty) {
	for _, p := range append(parties, fuzzParty{}) {
		var v *Verifier
		if p.s != nil {
			v = p.v
		}
		m, err := openAny(env, v)
		if err != nil {
			if m != nil {
				t.Fatalf("Open returned a message with error %v", err)
			}
			continue
		}
		// Open* of every other action must refuse this envelope.
		for _, other := range Actions() {
			if other == env.Action {
				continue
			}
			e2 := *env
			e2.Action = other
			if _, err := openAny(&e2, v); err == nil {
				t.Fatalf("%s payload opened as %s", env.Action, other)
			}
		}
		var s Signer
		id := env.Signer
		if p.s != nil {
			s = p.s
		} else if env.Action != ActionHeartbeat {
			t.Fatalf("%s opened without a verifier", env.Action)
		} else {
			id = ""
		}
		b, err := Seal(context.Background(), s, id, env.Action, m)
		if errors.Is(err, ErrTooLarge) {
			continue // re-encoding (HTML escapes) may grow a payload past the limit
		}
		if err != nil {
			t.Fatalf("opened %s does not re-seal: %v\n%+v", env.Action, err, m)
		}
		env2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-sealed %s does not decode: %v", env.Action, err)
		}
		m2, err := openAny(env2, v)
		if err != nil {
			t.Fatalf("re-sealed %s does not open: %v", env.Action, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-sealed %s differs:\n%+v\n%+v", env.Action, m, m2)
		}
	}
}

// FuzzDecode: Decode and every Open* never panic; whatever opens re-seals
// and re-opens equal. Each input is tried as is (real signatures) and with
// its payload re-signed by the test keys, so the payload checks are
// explored past the signature check.
func FuzzDecode(f *testing.F) {
	cp, ag := cpSigner(f), agentSigner(f)
	parties := []fuzzParty{{cp, cpID, verifierOf(f, cp)}, {ag, agentID, verifierOf(f, ag)}}
	f.Add([]byte(`{"v":1,"action":"heartbeat","payload":"e30="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Decode(b)
		if err != nil {
			if env != nil {
				t.Fatal("Decode returned an envelope with an error")
			}
			if CodeFor(err) == CodeInternal {
				t.Fatalf("Decode error maps to internal: %v", err)
			}
			return
		}
		checkOpen(t, env, parties)
		p := parties[1]
		if env.Action == ActionWrapRequest {
			p = parties[0]
		}
		id := env.Signer
		if id == "" {
			id = p.id
		}
		rb, err := sealBytes(context.Background(), p.s, id, env.Action, env.Payload)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatalf("sealBytes: %v", err)
		}
		env2, err := Decode(rb)
		if err != nil {
			t.Fatalf("re-signed envelope does not decode: %v", err)
		}
		checkOpen(t, env2, parties)
	})
}

// readSeed parses a file in the go fuzz corpus format.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(raw)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a go fuzz corpus file", path)
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	if !ok || !ok2 {
		t.Fatalf("%s: want one []byte(...) value", path)
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzSeedCorpus keeps the committed seeds meaningful: valid_* seeds
// open with the fixed test keys at testNow, invalid_* seeds are refused.
func TestFuzzSeedCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[string]*Verifier{cpID: verifierOf(t, cpSigner(t)), agentID: verifierOf(t, agentSigner(t))}
	var valid, invalid int
	for _, path := range files {
		name := filepath.Base(path)
		b := readSeed(t, path)
		env, err := Decode(b)
		var m any
		if err == nil {
			m, err = openAny(env, verifiers[env.Signer])
		}
		switch {
		case strings.HasPrefix(name, "valid_"):
			valid++
			if err != nil || m == nil {
				t.Errorf("%s: %v", name, err)
			}
		case strings.HasPrefix(name, "invalid_"):
			invalid++
			if err == nil {
				t.Errorf("%s: accepted", name)
			} else if CodeFor(err) == CodeInternal {
				t.Errorf("%s: internal error %v", name, err)
			}
		}
	}
	if valid < 5 || invalid < 5 {
		t.Fatalf("corpus has %d valid and %d invalid seeds, want at least 5 of each", valid, invalid)
	}
}
