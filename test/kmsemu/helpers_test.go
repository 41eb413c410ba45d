package kmsemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
	"github.com/keyferry/keyferry/shared/wrapping"
)

const (
	testRegion  = "eu-west-1"
	testAccount = "123456789012"
)

// startServer runs an emulator on a free 127.0.0.1 port for the test.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Region == "" {
		opts.Region = testRegion
	}
	if opts.Account == "" {
		opts.Account = testAccount
	}
	srv := New(opts)
	// Start, with every answer recorded for the service-model check
	// (modelcheck_test.go).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.ln = ln
	srv.httpSrv = &http.Server{Handler: recordResponses(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.httpSrv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newClient is the unmodified aws-sdk-go-v2 KMS client pointed at url, with
// retries off so every error is seen.
func newClient(url string) *kms.Client {
	return kms.New(kms.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      aws.NopRetryer{},
	})
}

// errCode returns the KMS error type of err ("" for nil).
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "non-API error: " + err.Error()
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := errCode(err); got != want {
		t.Fatalf("error = %q (%v), want %q", got, err, want)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// newMaterial makes key material of spec in the import format.
func newMaterial(t testing.TB, spec keyspec.Spec) []byte {
	t.Helper()
	info := keyspec.MustLookup(spec)
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		b := make([]byte, info.KeyBytes)
		_, _ = rand.Read(b)
		return b
	case keyspec.FamilyRSA:
		k, err := rsa.GenerateKey(rand.Reader, info.Bits)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := x509.MarshalPKCS8PrivateKey(k)
		return b
	}
	if info.Curve == "secp256k1" {
		k, err := secp256k1.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := secp256k1.MarshalPKCS8PrivateKey(k, true)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[info.Curve]
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := x509.MarshalPKCS8PrivateKey(k)
	return b
}

// importParams fetches wrapping parameters and wraps material with them.
type wrapped struct {
	token, blob []byte
}

func wrapFor(t testing.TB, c *kms.Client, keyID string, spec keyspec.Spec, alg keyspec.WrappingAlgorithm, wks keyspec.WrappingKeySpec, mat []byte) wrapped {
	t.Helper()
	ctx := context.Background()
	p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &keyID,
		WrappingAlgorithm: types.AlgorithmSpec(alg), WrappingKeySpec: types.WrappingKeySpec(wks)})
	if err != nil {
		t.Fatalf("GetParametersForImport: %v", err)
	}
	pub, _, err := wrapping.ParsePublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := wrapping.Wrap(nil, pub, spec, alg, mat)
	if err != nil {
		t.Fatal(err)
	}
	return wrapped{p.ImportToken, blob}
}

// createExternal creates an EXTERNAL key of spec/usage.
func createExternal(t testing.TB, c *kms.Client, spec keyspec.Spec, usage keyspec.Usage) string {
	t.Helper()
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Origin: types.OriginTypeExternal,
		KeySpec: types.KeySpec(spec), KeyUsage: types.KeyUsageType(usage)})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if out.KeyMetadata.KeyState != types.KeyStatePendingImport {
		t.Fatalf("new EXTERNAL key state %s", out.KeyMetadata.KeyState)
	}
	return *out.KeyMetadata.KeyId
}

// importedKey creates an EXTERNAL key and imports fresh material that does not expire.
func importedKey(t testing.TB, c *kms.Client, spec keyspec.Spec, usage keyspec.Usage) (string, []byte) {
	t.Helper()
	id := createExternal(t, c, spec, usage)
	mat := newMaterial(t, spec)
	leg := keyspec.Legal(spec)[0]
	w := wrapFor(t, c, id, spec, leg.Algorithm, leg.KeySpec, mat)
	if _, err := c.ImportKeyMaterial(context.Background(), &kms.ImportKeyMaterialInput{KeyId: &id, ImportToken: w.token,
		EncryptedKeyMaterial: w.blob, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}); err != nil {
		t.Fatalf("ImportKeyMaterial %s: %v", spec, err)
	}
	return id, mat
}

func describe(t testing.TB, c *kms.Client, id string) *types.KeyMetadata {
	t.Helper()
	out, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: &id})
	if err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	return out.KeyMetadata
}

func inDays(srv *Server, d float64) *time.Time {
	t := srv.Now().Add(time.Duration(d * 24 * float64(time.Hour))).Truncate(time.Second)
	return &t
}
