package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/test/sandbox"
)

// awsCLI runs the AWS CLI with only the sandbox's exported variables
// (s.Env(), what the sandbox prints for people) and returns stdout.
func awsCLI(t *testing.T, s *sandbox.Sandbox, args ...string) ([]byte, error) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "KEYFERRY_") {
			env = append(env, kv)
		}
	}
	dir := t.TempDir()
	env = append(env, s.Env()...)
	env = append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"), "AWS_PAGER=")
	cmd := exec.CommandContext(testCtx(t), "aws", append([]string{"kms"}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &cliError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type cliError struct {
	err    error
	stderr string
}

func (e *cliError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.stderr) }

// cliValue runs the CLI with --output text --query q and returns the value.
func cliValue(t *testing.T, s *sandbox.Sandbox, q string, args ...string) string {
	t.Helper()
	out, err := awsCLI(t, s, append(args, "--output", "text", "--query", q)...)
	if err != nil {
		t.Fatalf("aws kms %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// TestAWSCLIUsesTheAliases: the AWS CLI pointed at the sandbox's KMS
// endpoint (by the exported AWS_ENDPOINT_URL_KMS) encrypts and decrypts
// with alias/payments-data and alias/archive-data, signs with
// alias/token-signing and alias/ledger-signing (the signatures verify with
// openssl against get-public-key), and MACs with alias/webhook-mac
// (verify-mac accepts it and rejects a tampered message).
func TestAWSCLIUsesTheAliases(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	ensureRotated(t, s)
	msg := []byte("keyferry sandbox: the CLI can use the aliases")
	msgFile := writeFile(t, "msg", msg)

	for _, alias := range []string{"alias/payments-data", "alias/archive-data"} {
		ct := cliValue(t, s, "CiphertextBlob", "encrypt", "--key-id", alias, "--plaintext", "fileb://"+msgFile)
		ctFile := writeFile(t, "ct", unb64(t, ct))
		pt := cliValue(t, s, "Plaintext", "decrypt", "--ciphertext-blob", "fileb://"+ctFile)
		if got := unb64(t, pt); !bytes.Equal(got, msg) {
			t.Errorf("%s: decrypt gave %q", alias, got)
		}
	}

	for _, c := range []struct{ alias, alg, digest string }{
		{"alias/token-signing", "ECDSA_SHA_256", "-sha256"},
		{"alias/document-signing", "ECDSA_SHA_512", "-sha512"},
		{"alias/ledger-signing", "RSASSA_PSS_SHA_256", "-sha256"},
	} {
		sig := cliValue(t, s, "Signature", "sign", "--key-id", c.alias, "--message", "fileb://"+msgFile, "--message-type", "RAW", "--signing-algorithm", c.alg)
		sigFile := writeFile(t, "sig", unb64(t, sig))
		der := unb64(t, cliValue(t, s, "PublicKey", "get-public-key", "--key-id", c.alias))
		pubFile := writeFile(t, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		// KMS's RSASSA_PSS uses MGF1 with the message digest and a salt as
		// long as the digest.
		pss := []string{}
		if strings.HasPrefix(c.alg, "RSASSA_PSS") {
			pss = []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"}
		}
		verify := func(file string) ([]byte, error) {
			args := append(append([]string{"dgst", c.digest, "-verify", pubFile}, pss...), "-signature", sigFile, file)
			return exec.Command("openssl", args...).CombinedOutput()
		}
		out, err := verify(msgFile)
		if err != nil || !strings.Contains(string(out), "Verified OK") {
			t.Errorf("%s: openssl verify of the KMS signature: %v: %s", c.alias, err, out)
		}
		tampered := writeFile(t, "tampered", append([]byte("x"), msg...))
		if out, err := verify(tampered); err == nil {
			t.Errorf("%s: openssl accepted the signature over another message: %s", c.alias, out)
		}
	}

	mac := cliValue(t, s, "Mac", "generate-mac", "--key-id", "alias/webhook-mac", "--message", "fileb://"+msgFile, "--mac-algorithm", "HMAC_SHA_256")
	macFile := writeFile(t, "mac", unb64(t, mac))
	out, err := awsCLI(t, s, "verify-mac", "--key-id", "alias/webhook-mac", "--message", "fileb://"+msgFile, "--mac-algorithm", "HMAC_SHA_256", "--mac", "fileb://"+macFile, "--output", "json")
	var v struct{ MacValid bool }
	if err != nil || json.Unmarshal(out, &v) != nil || !v.MacValid {
		t.Errorf("verify-mac: %s %v", out, err)
	}
	tampered := writeFile(t, "tampered", append([]byte("x"), msg...))
	if out, err := awsCLI(t, s, "verify-mac", "--key-id", "alias/webhook-mac", "--message", "fileb://"+tampered, "--mac-algorithm", "HMAC_SHA_256", "--mac", "fileb://"+macFile); err == nil || !strings.Contains(err.Error(), "KMSInvalidMac") {
		t.Errorf("verify-mac of a tampered message: %s %v, want KMSInvalidMacException", out, err)
	}
}
