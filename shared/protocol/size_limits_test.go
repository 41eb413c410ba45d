package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// TestLargestMaterialFitsOneFrame: the wrap_request and wrap_result of the
// largest key specs (RSA_4096: a PKCS#8 of about 2.4 KB; also RSA_2048,
// RSA_3072, ECC_NIST_P521, HMAC_512), with every legal wrapping algorithm
// and every wrapping key size, seal within API Gateway's 32 KiB frame (so
// none needs fragmenting) and so its 128 KiB message, open again, match
// their request, and carry the exact material: the blob is one RSA block
// (OAEP) or one RSA block plus RFC 5649 of the material (8-byte aligned,
// plus 8), and unwraps to the PKCS#8 that went in.
func TestLargestMaterialFitsOneFrame(t *testing.T) {
	type material struct {
		spec keyspec.Spec
		der  []byte // what KMS imports
		pub  []byte // SPKI (key pairs)
	}
	var mats []material
	for _, spec := range []keyspec.Spec{keyspec.RSA2048, keyspec.RSA3072, keyspec.RSA4096} {
		k := rsaKey(t, keyspec.MustLookup(spec).Bits)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		mats = append(mats, material{spec, der, spkiDER(t, &k.PublicKey)})
	}
	ec, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	mats = append(mats, material{keyspec.ECCNISTP521, ecDER, spkiDER(t, &ec.PublicKey)})
	mac := make([]byte, keyspec.MustLookup(keyspec.HMAC512).KeyBytes)
	_, _ = rand.Read(mac)
	mats = append(mats, material{spec: keyspec.HMAC512, der: mac})
	if n := len(mats[2].der); n < 2300 || n > 2500 {
		t.Fatalf("RSA-4096 PKCS#8 is %d bytes, want about 2.4 KB", n)
	}

	cp, agent := cpSigner(t), agentSigner(t)
	largest, combos := 0, 0
	for _, m := range mats {
		for _, c := range keyspec.Legal(m.spec) {
			name := string(m.spec) + "/" + string(c.Algorithm) + "/" + string(c.KeySpec)
			wk := rsaKey(t, c.KeySpec.Bits())
			req := validWrapRequest(t)
			req.KeySpec, req.WrappingAlgorithm, req.WrappingKeySpec = m.spec, c.Algorithm, c.KeySpec
			req.WrappingPublicKey = spkiDER(t, &wk.PublicKey)
			if keyspec.MustLookup(m.spec).Family == keyspec.FamilyHMAC {
				req.Challenge = make([]byte, MaxChallengeBytes) // the largest request
			}
			blob, err := wrapping.Wrap(nil, &wk.PublicKey, m.spec, c.Algorithm, m.der)
			if err != nil {
				t.Fatalf("%s: Wrap: %v", name, err)
			}
			want := wk.Size()
			if c.Algorithm.Hybrid() {
				want += (len(m.der)+7)/8*8 + 8
			}
			if len(blob) != want {
				t.Errorf("%s: blob %d bytes, want %d", name, len(blob), want)
			}
			res := validWrapResult(t, req)
			res.WrappedMaterial, res.PublicKey = blob, m.pub
			if req.Challenge != nil {
				res.ChallengeMAC = make([]byte, keyspec.MustLookup(m.spec).Bits/8)
			}

			reqMsg := mustSeal(t, cp, cpID, ActionWrapRequest, req)
			resMsg := mustSeal(t, agent, agentID, ActionWrapResult, res)
			for _, msg := range []struct {
				what string
				b    []byte
			}{{"wrap_request", reqMsg}, {"wrap_result", resMsg}} {
				if len(msg.b) > MaxFrameBytes || len(msg.b) > MaxMessageBytes {
					t.Errorf("%s: %s is %d bytes, over the %d-byte frame limit", name, msg.what, len(msg.b), MaxFrameBytes)
				}
				largest = max(largest, len(msg.b))
			}
			gotReq, err := OpenWrapRequest(mustDecode(t, reqMsg), verifierOf(t, cp), testNow, testSkew)
			if err != nil {
				t.Fatalf("%s: OpenWrapRequest: %v", name, err)
			}
			gotRes, err := OpenWrapResult(mustDecode(t, resMsg), verifierOf(t, agent), testNow, testSkew)
			if err != nil {
				t.Fatalf("%s: OpenWrapResult: %v", name, err)
			}
			if err := gotRes.Matches(gotReq); err != nil {
				t.Errorf("%s: result does not match its request: %v", name, err)
			}
			out, err := wrapping.Unwrap(wk, c.Algorithm, gotRes.WrappedMaterial)
			if err != nil || !bytes.Equal(out, m.der) {
				t.Errorf("%s: the blob that crossed the wire unwraps to %d bytes (%v), not the %d-byte material", name, len(out), err, len(m.der))
			}
			combos++
		}
	}
	if combos < 20 {
		t.Fatalf("only %d combinations checked", combos)
	}
	t.Logf("%d combinations; largest message %d bytes (frame limit %d, message limit %d)", combos, largest, MaxFrameBytes, MaxMessageBytes)
}
