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
// Deliberate differences from the real service are documented on the
// options that control them (notably RefuseReplayedPresign) and on the
// types that implement them.
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
