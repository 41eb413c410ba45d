package engine

import "fmt"

// deniedCodes are the error codes AWS services answer when IAM refuses a
// call. Retrying cannot help until someone changes a policy, so the job
// fails at once with the service's message (which names the action and
// the resource) instead of cycling through retries to the sweeper.
var deniedCodes = map[string]bool{
	"AccessDeniedException":       true, // KMS, DynamoDB, Lambda, API Gateway
	"AccessDenied":                true, // SQS (query error code)
	"UnrecognizedClientException": true,
}

// accessDenied reports whether err is IAM's refusal, and the job's reason.
func accessDenied(err error) (string, bool) {
	code := apiCode(err)
	if !deniedCodes[code] {
		return "", false
	}
	return fmt.Sprintf("access denied (%s): %v", code, err), true
}
