// Package kmssign signs the control plane's wrap_requests with an AWS KMS
// asymmetric key (ECC_NIST_P256, SIGN_VERIFY): KMS Sign with
// SigningAlgorithm ECDSA_SHA_256 and MessageType DIGEST, which returns the
// ASN.1 DER signature shared/protocol expects. The private key never leaves
// KMS; agents pin its public key (GetPublicKey).
package kmssign

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/protocol"
)

// kmsAPI is the slice of the KMS client the signer uses.
type kmsAPI interface {
	Sign(ctx context.Context, in *kms.SignInput, opts ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

var _ kmsAPI = (*kms.Client)(nil)

// Signer is a protocol.Signer backed by a KMS key.
type Signer struct {
	kms   kmsAPI
	keyID string
}

var _ protocol.Signer = (*Signer)(nil)

// New returns a signer for keyID (key id, ARN or alias).
func New(c kmsAPI, keyID string) *Signer { return &Signer{kms: c, keyID: keyID} }

// KeyID is the KMS key id this signer uses (the envelope signer id).
func (s *Signer) KeyID() string { return s.keyID }

// SignDigest signs a SHA-256 digest with KMS and returns the DER signature.
func (s *Signer) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("kmssign: digest must be 32 bytes (SHA-256), got %d", len(digest))
	}
	out, err := s.kms.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		return nil, fmt.Errorf("kmssign: kms Sign with %s: %w", s.keyID, err)
	}
	return out.Signature, nil
}

// PublicKey fetches the signing key's public half (what agents pin).
func (s *Signer) PublicKey(ctx context.Context) (*ecdsa.PublicKey, []byte, error) {
	out, err := s.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.keyID)})
	if err != nil {
		return nil, nil, fmt.Errorf("kmssign: kms GetPublicKey %s: %w", s.keyID, err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("kmssign: parse public key of %s: %w", s.keyID, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("kmssign: key %s is %T, want ECDSA P-256", s.keyID, pub)
	}
	return ec, out.PublicKey, nil
}
