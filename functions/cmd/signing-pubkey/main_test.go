package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

type fakeKMS struct {
	kmsAPI
	der []byte
	err error
	got string
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	f.got = *in.KeyId
	return &kms.GetPublicKeyOutput{PublicKey: f.der}, f.err
}

func TestHandler(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	f := &fakeKMS{der: der}
	h := handler(f)
	id, data, err := h(context.Background(), cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: map[string]any{"KeyId": "arn:aws:kms:us-east-1:111122223333:key/x"}})
	if err != nil || id != "arn:aws:kms:us-east-1:111122223333:key/x" || f.got != id {
		t.Fatalf("id %q err %v", id, err)
	}
	if data["PublicKey"] != base64.StdEncoding.EncodeToString(der) {
		t.Fatalf("data %v", data)
	}
	if _, _, err := h(context.Background(), cfn.Event{RequestType: cfn.RequestCreate}); err == nil {
		t.Fatal("missing KeyId accepted")
	}
	f.err = errors.New("AccessDenied")
	if _, _, err := h(context.Background(), cfn.Event{RequestType: cfn.RequestUpdate, ResourceProperties: map[string]any{"KeyId": "k"}}); err == nil {
		t.Fatal("KMS error swallowed")
	}
	if id, _, err := h(context.Background(), cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: "p"}); err != nil || id != "p" {
		t.Fatal("delete must succeed without KMS")
	}
}
