package protocol

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Protocol limits.
const (
	// Version is the envelope version this package speaks.
	Version = 1
	// MaxMessageBytes is the API Gateway WebSocket message limit (128 KiB);
	// a sealed envelope never exceeds it.
	MaxMessageBytes = 128 * 1024
	// MaxFrameBytes is the API Gateway WebSocket frame limit (32 KiB): a
	// sender must fragment larger messages into frames no bigger than this
	// (e.g. a gorilla/websocket write buffer of at most this size).
	MaxFrameBytes = 32 * 1024
	// MaxSignerBytes bounds the envelope signer field.
	MaxSignerBytes = 256
)

// Action is the envelope's top-level routing field (API Gateway route
// selection expression $request.body.action).
type Action string

// The actions of protocol version 1.
const (
	ActionHello       Action = "hello"
	ActionWrapRequest Action = "wrap_request"
	ActionWrapResult  Action = "wrap_result"
	ActionError       Action = "error"
	ActionHeartbeat   Action = "heartbeat"
	ActionDraining    Action = "draining"
)

// Actions lists every known action.
func Actions() []Action {
	return []Action{ActionHello, ActionWrapRequest, ActionWrapResult, ActionError, ActionHeartbeat, ActionDraining}
}

// Known reports whether a is an action of this protocol version.
func (a Action) Known() bool {
	switch a {
	case ActionHello, ActionWrapRequest, ActionWrapResult, ActionError, ActionHeartbeat, ActionDraining:
		return true
	}
	return false
}

// SignatureRequired reports whether envelopes of this action must be signed
// (every action but heartbeat).
func (a Action) SignatureRequired() bool { return a != ActionHeartbeat }

// Envelope is a decoded, not yet verified, message. Payload holds the exact
// payload bytes the signature covers; Sig is the DER signature (empty only
// for an unsigned heartbeat).
type Envelope struct {
	V       int
	Action  Action
	Payload []byte
	Sig     []byte
	Signer  string
}

// wireEnvelope is the JSON form:
// {"v":1,"action":"...","payload":"<base64>","sig":"<base64>","signer":"..."}.
type wireEnvelope struct {
	V       *int    `json:"v"`
	Action  *string `json:"action"`
	Payload *string `json:"payload"`
	Sig     *string `json:"sig,omitempty"`
	Signer  *string `json:"signer,omitempty"`
}

// message is implemented by the payload types of this package.
type message interface {
	Action() Action
	validate() error
	// normalized returns a copy with times in UTC.
	normalized() any
}

var (
	_ message = WrapRequest{}
	_ message = WrapResult{}
	_ message = Hello{}
	_ message = Error{}
	_ message = Heartbeat{}
)

// Seal validates payload (one of Hello, WrapRequest, WrapResult, Error,
// Heartbeat, by value or pointer), encodes it, signs it with s under signerID
// and returns the envelope bytes. s may be nil only for a heartbeat (an
// unsigned heartbeat). Times are sent in UTC. An envelope larger than
// MaxMessageBytes is refused with ErrTooLarge.
func Seal(ctx context.Context, s Signer, signerID string, action Action, payload any) ([]byte, error) {
	if !action.Known() {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAction, string(action))
	}
	m, ok := payload.(message)
	if !ok {
		return nil, fmt.Errorf("protocol: seal %s: payload is %T, not a protocol message", action, payload)
	}
	if m.Action() != action {
		return nil, fmt.Errorf("%w: payload %T belongs to action %q, not %q", ErrWrongAction, payload, m.Action(), action)
	}
	m = m.normalized().(message)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("protocol: seal %s: %w", action, err)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protocol: seal %s: encode payload: %w", action, err)
	}
	return sealBytes(ctx, s, signerID, action, body)
}

// sealBytes signs and encodes payload bytes as they are.
func sealBytes(ctx context.Context, s Signer, signerID string, action Action, body []byte) ([]byte, error) {
	// Cheap early refusal: base64 grows the payload by 4/3.
	if base64.StdEncoding.EncodedLen(len(body)) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %s payload of %d bytes cannot fit in %d bytes", ErrTooLarge, action, len(body), MaxMessageBytes)
	}
	v := Version
	a := string(action)
	p := base64.StdEncoding.EncodeToString(body)
	w := wireEnvelope{V: &v, Action: &a, Payload: &p}
	switch {
	case s == nil && action.SignatureRequired():
		return nil, fmt.Errorf("protocol: seal %s: a signer is required", action)
	case s == nil:
		if signerID != "" {
			return nil, fmt.Errorf("protocol: seal %s: signer id %q given without a signer", action, signerID)
		}
	default:
		if err := checkSignerID(signerID); err != nil {
			return nil, fmt.Errorf("protocol: seal %s: %w", action, err)
		}
		sig, err := s.SignDigest(ctx, Digest(action, body))
		if err != nil {
			return nil, fmt.Errorf("protocol: seal %s: sign: %w", action, err)
		}
		if _, err := DERToRaw(sig, 32); err != nil {
			return nil, fmt.Errorf("protocol: seal %s: signer returned a non-DER P-256 signature (convert PKCS#11 r||s with RawToDER): %w", action, err)
		}
		sigB64 := base64.StdEncoding.EncodeToString(sig)
		w.Sig, w.Signer = &sigB64, &signerID
	}
	out, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("protocol: seal %s: encode envelope: %w", action, err)
	}
	if len(out) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %s envelope is %d bytes, limit %d", ErrTooLarge, action, len(out), MaxMessageBytes)
	}
	return out, nil
}

