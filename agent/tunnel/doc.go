// Package tunnel is the agent's only network path: one outbound websocket to
// the API Gateway WebSocket stage (SigV4-presigned $connect URL, wss). It
// sends a hello on every new connection, application-level heartbeats well
// inside the 10-minute idle timeout, recycles the connection before the
// 2-hour age limit with overlap (the new connection is open and has said
// hello before the old one is closed), reconnects with jittered exponential
// backoff, splits outgoing messages into frames no larger than
// protocol.MaxFrameBytes and refuses messages above protocol.MaxMessageBytes.
//
// Outgoing messages are queued in memory and survive a reconnect: a message
// whose write fails is put back at the head of the queue and sent on the
// next connection. The queue does not survive a process restart (the
// control plane's job sweeper re-requests lost work).
package tunnel
