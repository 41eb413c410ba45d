//go:build cgo

package hsm

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/miekg/pkcs11"
)

// The agents of one pool (groups.HSMPool) share one key store, and
// PKCS#11 has no "create if absent": two agents that each find no key of a
// label and then generate one both succeed. Some tokens keep both objects;
// NSS softoken keeps one object per CKA_ID and label (seen here: two
// processes generating kf/<group>/<n> at once leave one key, and one of
// the two agents has wrapped a key the token no longer holds). That
// happens when a request is handed over from an agent that was only
// partitioned, not dead, and is still generating.
//
// So generation takes a lock on the token itself: a token object
// labelled genLockPrefix+label whose CKA_ID names its holder and when it
// was taken. It is a small AES key generated with no usage allowed (NSS
// softoken refuses token data objects: CKO_DATA with CKA_TOKEN answers
// CKR_ATTRIBUTE_VALUE_INVALID). A generator makes its lock object, then
// looks for others of the same label; if there are any it backs off
// (removes its own and tries again), otherwise it holds the lock. Two
// generators cannot both hold it: whichever looks second sees the other's
// object, made before the first one looked. A lock older than
// genLockStale was left by an agent that died and is removed by the next
// generator. This needs a store every process sees at once (NSS,
// opencryptoki, a networked HSM); SoftHSM2 2.6.1's is not one
// (genlock_test.go).
const (
	genLockPrefix = "kf-genlock/"
	genLockStale  = 2 * time.Minute
	// genLockValueLen: the lock's CKA_ID, 16 random bytes naming the
	// holder, then the unix milliseconds it was taken (big endian).
	genLockValueLen = 24
)

// ErrGenLockBusy is returned when another agent held a label's generation
// lock for as long as the caller could wait.
var ErrGenLockBusy = errors.New("hsm: another agent is generating this key")

// genLock holds a token-wide generation lock for one label.
type genLock struct {
	s      session
	handle pkcs11.ObjectHandle
}

// newLockHolder names one Generate call's hold on generation locks: 8
// bytes naming the owner (Config.LockOwner; random when unset), then 8
// random bytes. It stays the same if the call runs again on a fresh
// session after a session loss, so a lock object that call left behind is
// known as its own; a lock with the owner's prefix and another call's
// suffix was left by an earlier process of this agent, which is dead
// (one process per agent id, and Generate calls in one process are
// serialised by genMu).
func newLockHolder(owner string) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := crand.Read(id); err != nil {
		return nil, fmt.Errorf("hsm: generation lock: %w", err)
	}
	if owner != "" {
		sum := sha256.Sum256([]byte("keyferry generation lock owner\x00" + owner))
		copy(id[:genLockOwnerLen], sum[:])
	}
	return id, nil
}

// genLockOwnerLen is the owner part of a lock holder's id.
const genLockOwnerLen = 8

