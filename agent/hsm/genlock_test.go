//go:build cgo

package hsm_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// poolChildEnv makes the test binary a pool agent: it opens the token of
// the JSON hsm.Config in this variable, says READY, waits for a line on
// stdin, generates (or, as the daemon does, finds) the $KF_POOL_SPEC key of
// $KF_POOL_LABEL and prints its $KF_POOL_ALG wrap under the DER public key
// in $KF_POOL_WRAPPING as "BLOB <base64>".
const poolChildEnv = "KF_POOL_CHILD_CONFIG"

func poolChild(ctx context.Context) int {
	var cfg hsm.Config
	if err := json.Unmarshal([]byte(os.Getenv(poolChildEnv)), &cfg); err != nil {
		fmt.Println("ERR config:", err)
		return 1
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	h, err := hsm.Open(ctx, cfg)
	if err != nil {
		fmt.Println("ERR open:", err)
		return 1
	}
	defer h.Close()
	der, _ := base64.StdEncoding.DecodeString(os.Getenv("KF_POOL_WRAPPING"))
	label := os.Getenv("KF_POOL_LABEL")
	fmt.Println("READY")
	bufio.NewReader(os.Stdin).ReadString('\n')
	spec, alg := keyspec.Spec(os.Getenv("KF_POOL_SPEC")), keyspec.WrappingAlgorithm(os.Getenv("KF_POOL_ALG"))
	_, err = h.Generate(ctx, label, spec)
	if err != nil && !errors.Is(err, hsm.ErrKeyExists) {
		fmt.Println("ERR generate:", err)
		return 1
	}
	blob, err := h.Wrap(ctx, label, der, alg)
	if err != nil {
		fmt.Println("ERR wrap:", err)
		return 1
	}
	fmt.Println("BLOB " + base64.StdEncoding.EncodeToString(blob))
	return 0
}

// TestPoolAgentsGeneratingOneLabelMakeOneKey: the agents of a pool share
// one token, and a request handed over from an agent that was partitioned
// (not dead) can make two of them generate the same generation at once.
// Separate processes, as on premises, released together: whatever each
// agent wrapped must be the one key the token keeps. Before the token's
// generation lock, NSS kept one of the two keys (one agent had wrapped a
// key the token no longer held: the soak's "KMS material differs from HSM
// key") and SoftHSM2 kept two keys of one label.
func TestPoolAgentsGeneratingOneLabelMakeOneKey(t *testing.T) {
	const agents, rounds = 2, 3
	wk := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, err := x509.MarshalPKIXPublicKey(&wk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	forEachToken(t, func(t *testing.T, tok *token) {
		if tok.name == "softhsm2" {
			// SoftHSM2 2.6.1's file store does not show one process's new
			// objects to another process's open sessions at once (here an
			// agent found no key 50 ms after the other made it, and no lock
			// object either), so no protocol on the token can keep two
			// processes from making one label twice: a pool shares NSS,
			// opencryptoki or a real HSM, not SoftHSM2 (README).
			t.Logf("softhsm2: not a pool's shared token (its store is not coherent across processes)")
			return
		}
		// A key slow to make widens the window in which both agents
		// generate: RSA where the token wraps private keys (NSS), AES
		// where it does not (SoftHSM2's padded key wrap, opencryptoki's
		// missing one: ../TOKENS.md).
		spec, alg := keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA1
		if tok.name == "nss" {
			spec, alg = keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA256
		}
		cfg := tok.cfg
		cfg.Logger = nil
		cj, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; round < rounds; round++ {
			label := newLabel(t, "pool")
			blobs := make([][]byte, agents)
			errs := make([]error, agents)
			starts := make([]io.WriteCloser, agents)
			var ready, done sync.WaitGroup
			for i := 0; i < agents; i++ {
				cmd := exec.Command(os.Args[0], "-test.run", "^$")
				cmd.Env = append(os.Environ(), poolChildEnv+"="+string(cj), "KF_POOL_LABEL="+label,
					"KF_POOL_SPEC="+string(spec), "KF_POOL_ALG="+string(alg),
					"KF_POOL_WRAPPING="+base64.StdEncoding.EncodeToString(der))
				stdin, _ := cmd.StdinPipe()
				stdout, _ := cmd.StdoutPipe()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				starts[i] = stdin
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					sc := bufio.NewScanner(stdout)
					sc.Buffer(make([]byte, 1<<16), 1<<20)
					said := false
					for sc.Scan() {
						line := sc.Text()
						switch {
						case line == "READY":
							said = true
							ready.Done()
						case strings.HasPrefix(line, "BLOB "):
							blobs[i], _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "BLOB "))
						case strings.HasPrefix(line, "ERR "):
							errs[i] = errors.New(line)
						}
					}
					if !said {
						ready.Done()
					}
					if err := cmd.Wait(); err != nil && errs[i] == nil {
						errs[i] = fmt.Errorf("agent %d: %w", i, err)
					}
				}()
				// One at a time into the module (opencryptoki 3.8's
				// shared memory start is not safe for processes that
				// start together); the generations below are released
				// together.
				ready.Wait()
			}
			for _, w := range starts {
				io.WriteString(w, "go\n")
				w.Close()
			}
			done.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d agent %d: %v", round, i, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			kept, err := tok.h.Wrap(ctx, label, der, alg)
			cancel()
			if err != nil {
				t.Fatalf("round %d: the token's key of %s after %d agents generated it: %v", round, label, agents, err)
			}
			want, err := wrapping.Unwrap(wk, alg, kept)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range blobs {
				got, err := wrapping.Unwrap(wk, alg, b)
				if err != nil {
					t.Fatalf("round %d agent %d: unwrap: %v", round, i, err)
				}
				if string(got) != string(want) {
					t.Errorf("round %d: agent %d wrapped a key of %s that the token does not keep", round, i, label)
				}
			}
		}
	})
}

// TestGenLockOfThisAgentsKilledProcessIsRemovedAtOnce: a generation lock
// left by an earlier process of the same agent (killed mid-generation, then
// restarted) does not hold the restarted agent for the stale period; a
// fresh lock of another agent still does.
func TestGenLockOfThisAgentsKilledProcessIsRemovedAtOnce(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		tok.h.SetLockOwnerForTest("agent-a")
		defer tok.h.SetLockOwnerForTest("")

		label := newLabel(t, "restarted")
		if err := tok.h.LeaveGenLockForTest(ctx, label, "agent-a"); err != nil {
			t.Fatal(err)
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := tok.h.Generate(gctx, label, keyspec.SymmetricDefault)
		cancel()
		if err != nil {
			t.Fatalf("Generate behind this agent's own dead lock: %v", err)
		}
		if _, err := tok.h.Find(ctx, genLockLabel(label)); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("a lock object is left: %v", err)
		}

		other := newLabel(t, "restarted")
		if err := tok.h.LeaveGenLockForTest(ctx, other, "agent-b"); err != nil {
			t.Fatal(err)
		}
		gctx, cancel = context.WithTimeout(ctx, time.Second)
		_, err = tok.h.Generate(gctx, other, keyspec.SymmetricDefault)
		cancel()
		if !errors.Is(err, hsm.ErrGenLockBusy) {
			t.Fatalf("Generate behind another agent's fresh lock: %v, want ErrGenLockBusy", err)
		}
	})
}

func genLockLabel(label string) string { return "kf-genlock/" + label }
