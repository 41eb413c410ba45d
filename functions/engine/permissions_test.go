package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestAccessDeniedFailsTheJobAtOnce(t *testing.T) {
	msg := "User: arn:aws:iam::111122223333:role/worker is not authorized to perform: kms:ImportKeyMaterial on resource: arn:aws:kms:us-east-1:111122223333:key/k"
	for _, tc := range []struct {
		err    error
		denied bool
	}{
		{fmt.Errorf("import: %w", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: msg}), true},
		{&smithy.GenericAPIError{Code: "AccessDenied", Message: "sqs"}, true},
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, false},
		{&smithy.GenericAPIError{Code: "KMSInternalException"}, false},
		{errors.New("connection reset"), false},
	} {
		reason, ok := accessDenied(tc.err)
		if ok != tc.denied {
			t.Errorf("%v: denied %v, want %v", tc.err, ok, tc.denied)
		}
		if ok && !strings.Contains(reason, "AccessDenied") {
			t.Errorf("%v: reason %q does not say access denied", tc.err, reason)
		}
	}
	reason, _ := accessDenied(fmt.Errorf("import: %w", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: msg}))
	if !strings.Contains(reason, "kms:ImportKeyMaterial") {
		t.Errorf("reason %q does not name the action", reason)
	}
}
