// Package apigwemu is an in-process emulator of an Amazon API Gateway
// WebSocket API with Lambda proxy integrations, built for keyferry's tests
// and sandbox. It behaves like the real service where keyferry depends on it:
//
//   - $connect is authorised with AWS_IAM: the client presigns the https
//     stage URL with SigV4 (service "execute-api") and dials the ws form of
//     it. The emulator rebuilds the https URL from the request (same Host,
//     path and query) and recomputes the signature with the aws-sdk-go-v2 v4
//     signer against static test credentials. Missing, unknown, wrong,
//     expired and (optionally) replayed presigns get HTTP 403 with no
//     upgrade, no connection record and no $connect invocation.
//   - The $connect handler may refuse (non-2xx status, or error).
//   - Messages are routed on $request.body.action with $default as the
//     fallback; handlers receive events.APIGatewayWebsocketProxyRequest
//     values shaped like the ones API Gateway sends, and a non-empty
//     response body is sent back to the client.
//   - The websocket server is a small RFC 6455 implementation of its own so
//     the service limits are enforced for real: client frames above 32 KB
//     and messages above 128 KB are closed with 1009; idle connections
//     (only data messages count as activity, pings do not) and connections
//     older than the maximum age are closed; every close invokes
//     $disconnect. Server-to-client messages are fragmented into 32 KB
//     frames as the real service does.
//   - The @connections management API (POST, GET, DELETE, GoneException,
//     PayloadTooLargeException) is served under the stage path, so the
//     unmodified apigatewaymanagementapi client works with BaseEndpoint set
//     to ManagementURL().
//
// Differences from the real service (deliberate or unknowable from here):
//
//   - RefuseReplayedPresign (on in SandboxOptions) refuses a second use of
//     the same presign signature; API Gateway accepts reuse until expiry.
//   - A presign without X-Amz-Expires is valid DefaultPresignWindow after
//     X-Amz-Date; X-Amz-Date more than 5 minutes ahead is refused. Both the
//     empty-body SHA-256 and UNSIGNED-PAYLOAD payload hashes are accepted.
//     Header-signed (Authorization header) upgrades are not supported.
//   - The @connections API verifies the caller's SigV4 only when
//     Options.ManagementCredentials is set (the real one always requires
//     IAM execute-api:ManageConnections; IAM policy is not evaluated).
//   - Close codes: DeleteConnection closes with 1000 and reports
//     "Connection Closed Normally" to $disconnect (as observed on AWS);
//     idle timeout, maximum age and emulator shutdown close with 1001
//     "Going away" (assumed); a dropped TCP connection reports 1006.
//   - Only client data messages reset the idle timer (not pings, not
//     PostToConnection), which is the conservative reading of the docs.
//   - A non-2xx $connect response refuses with 403, a $connect error with
//     500. Any non-empty route response body is sent to the client (AWS
//     sends it only when a route response is configured).
//   - PostToConnection data is always sent as a text message.
//   - Integrations run concurrently and unordered, as on AWS; the IAM
//     identity is reported on every event; DomainName is the Host header.
//   - Options.Clock governs presign validity and event timestamps; idle and
//     age timers run on real time (scale them with IdleTimeout / MaxAge).
//
// Use:
//
//	emu := apigwemu.New(apigwemu.SandboxOptions(creds))
//	emu.Route("$connect", onConnect)
//	emu.Route("wrap_result", onWrapResult)
//	if err := emu.Start("127.0.0.1:0"); err != nil { ... }
//	defer emu.Close()
//	wsURL, mgmtURL := emu.URL(), emu.ManagementURL()
package apigwemu
