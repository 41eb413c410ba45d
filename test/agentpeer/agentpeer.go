// Package agentpeer is a test-only stand-in for the on-premises agent: it
// answers the control plane's signed wrap_requests with the project's real
// HSM layer (agent/hsm, e.g. on a SoftHSM token from hsmtest) — generate or
// find the HSM key, wrap it under the KMS wrapping key, MAC the challenge
// or export the public key, and sign the wrap_result with the HSM-resident
// identity key. Loopback plays the @connections API for engine tests: it
// queues what the control plane posts and hands each message to the peer
// bound to the connection. The real daemon is agent/; this package is
// imported only by _test.go files.
package agentpeer

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	apigwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Peer is one simulated agent over a real HSM.
type Peer struct {
	ID, Pool string
	HSM      *hsm.HSM
	Identity *hsm.IdentityKey
	// ControlPlane verifies wrap_requests (the pinned control-plane key).
	ControlPlane *protocol.Verifier
	// Now is the peer's clock (default time.Now); tests share the KMS
	// emulator's clock with the engine and the peer.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]bool
	// Requests records every verified wrap_request.
	Requests []*protocol.WrapRequest
}

// New opens the identity key in h and returns a peer.
func New(ctx context.Context, h *hsm.HSM, id, pool string, cp *protocol.Verifier) (*Peer, error) {
	ident, err := h.Identity(ctx, "kf-identity-"+id)
	if err != nil {
		return nil, fmt.Errorf("agentpeer: identity: %w", err)
	}
	return &Peer{ID: id, Pool: pool, HSM: h, Identity: ident, ControlPlane: cp, seen: map[string]bool{}}, nil
}

// PublicKeyPEM is the identity public key as PEM (for the key-group file's hsm_pools).
func (p *Peer) PublicKeyPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p.Identity.PublicDER()}))
}

// Hello returns a sealed hello with the HSM's probed capabilities.
func (p *Peer) Hello(ctx context.Context) ([]byte, error) {
	h, err := p.HelloMessage(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.Seal(ctx, p.Identity, p.ID, protocol.ActionHello, h)
}

// HelloMessage is the hello Hello seals, for a test that changes it (its
// pending requests, pool, identity key) or seals it with another key.
func (p *Peer) HelloMessage(ctx context.Context) (protocol.Hello, error) {
	caps, err := p.HSM.Capabilities(ctx)
	if err != nil {
		return protocol.Hello{}, err
	}
	h := protocol.Hello{AgentID: p.ID, Version: "agentpeer", HSMPool: p.Pool, IdentityPublicKey: p.Identity.PublicDER(), SentAt: p.now()}
	for _, c := range caps {
		if len(c.Algorithms) == 0 {
			continue
		}
		h.Capabilities = append(h.Capabilities, protocol.Capability{KeySpec: c.KeySpec, Algorithms: c.Algorithms, WrappingKeySpecs: c.WrappingKeySpecs})
	}
	return h, nil
}

// Answer handles one wrap_request message and returns the sealed wrap_result.
func (p *Peer) Answer(ctx context.Context, msg []byte) ([]byte, error) {
	env, err := protocol.Decode(msg)
	if err != nil {
		return nil, err
	}
	req, err := protocol.OpenWrapRequest(env, p.ControlPlane, p.now(), time.Minute)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.seen[req.Nonce.String()] {
		p.mu.Unlock()
		return nil, errors.New("agentpeer: replayed nonce")
	}
	p.seen[req.Nonce.String()] = true
	p.Requests = append(p.Requests, req)
	p.mu.Unlock()

	var key *hsm.Key
	switch req.Operation {
	case protocol.OpGenerate:
		key, err = p.HSM.Find(ctx, req.HSMLabel)
		if errors.Is(err, hsm.ErrKeyNotFound) {
			key, err = p.HSM.Generate(ctx, req.HSMLabel, req.KeySpec)
		}
	default:
		key, err = p.HSM.Find(ctx, req.HSMLabel)
	}
	if err != nil {
		return nil, fmt.Errorf("agentpeer: key %s: %w", req.HSMLabel, err)
	}
	blob, err := p.HSM.Wrap(ctx, key.Label, req.WrappingPublicKey, req.WrappingAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("agentpeer: wrap: %w", err)
	}
	res := protocol.WrapResult{
		RequestID: req.RequestID, JobID: req.JobID, Nonce: req.Nonce, AgentID: p.ID, KeyARN: req.KeyARN,
		HSMLabel: key.Label, HSMKeyID: fmt.Sprintf("%x", key.ID), KeySpec: req.KeySpec,
		WrappingAlgorithm: req.WrappingAlgorithm, WrappedMaterial: blob, CompletedAt: p.now(),
	}
	if len(req.Challenge) > 0 {
		if res.ChallengeMAC, err = p.HSM.HMAC(ctx, key.Label, req.Challenge); err != nil {
			return nil, err
		}
	}
	if info := req.KeySpec; info != "" {
		if pub, err := p.HSM.PublicKeyDER(ctx, key.Label); err == nil {
			res.PublicKey = pub
		}
	}
	return protocol.Seal(ctx, p.Identity, p.ID, protocol.ActionWrapResult, res)
}

// Message is one post to a connection.
type Message struct {
	ConnectionID string
	Data         []byte
}

// Loopback implements the @connections PostToConnection call for tests.
type Loopback struct {
	mu    sync.Mutex
	queue []Message
	gone  map[string]bool
	// Posted counts every post, delivered or gone.
	Posted int
	// Deleted lists the connections DeleteConnection closed.
	Deleted []string
}

// NewLoopback returns an empty loopback.
func NewLoopback() *Loopback { return &Loopback{gone: map[string]bool{}} }

// SetGone makes posts to id answer GoneException.
func (l *Loopback) SetGone(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone[id] = true
}

// PostToConnection queues the message (or answers GoneException).
func (l *Loopback) PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Posted++
	id := aws.ToString(in.ConnectionId)
	if l.gone[id] {
		return nil, &apigwtypes.GoneException{Message: aws.String("connection " + id + " is gone")}
	}
	l.queue = append(l.queue, Message{ConnectionID: id, Data: append([]byte(nil), in.Data...)})
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

// DeleteConnection closes connection id (later posts answer
// GoneException) and records it in Deleted.
func (l *Loopback) DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := aws.ToString(in.ConnectionId)
	if l.gone[id] {
		return nil, &apigwtypes.GoneException{Message: aws.String("connection " + id + " is gone")}
	}
	l.gone[id] = true
	l.Deleted = append(l.Deleted, id)
	return &apigatewaymanagementapi.DeleteConnectionOutput{}, nil
}

// Take removes and returns the queued messages.
func (l *Loopback) Take() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queue
	l.queue = nil
	return q
}

func (p *Peer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
