package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyferry/keyferry/functions/store"
)

// cliError is an error with its exit code and a machine-readable kind.
type cliError struct {
	code int
	kind string
	err  error
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

// errHelp: --help was asked for (usage already printed; exit 0).
var errHelp = errors.New("help requested")

func usageErrorf(format string, args ...any) error {
	return &cliError{code: exitUsage, kind: "usage", err: fmt.Errorf(format, args...)}
}

func notFoundf(kind, format string, args ...any) error {
	return &cliError{code: exitNotFound, kind: kind, err: fmt.Errorf(format, args...)}
}

// errorDoc is what --json prints for an error.
type errorDoc struct {
	Error struct {
		Kind     string `json:"kind"`
		Message  string `json:"message"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

// fail prints err (one clean message, no stack) and returns its exit code.
func (a *app) fail(err error) int {
	if errors.Is(err, errHelp) {
		return exitOK
	}
	ce := classify(err)
	if a.asJSON {
		var d errorDoc
		d.Error.Kind, d.Error.Message, d.Error.ExitCode = ce.kind, ce.Error(), ce.code
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(d)
	}
	fmt.Fprintf(a.stderr, "keyferry: %s\n", ce.Error())
	return ce.code
}

// credentialCodes are AWS error codes that mean "who are you" or "not allowed".
var credentialCodes = map[string]bool{
	"AccessDeniedException": true, "AccessDenied": true, "UnrecognizedClientException": true,
	"InvalidSignatureException": true, "ExpiredTokenException": true, "MissingAuthenticationTokenException": true,
	"IncompleteSignature": true, "InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "UnauthorizedException": true,
}

// classify maps any error to a cliError with a clear message.
func classify(err error) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &cliError{code: exitTimeout, kind: "timeout", err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &cliError{code: exitFailed, kind: "interrupted", err: errors.New("interrupted")}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		op := operationOf(err)
		switch {
		case credentialCodes[ae.ErrorCode()] && strings.HasPrefix(op, "DynamoDB") && strings.Contains(ae.ErrorMessage(), ":table/"):
			// The operator policy names the deployed tables, so a wrong
			// prefix is refused by IAM before DynamoDB could say "not found".
			return &cliError{code: exitCredentials, kind: "credentials", err: fmt.Errorf("%s: access denied (%s): %s (wrong --table-prefix, or not an operator?)", op, ae.ErrorCode(), ae.ErrorMessage())}
		case credentialCodes[ae.ErrorCode()]:
			return &cliError{code: exitCredentials, kind: "credentials", err: fmt.Errorf("%s: access denied (%s): %s", op, ae.ErrorCode(), ae.ErrorMessage())}
		case ae.ErrorCode() == "ResourceNotFoundException" && strings.Contains(op, "Invoke"):
			return &cliError{code: exitControlPlane, kind: "control_plane", err: fmt.Errorf("operator function not found (--function, region?): %s", ae.ErrorMessage())}
		case ae.ErrorCode() == "ResourceNotFoundException":
			return &cliError{code: exitControlPlane, kind: "control_plane", err: fmt.Errorf("%s: %s (wrong --table-prefix or region?)", op, ae.ErrorMessage())}
		}
		return &cliError{code: exitControlPlane, kind: "aws", err: fmt.Errorf("%s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())}
	}
	var send *smithyhttp.RequestSendError
	var nerr net.Error
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &send) || errors.As(err, &nerr) || (errors.As(err, &maxAttempts) && strings.Contains(err.Error(), "dial")) {
		return &cliError{code: exitUnreachable, kind: "unreachable", err: fmt.Errorf("endpoint unreachable (network or AWS_ENDPOINT_URL_*): %s", firstLine(unreachableDetail(err)))}
	}
	if errors.Is(err, store.ErrNotFound) {
		return &cliError{code: exitNotFound, kind: "not_found", err: err}
	}
	return &cliError{code: exitFailed, kind: "failed", err: err}
}

// operationOf names the AWS operation of an SDK error ("DynamoDB GetItem").
func operationOf(err error) string {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return oe.Service() + " " + oe.Operation()
	}
	return "AWS"
}

func unreachableDetail(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Sprintf("%s %s: %v", operationOf(err), op.Addr, op.Err)
	}
	return err.Error()
}
