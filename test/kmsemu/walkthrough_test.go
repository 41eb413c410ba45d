package kmsemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLIWalkthrough runs the documented BYOK walkthrough
// (testdata/walkthrough.sh) with the unmodified AWS CLI and openssl against
// an in-process emulator: symmetric import + encrypt/decrypt, and an
// ECC_NIST_P256 import with RSA_AES_KEY_WRAP_SHA_256 done by openssl, signed
// by KMS and verified by openssl.
func TestAWSCLIWalkthrough(t *testing.T) {
	for _, tool := range []string{"aws", "openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required on this machine: %v", tool, err)
		}
	}
	srv := startServer(t, Options{})
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs("testdata/walkthrough.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"TMPDIR=" + dir,
		"KMS_URL=" + srv.URL(),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=dummy-secret",
		"AWS_DEFAULT_REGION=" + testRegion,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "walkthrough OK") {
		t.Fatalf("walkthrough did not finish:\n%s", out)
	}
	st := srv.Stats()
	for _, op := range []string{"CreateKey", "GetParametersForImport", "ImportKeyMaterial", "Encrypt", "Decrypt", "Sign", "GetPublicKey"} {
		if st.Requests[op] == 0 {
			t.Errorf("the CLI never reached %s: %v", op, st.Requests)
		}
	}
	t.Logf("%s", out)
}
