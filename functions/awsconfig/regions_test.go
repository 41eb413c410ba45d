package awsconfig

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestKMSInSignsForTheRegion: KMSIn's client keeps KMS's endpoint and
// credentials and signs for the Region asked (the emulator answers in the
// Region of the signature); one client per Region; unknown names refused.
func TestKMSInSignsForTheRegion(t *testing.T) {
	emu := kmsemu.New(kmsemu.Options{Region: "us-east-1", WrappingKeyPool: -1})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	c := &Clients{kmsConfig: aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}}
	k, err := c.KMSIn("eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(out.KeyMetadata.Arn); !strings.HasPrefix(arn, "arn:aws:kms:eu-west-1:") {
		t.Fatalf("key made through KMSIn(eu-west-1): %s", arn)
	}
	if again, _ := c.KMSIn("eu-west-1"); again != k {
		t.Fatal("a second client for the same Region")
	}
	if _, err := c.KMSIn("eu-west-9"); err == nil || !strings.Contains(err.Error(), "not a Region KMS is offered in") {
		t.Fatalf("unknown region: %v", err)
	}
}
