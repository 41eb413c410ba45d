package awsconfig

import (
	"context"
	"testing"

	"github.com/keyferry/keyferry/test/motoserver"
)

// TestAssumeRoleForTargetAccount: with KEYFERRY_ASSUME_ROLE_ARN the KMS
// client for the groups' keys uses credentials from sts:AssumeRole (moto
// plays STS), while the signing client keeps the function's own credentials.
func TestAssumeRoleForTargetAccount(t *testing.T) {
	moto, err := motoserver.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAOWNFUNCTIONROLE1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "own-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_STS", moto.URL())
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	env := map[string]string{EnvAssumeRoleARN: "arn:aws:iam::444455556666:role/keyferry-target"}
	s, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	target, err := c.KMS.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("assumed-role credentials: %v", err)
	}
	own, err := c.SignerKMS.Options().Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if own.AccessKeyID != "AKIAOWNFUNCTIONROLE1" {
		t.Fatalf("signing client uses %s, want the function's own credentials", own.AccessKeyID)
	}
	if target.AccessKeyID == own.AccessKeyID || target.SessionToken == "" {
		t.Fatalf("KMS client for the target account uses %s (session token %t), want assumed-role credentials", target.AccessKeyID, target.SessionToken != "")
	}

	plain, err := Load(context.Background(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := plain.KMS.Options().Credentials.Retrieve(context.Background()); got.AccessKeyID != own.AccessKeyID {
		t.Fatalf("without a role the KMS client uses %s", got.AccessKeyID)
	}
}
