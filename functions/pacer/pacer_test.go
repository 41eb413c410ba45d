package pacer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestFleetAtQuotaWithoutFailing: 15 concurrent CreateKey calls against the
// emulator at AWS's real quota (5/s). A pacer set too fast (3x the quota)
// meets ThrottlingException and slows down; every call still succeeds.
func TestFleetAtQuotaWithoutFailing(t *testing.T) {
	cases := []struct {
		name          string
		scale         float64
		wantThrottles bool
	}{
		{"below quota", 1, false},
		{"over quota: throttling is back-pressure", 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emu := kmsemu.New(kmsemu.Options{Region: "us-east-1", Account: "111122223333", QuotaScale: 1, WrappingKeyPool: -1})
			if err := emu.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer emu.Close()
			c := kms.New(kms.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(emu.URL()), Retryer: awsconfig.NewRetryer(),
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
				}),
			})
			p := pacer.New(0.8, tc.scale)
			p.MaxThrottleRetries = 20
			var wg sync.WaitGroup
			errs := make(chan error, 15)
			for range 15 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- p.Do(context.Background(), "111122223333/us-east-1", "CreateKey", func(ctx context.Context) error {
						_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
						return err
					})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("a paced call failed: %v", err)
				}
			}
			got := p.Throttled("111122223333/us-east-1", "CreateKey")
			if (got > 0) != tc.wantThrottles {
				t.Fatalf("%d throttles seen, want throttles=%v", got, tc.wantThrottles)
			}
		})
	}
}
