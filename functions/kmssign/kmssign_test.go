package kmssign_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/kmssign"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestSealedWrapRequestVerifiesUnderKMSPublicKey: an envelope signed
// through KMS Sign (ECDSA_SHA_256, DIGEST) verifies with the key's public
// half, as the agent pins it; a wrong digest size is refused.
func TestSealedWrapRequestVerifiesUnderKMSPublicKey(t *testing.T) {
	emu := kmsemu.New(kmsemu.Options{Region: "us-east-1", Account: "111122223333", WrappingKeyPool: -1})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	ctx := context.Background()
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(emu.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
		})})
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	s := kmssign.New(c, aws.ToString(k.KeyMetadata.KeyId))
	pub, _, err := s.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	hb := protocol.Heartbeat{AgentID: "control-plane", Seq: 7, SentAt: time.Now()}
	msg, err := protocol.Seal(ctx, s, s.KeyID(), protocol.ActionHeartbeat, hb)
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(env.Action, env.Payload, env.Sig); err != nil {
		t.Fatalf("KMS signature does not verify under the KMS public key: %v", err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := s.SignDigest(ctx, d[:20]); err == nil {
		t.Fatal("short digest accepted")
	}
}
