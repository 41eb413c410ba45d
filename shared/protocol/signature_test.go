package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// reenvelope rewrites the envelope fields of b (payload and sig stay byte-identical unless edited).
func reenvelope(t *testing.T, b []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	edit(o)
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInvariant2_AgentWrapsOnlySignedUnexpiredRequests: a wrap_request opens
// only with a valid control-plane signature over exactly these payload bytes
// and this action, and only while unexpired.
func TestInvariant2_AgentWrapsOnlySignedUnexpiredRequests(t *testing.T) {
	cpV := verifierOf(t, cpSigner(t))
	req := validWrapRequest(t)
	good := mustSeal(t, cpSigner(t), cpID, ActionWrapRequest, req)
	payload := mustDecode(t, good).Payload

	flipSig := reenvelope(t, good, func(o map[string]any) {
		sig, _ := base64.StdEncoding.DecodeString(o["sig"].(string))
		sig[len(sig)-1] ^= 1
		o["sig"] = base64.StdEncoding.EncodeToString(sig)
	})
	// Tamper with one payload byte (the account digit) but keep the signature.
	tampered := reenvelope(t, good, func(o map[string]any) {
		p := strings.Replace(string(payload), "111122223333", "111122223334", 1)
		p = strings.Replace(p, ":111122223333:", ":111122223334:", 1)
		o["payload"] = base64.StdEncoding.EncodeToString([]byte(p))
	})
	// Same bytes with an added space: semantically equal JSON, different bytes.
	reencoded := reenvelope(t, good, func(o map[string]any) {
		o["payload"] = base64.StdEncoding.EncodeToString(append([]byte(" "), payload...))
	})
	// Signed by the right key but for another action (domain separation):
	// the payload is a valid wrap_request, the signature covers "error".
	otherAction := reenvelope(t, sealRaw(t, cpSigner(t), cpID, ActionError, payload), func(o map[string]any) {
		o["action"] = string(ActionWrapRequest)
	})
	// Signed by the agent's key (a rogue connection holding some key).
	otherKey := mustSeal(t, rogueSigner(t), cpID, ActionWrapRequest, req)
	expired := validWrapRequest(t)
	expired.IssuedAt, expired.ExpiresAt = testNow.Add(-time.Hour), testNow.Add(-50*time.Minute)

	tests := []struct {
		name string
		b    []byte
		v    *Verifier
		want error
	}{
		{"valid", good, cpV, nil},
		{"flipped signature bit", flipSig, cpV, ErrBadSignature},
		{"tampered payload", tampered, cpV, ErrBadSignature},
		{"re-encoded payload", reencoded, cpV, ErrBadSignature},
		{"signature for another action", otherAction, cpV, ErrBadSignature},
		{"signature from another key", otherKey, cpV, ErrBadSignature},
		{"no verifier", good, nil, ErrBadSignature},
		{"expired", mustSeal(t, cpSigner(t), cpID, ActionWrapRequest, expired), cpV, ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Decode(tc.b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got, err := OpenWrapRequest(env, tc.v, testNow, testSkew)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(*got, req) {
					t.Fatalf("got %+v", got)
				}
				return
			}
			if got != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, err %v; want %v", got, err, tc.want)
			}
		})
	}

	// The domain-separated signature does verify for the action it was made for.
	env := mustDecode(t, sealRaw(t, cpSigner(t), cpID, ActionError, payload))
	if err := cpV.Verify(ActionError, env.Payload, env.Sig); err != nil {
		t.Fatalf("signature for error does not verify as error: %v", err)
	}
	if err := cpV.Verify(ActionWrapRequest, env.Payload, env.Sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature for error verifies as wrap_request: %v", err)
	}
}

