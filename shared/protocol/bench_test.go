package protocol

import (
	"context"
	"testing"
)

func BenchmarkSealWrapRequest(b *testing.B) {
	cp, req := cpSigner(b), validWrapRequest(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := Seal(ctx, cp, cpID, ActionWrapRequest, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOpenWrapRequest(b *testing.B) {
	cp := cpSigner(b)
	msg := mustSeal(b, cp, cpID, ActionWrapRequest, validWrapRequest(b))
	v := verifierOf(b, cp)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		env, err := Decode(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenWrapRequest(env, v, testNow, testSkew); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOpenWrapResultRSA4096(b *testing.B) {
	ag := agentSigner(b)
	req := validWrapRequest(b)
	req.KeySpec, req.WrappingAlgorithm = "RSA_4096", "RSA_AES_KEY_WRAP_SHA_256"
	res := validWrapResult(b, req)
	res.WrappedMaterial = make([]byte, 256+2384) // RSA-2048 block + KWP of a ~2.4 KB PKCS#8
	res.PublicKey = spkiDER(b, &rsaKey(b, 4096).PublicKey)
	msg := mustSeal(b, ag, agentID, ActionWrapResult, res)
	v := verifierOf(b, ag)
	b.SetBytes(int64(len(msg)))
	b.ReportMetric(float64(len(msg)), "envelope-bytes")
	for b.Loop() {
		env, err := Decode(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenWrapResult(env, v, testNow, testSkew); err != nil {
			b.Fatal(err)
		}
	}
}