// lockGeneration takes the generation lock of label for holder, waiting
// (with randomised back-off) while another agent holds it, until ctx ends.
func (s session) lockGeneration(ctx context.Context, label string, holderID []byte, now func() time.Time) (*genLock, error) {
	lockLabel := genLockPrefix + label
	backoff := 20 * time.Millisecond
	for {
		holder := make([]byte, genLockValueLen)
		copy(holder, holderID)
		binary.BigEndian.PutUint64(holder[16:], uint64(now().UnixMilli()))
		// Generated, not created from a value, so no key bytes pass
		// through this code (TestNoPlaintextKeyMaterialLeavesHSM_...).
		own, err := s.makeLockObject(lockLabel, holder)
		if err != nil {
			return nil, err
		}
		others, err := s.otherLocks(lockLabel, own, holderID, now())
		if err != nil {
			_ = s.p.DestroyObject(s.h, own)
			return nil, err
		}
		if others == 0 {
			return &genLock{s: s, handle: own}, nil
		}
		if err := s.p.DestroyObject(s.h, own); err != nil {
			return nil, s.wrapErr("C_DestroyObject (generation lock)", err)
		}
		pause := backoff + rand.N(backoff) // jitter, so two backing-off agents part
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s: %w", ErrGenLockBusy, label, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// makeLockObject generates one lock object. C_GenerateKey answering
// CKR_TEMPLATE_INCONSISTENT or CKR_GENERAL_ERROR is SoftHSM2's object-store
// race under concurrent sessions (SoftHSMv2 #573), so it is tried again
// after each settle delay; a half-made object of a failed try carries
// holder, which otherLocks knows as this call's own. A token that keeps
// refusing (or has no CKM_AES_KEY_GEN) cannot hold a lock: errNoGenLock.
func (s session) makeLockObject(lockLabel string, holder []byte) (pkcs11.ObjectHandle, error) {
	for try := 0; ; try++ {
		// Generated, not created from a value, so no key bytes pass
		// through this code (TestNoPlaintextKeyMaterialLeavesHSM_...).
		own, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, lockLabel),
			pkcs11.NewAttribute(pkcs11.CKA_ID, holder),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		})
		if err == nil {
			return own, nil
		}
		werr := s.wrapErr("C_GenerateKey (generation lock)", err)
		switch codeOf(err) {
		case pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_GENERAL_ERROR:
			if try < len(settleDelays) {
				time.Sleep(settleDelays[try])
				continue
			}
			return 0, fmt.Errorf("%w: %w", errNoGenLock, werr)
		case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID:
			return 0, fmt.Errorf("%w: %w", errNoGenLock, werr)
		}
		return 0, werr
	}
}

// errNoGenLock: the token would not make a lock object. Generate then
// goes ahead serialised only within this agent (genMu), and says so.
var errNoGenLock = errors.New("hsm: the token cannot hold a generation lock")

// otherLocks counts the live lock objects of lockLabel other than own,
// removing stale ones (their holder died holding them) and ones holderID
// left on a session that was lost.
func (s session) otherLocks(lockLabel string, own pkcs11.ObjectHandle, holderID []byte, now time.Time) (int, error) {
	objs, err := s.findObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, lockLabel),
	}, 32)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if o == own {
			continue
		}
		a, err := s.attrs(o, pkcs11.CKA_ID)
		if err != nil {
			// Gone between the search and the read: its holder let go.
			var e *Error
			if errors.As(err, &e) && e.Code == pkcs11.CKR_OBJECT_HANDLE_INVALID {
				continue
			}
			return 0, err
		}
		v := a[pkcs11.CKA_ID]
		if len(v) == genLockValueLen {
			taken := time.UnixMilli(int64(binary.BigEndian.Uint64(v[16:])))
			mine := bytes.Equal(v[:16], holderID)
			earlierSelf := !mine && bytes.Equal(v[:genLockOwnerLen], holderID[:genLockOwnerLen])
			if mine || earlierSelf || now.Sub(taken) > genLockStale {
				switch {
				case earlierSelf:
					s.hsm.log.Warn("hsm generation lock left by this agent's earlier process: removing it", "lock", lockLabel, "taken", taken.UTC().Format(time.RFC3339))
				case !mine:
					s.hsm.log.Warn("hsm generation lock left by an agent that stopped: removing it", "lock", lockLabel, "taken", taken.UTC().Format(time.RFC3339))
				}
				if derr := s.p.DestroyObject(s.h, o); derr != nil && codeOf(derr) != pkcs11.CKR_OBJECT_HANDLE_INVALID {
					return 0, s.wrapErr("C_DestroyObject (stale generation lock)", derr)
				}
				continue
			}
		}
		n++
	}
	return n, nil
}

// unlock lets the lock go.
func (l *genLock) unlock() error {
	if err := l.s.p.DestroyObject(l.s.h, l.handle); err != nil {
		return l.s.wrapErr("C_DestroyObject (generation lock)", err)
	}
	return nil
}