func checkSignerID(id string) error {
	if id == "" {
		return missing("signer")
	}
	if len(id) > MaxSignerBytes {
		return invalid("signer", fmt.Sprintf("longer than %d bytes", MaxSignerBytes))
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return invalid("signer", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// Decode parses an envelope: size, strict JSON, version, known action,
// required envelope fields and base64. It does not verify the signature;
// the Open* functions do that first.
func Decode(b []byte) (*Envelope, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxMessageBytes)
	}
	var w wireEnvelope
	if err := decodeStrict(b, &w); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if w.V == nil {
		return nil, missing("v")
	}
	if *w.V != Version {
		return nil, fmt.Errorf("%w: v=%d, this side speaks v=%d", ErrVersion, *w.V, Version)
	}
	if w.Action == nil || *w.Action == "" {
		return nil, missing("action")
	}
	action := Action(*w.Action)
	if !action.Known() {
		return nil, fmt.Errorf("%w: %q (known: %v)", ErrUnknownAction, *w.Action, Actions())
	}
	if w.Payload == nil || *w.Payload == "" {
		return nil, missing("payload")
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(*w.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not standard base64: %v", ErrMalformed, err)
	}
	env := &Envelope{V: Version, Action: action, Payload: payload}
	hasSig := w.Sig != nil && *w.Sig != ""
	hasSigner := w.Signer != nil && *w.Signer != ""
	switch {
	case !hasSig && action.SignatureRequired():
		return nil, missing("sig")
	case hasSig && !hasSigner:
		return nil, missing("signer")
	case hasSigner && !hasSig:
		return nil, missing("sig")
	}
	if hasSig {
		if env.Sig, err = base64.StdEncoding.Strict().DecodeString(*w.Sig); err != nil {
			return nil, fmt.Errorf("%w: sig is not standard base64: %v", ErrMalformed, err)
		}
		if err := checkSignerID(*w.Signer); err != nil {
			return nil, err
		}
		env.Signer = *w.Signer
	}
	return env, nil
}

// open checks the action and, when v is non-nil or the action requires it,
// the signature, then strictly decodes the payload into dst. The signature
// is verified before the payload is parsed.
func open(env *Envelope, v *Verifier, want Action, dst any) error {
	if env == nil {
		return fmt.Errorf("%w: nil envelope", ErrMalformed)
	}
	if env.Action != want {
		return fmt.Errorf("%w: want %q, got %q", ErrWrongAction, want, env.Action)
	}
	if v == nil && want.SignatureRequired() {
		return fmt.Errorf("%w: no verifier given for signed action %q", ErrBadSignature, want)
	}
	if v != nil {
		if len(env.Sig) == 0 {
			return fmt.Errorf("%w: %s is unsigned", ErrBadSignature, want)
		}
		if err := v.Verify(env.Action, env.Payload, env.Sig); err != nil {
			return fmt.Errorf("%s from %q: %w", want, env.Signer, err)
		}
	}
	if err := decodeStrict(env.Payload, dst); err != nil {
		return fmt.Errorf("%s payload: %w", want, err)
	}
	return nil
}

// decodeStrict decodes one JSON object into dst, refusing unknown fields,
// duplicate keys, keys outside [a-z0-9_] (encoding/json matches field names
// case-insensitively), and trailing data.
func decodeStrict(data []byte, dst any) error {
	if err := checkStrictJSON(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &InvalidFieldError{Field: te.Field, Reason: "wrong JSON type " + te.Value, Err: ErrMalformed}
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

type jsonFrame struct {
	obj       bool
	expectKey bool
	keys      map[string]struct{}
}

func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*jsonFrame
	first := true
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return fmt.Errorf("%w: want a JSON object", ErrMalformed)
			}
			first = false
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.obj {
					top.expectKey = true
				}
				stack = append(stack, &jsonFrame{obj: t == '{', expectKey: t == '{', keys: map[string]struct{}{}})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.expectKey {
				if !plainKey(t) {
					return fmt.Errorf("%w: field name %q is not lower snake_case", ErrMalformed, t)
				}
				if _, dup := top.keys[t]; dup {
					return fmt.Errorf("%w: duplicate field %q", ErrMalformed, t)
				}
				top.keys[t] = struct{}{}
				top.expectKey = false
			} else if top != nil && top.obj {
				top.expectKey = true
			}
		default:
			if top != nil && top.obj {
				top.expectKey = true
			}
		}
		if len(stack) == 0 {
			break
		}
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON object: %v", ErrMalformed, err)
	}
	return nil
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
