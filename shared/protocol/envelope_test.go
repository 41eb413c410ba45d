package protocol

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	cp, ag := cpSigner(t), agentSigner(t)
	req := validWrapRequest(t)
	res := validWrapResult(t, req)
	tests := []struct {
		name   string
		signer *ECDSASigner
		id     string
		action Action
		msg    any
		open   func(*Envelope, *Verifier) (any, error)
	}{
		{"hello", ag, agentID, ActionHello, validHello(t), func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenHello(e, v, testNow, testSkew)
			return deref(m), err
		}},
		{"wrap_request", cp, cpID, ActionWrapRequest, req, func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenWrapRequest(e, v, testNow, testSkew)
			return deref(m), err
		}},
		{"wrap_request pointer", cp, cpID, ActionWrapRequest, &req, func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenWrapRequest(e, v, testNow, testSkew)
			return m, err
		}},
		{"wrap_result", ag, agentID, ActionWrapResult, res, func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenWrapResult(e, v, testNow, testSkew)
			return deref(m), err
		}},
		{"error from agent", ag, agentID, ActionError, validError(), func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenError(e, v)
			return deref(m), err
		}},
		{"error from control plane", cp, cpID, ActionError, Error{Code: CodeRateLimited, Message: "slow down"}, func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenError(e, v)
			return deref(m), err
		}},
		{"signed heartbeat", ag, agentID, ActionHeartbeat, validHeartbeat(), func(e *Envelope, v *Verifier) (any, error) {
			m, err := OpenHeartbeat(e, v)
			return deref(m), err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustSeal(t, tc.signer, tc.id, tc.action, tc.msg)
			if len(b) > MaxMessageBytes {
				t.Fatalf("sealed %d bytes", len(b))
			}
			env := mustDecode(t, b)
			if env.Action != tc.action || env.Signer != tc.id || env.V != Version {
				t.Fatalf("envelope = %+v", env)
			}
			got, err := tc.open(env, verifierOf(t, tc.signer))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Fatalf("round trip changed the message:\n got  %+v\n want %+v", got, tc.msg)
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestUnsignedHeartbeat(t *testing.T) {
	b := mustSeal(t, nil, "", ActionHeartbeat, validHeartbeat())
	if bytes.Contains(b, []byte(`"sig"`)) || bytes.Contains(b, []byte(`"signer"`)) {
		t.Fatalf("unsigned heartbeat carries sig/signer: %s", b)
	}
	env := mustDecode(t, b)
	hb, err := OpenHeartbeat(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hb.Seq != 42 {
		t.Fatalf("seq = %d", hb.Seq)
	}
	// A receiver that demands signed heartbeats refuses it.
	_, err = OpenHeartbeat(env, verifierOf(t, agentSigner(t)))
	checkErr(t, err, errWant{is: []error{ErrBadSignature}})
}

func TestSealTimesAreUTC(t *testing.T) {
	hb := validHeartbeat()
	hb.SentAt = hb.SentAt.In(fixedZone())
	env := mustDecode(t, mustSeal(t, nil, "", ActionHeartbeat, hb))
	if !bytes.Contains(env.Payload, []byte(`"sent_at":"2026-11-23T10:00:00Z"`)) {
		t.Fatalf("payload time not in UTC: %s", env.Payload)
	}
}

// envelopeJSON builds an envelope by hand.
func envelopeJSON(fields ...string) []byte {
	return []byte("{" + strings.Join(fields, ",") + "}")
}

func TestDecodeRejects(t *testing.T) {
	good := mustSeal(t, cpSigner(t), cpID, ActionWrapRequest, validWrapRequest(t))
	env := mustDecode(t, good)
	p := `"payload":"` + base64.StdEncoding.EncodeToString(env.Payload) + `"`
	s := `"sig":"` + base64.StdEncoding.EncodeToString(env.Sig) + `"`
	sr := `"signer":"` + cpID + `"`
	a := `"action":"wrap_request"`
	v := `"v":1`
	tests := []struct {
		name string
		in   []byte
		want errWant
	}{
		{"oversize", append(bytes.Repeat([]byte(" "), MaxMessageBytes), good...), errWant{is: []error{ErrTooLarge}}},
		{"one byte over", append(good[:len(good):len(good)], bytes.Repeat([]byte(" "), MaxMessageBytes-len(good)+1)...), errWant{is: []error{ErrTooLarge}}},
		{"empty", nil, errWant{is: []error{ErrMalformed}}},
		{"not json", []byte("hello"), errWant{is: []error{ErrMalformed}}},
		{"json array", []byte(`[1,2]`), errWant{is: []error{ErrMalformed}}},
		{"truncated", good[:len(good)-1], errWant{is: []error{ErrMalformed}}},
		{"trailing data", append(good[:len(good):len(good)], []byte(`{}`)...), errWant{is: []error{ErrMalformed}}},
		{"unknown field", envelopeJSON(v, a, p, s, sr, `"extra":1`), errWant{is: []error{ErrMalformed}}},
		{"duplicate action", envelopeJSON(v, a, p, s, sr, `"action":"hello"`), errWant{is: []error{ErrMalformed}}},
		{"case-folded field name", envelopeJSON(v, `"ACTION":"wrap_request"`, p, s, sr), errWant{is: []error{ErrMalformed}}},
		{"unicode-folded field name", envelopeJSON(v, a, p, `"ſig":"AA=="`, sr), errWant{is: []error{ErrMalformed}}},
		{"missing v", envelopeJSON(a, p, s, sr), errWant{missing: "v"}},
		{"v is a string", envelopeJSON(`"v":"1"`, a, p, s, sr), errWant{is: []error{ErrMalformed}, invalid: "v"}},
		{"version 2", envelopeJSON(`"v":2`, a, p, s, sr), errWant{is: []error{ErrVersion}}},
		{"version 0", envelopeJSON(`"v":0`, a, p, s, sr), errWant{is: []error{ErrVersion}}},
		{"missing action", envelopeJSON(v, p, s, sr), errWant{missing: "action"}},
		{"unknown action", envelopeJSON(v, `"action":"verify_request"`, p, s, sr), errWant{is: []error{ErrUnknownAction}}},
		{"route key as action", envelopeJSON(v, `"action":"$default"`, p, s, sr), errWant{is: []error{ErrUnknownAction}}},
		{"missing payload", envelopeJSON(v, a, s, sr), errWant{missing: "payload"}},
		{"payload bad base64", envelopeJSON(v, a, `"payload":"!!!"`, s, sr), errWant{is: []error{ErrMalformed}}},
		{"payload url base64", envelopeJSON(v, a, `"payload":"_-8="`, s, sr), errWant{is: []error{ErrMalformed}}},
		{"payload non-canonical base64", envelopeJSON(v, a, `"payload":"QR=="`, s, sr), errWant{is: []error{ErrMalformed}}},
		{"missing sig", envelopeJSON(v, a, p, sr), errWant{missing: "sig"}},
		{"missing signer", envelopeJSON(v, a, p, s), errWant{missing: "signer"}},
		{"sig bad base64", envelopeJSON(v, a, p, `"sig":"not base64"`, sr), errWant{is: []error{ErrMalformed}}},
		{"signer with spaces", envelopeJSON(v, a, p, s, `"signer":"a b"`), errWant{invalid: "signer"}},
		{"signer too long", envelopeJSON(v, a, p, s, `"signer":"`+strings.Repeat("x", MaxSignerBytes+1)+`"`), errWant{invalid: "signer"}},
		{"heartbeat signer without sig", envelopeJSON(v, `"action":"heartbeat"`, p, sr), errWant{missing: "sig"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Decode(tc.in)
			if env != nil {
				t.Fatalf("Decode returned an envelope with error %v", err)
			}
			checkErr(t, err, tc.want)
		})
	}
}

// rawSigner returns PKCS#11-style r||s instead of DER.
type rawSigner struct{ s *ECDSASigner }

func (r rawSigner) SignDigest(ctx context.Context, d []byte) ([]byte, error) {
	der, err := r.s.SignDigest(ctx, d)
	if err != nil {
		return nil, err
	}
	return DERToRaw(der, 32)
}

type failingSigner struct{}

func (failingSigner) SignDigest(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("kms: AccessDeniedException")
}

func TestSealRejects(t *testing.T) {
	cp := cpSigner(t)
	huge := validHello(t)
	huge.Pending = nil
	for i := 0; i < MaxPending; i++ {
		huge.Pending = append(huge.Pending, fmt.Sprintf("%0200d", i))
	}
	bad := validWrapRequest(t)
	bad.Nonce = nil
	tests := []struct {
		name   string
		signer Signer
		id     string
		action Action
		msg    any
		want   errWant
	}{
		{"too large", agentSigner(t), agentID, ActionHello, huge, errWant{is: []error{ErrTooLarge}}},
		{"unknown action", cp, cpID, Action("verify_request"), validWrapRequest(t), errWant{is: []error{ErrUnknownAction}}},
		{"payload of another action", cp, cpID, ActionHello, validWrapRequest(t), errWant{is: []error{ErrWrongAction}}},
		{"invalid message", cp, cpID, ActionWrapRequest, bad, errWant{missing: "nonce"}},
		{"no signer for wrap_request", nil, "", ActionWrapRequest, validWrapRequest(t), errWant{}},
		{"no signer id", cp, "", ActionWrapRequest, validWrapRequest(t), errWant{missing: "signer"}},
		{"raw r||s signer", rawSigner{cp}, cpID, ActionWrapRequest, validWrapRequest(t), errWant{}},
		{"signer fails", failingSigner{}, cpID, ActionWrapRequest, validWrapRequest(t), errWant{}},
		{"not a protocol message", cp, cpID, ActionError, struct{ Code string }{"x"}, errWant{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Seal(context.Background(), tc.signer, tc.id, tc.action, tc.msg)
			if err == nil {
				t.Fatalf("Seal succeeded: %s", b)
			}
			for _, target := range tc.want.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if tc.want.missing != "" {
				var mf *MissingFieldError
				if !errors.As(err, &mf) || mf.Field != tc.want.missing {
					t.Errorf("err = %v, want missing %q", err, tc.want.missing)
				}
			}
		})
	}
}

func TestSealRefusesCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Seal(ctx, cpSigner(t), cpID, ActionWrapRequest, validWrapRequest(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