// TestInvariant3_ControlPlaneImportsOnlyAgentSignedResults: a wrap_result
// opens only under the registered identity key of the agent that signed it,
// claiming that agent's id.
func TestInvariant3_ControlPlaneImportsOnlyAgentSignedResults(t *testing.T) {
	agV := verifierOf(t, agentSigner(t))
	res := validWrapResult(t, validWrapRequest(t))
	impostor := res
	impostor.AgentID = "agent-rogue"
	tests := []struct {
		name string
		b    []byte
		want errWant
	}{
		{"signed by a rogue key", mustSeal(t, rogueSigner(t), agentID, ActionWrapResult, res), errWant{is: []error{ErrBadSignature}}},
		{"signed by the control plane key", mustSeal(t, cpSigner(t), agentID, ActionWrapResult, res), errWant{is: []error{ErrBadSignature}}},
		{"agent_id differs from signer", mustSeal(t, agentSigner(t), agentID, ActionWrapResult, impostor), errWant{invalid: "agent_id"}},
		{"hello signature replayed as result", reenvelope(t, mustSeal(t, agentSigner(t), agentID, ActionHello, validHello(t)), func(o map[string]any) {
			o["action"] = string(ActionWrapResult)
		}), errWant{is: []error{ErrBadSignature}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenWrapResult(mustDecode(t, tc.b), agV, testNow, testSkew)
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
}

// TestInvariant5_BadInputGetsAClearError: every rejection names its problem
// and maps to a specific error code.
func TestInvariant5_BadInputGetsAClearError(t *testing.T) {
	cases := map[string][]byte{
		"envelope too large":       make([]byte, MaxMessageBytes+1),
		"not json":                 []byte("{"),
		"unknown action":           []byte(`{"v":1,"action":"rm_rf","payload":"e30=","sig":"AA==","signer":"x"}`),
		"version":                  []byte(`{"v":9,"action":"hello","payload":"e30=","sig":"AA==","signer":"x"}`),
		"missing field in payload": sealRaw(t, cpSigner(t), cpID, ActionWrapRequest, []byte(`{"request_id":"r"}`)),
	}
	wantWords := map[string]string{
		"envelope too large":       "too large",
		"not json":                 "malformed",
		"unknown action":           `"rm_rf"`,
		"version":                  "v=9",
		"missing field in payload": `"job_id"`,
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			env, err := Decode(b)
			if err == nil {
				_, err = OpenWrapRequest(env, verifierOf(t, cpSigner(t)), testNow, testSkew)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), wantWords[name]) {
				t.Fatalf("error %q does not name the problem (%q)", err, wantWords[name])
			}
			if c := CodeFor(err); c == CodeInternal || !c.Valid() {
				t.Fatalf("CodeFor = %q", c)
			}
		})
	}
}

// TestInvariant1_OnlyWrappedMaterialCrossesTheWire: no message has a field
// that could carry plaintext key material, and wrapped_material refuses
// anything shorter than one RSA block (a raw AES or HMAC key).
func TestInvariant1_OnlyWrappedMaterialCrossesTheWire(t *testing.T) {
	for _, m := range []any{Hello{}, Capability{}, WrapRequest{}, WrapResult{}, Error{}, Heartbeat{}} {
		rt := reflect.TypeOf(m)
		for i := 0; i < rt.NumField(); i++ {
			tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
			for _, bad := range []string{"secret", "private", "plain", "key_value", "cka_value"} {
				if strings.Contains(tag, bad) {
					t.Errorf("%s.%s (%q) looks like a plaintext key field", rt.Name(), rt.Field(i).Name, tag)
				}
			}
			if strings.Contains(tag, "material") && tag != "wrapped_material" {
				t.Errorf("%s.%s (%q): only wrapped_material may carry material", rt.Name(), rt.Field(i).Name, tag)
			}
		}
	}
	for _, n := range []int{16, 32, 64, 128, minWrappedBytes - 1} {
		res := validWrapResult(t, validWrapRequest(t))
		res.WrappedMaterial = make([]byte, n)
		_, err := Seal(t.Context(), agentSigner(t), agentID, ActionWrapResult, res)
		var inv *InvalidFieldError
		if !errors.As(err, &inv) || inv.Field != "wrapped_material" {
			t.Errorf("%d-byte wrapped_material: err = %v", n, err)
		}
	}
}
