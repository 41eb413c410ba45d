package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
	"github.com/keyferry/keyferry/test/sandbox"
)

// OpenHSM opens the sandbox's token (NSS or SoftHSM) in this process, with the
// settings of the agent's own config file.
func OpenHSM(ctx context.Context, dir string) (*hsm.HSM, error) {
	cfg, err := sandbox.AgentTokenConfig(filepath.Join(dir, "agent", "agent.yaml"))
	if err != nil {
		return nil, err
	}
	cfg.PoolSize, cfg.Logger = 2, slog.New(slog.NewJSONHandler(io.Discard, nil))
	return hsm.Open(ctx, cfg)
}

// checkGenerations: every generation's KMS material equals its HSM twin.
// The HSM key is re-wrapped under a fresh RSA key of the soak's own (the
// same C_WrapKey path the agent uses), unwrapped here, and compared byte for
// byte with the material the KMS emulator imported.
func (r *soakRun) checkGenerations(ctx context.Context) {
	h, err := OpenHSM(ctx, r.sb.Dir)
	if err != nil {
		r.violate("open the HSM for the twin check: %v", err)
		return
	}
	defer h.Close()
	caps, err := h.Capabilities(ctx)
	if err != nil {
		r.violate("HSM capabilities: %v", err)
		return
	}
	mats := r.materials()
	keys := map[int]*rsa.PrivateKey{}
	for _, g := range r.sb.Groups.Groups {
		gens, err := r.sb.Deps.Store.Generations(ctx, g.Name)
		if err != nil {
			r.violate("generations of %s: %v", g.Name, err)
			continue
		}
		if len(gens) == 0 {
			r.violate("group %s has no generation after the soak", g.Name)
		}
		comb, err := hsm.ChooseAlgorithm(g.KeySpec, caps)
		if err != nil {
			r.violate("group %s: %v", g.Name, err)
			continue
		}
		bits := comb.KeySpec.Bits()
		priv := keys[bits]
		if priv == nil {
			if priv, err = rsa.GenerateKey(rand.Reader, bits); err != nil {
				r.violate("rsa key: %v", err)
				return
			}
			keys[bits] = priv
		}
		der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		for _, gen := range gens {
			if gen.State == store.GenKilled {
				continue
			}
			var kmsMat []byte
			for _, m := range mats {
				if m.KeyARN == gen.KeyARN && (gen.KeyMaterialID == "" || m.KeyMaterialID == gen.KeyMaterialID) {
					kmsMat = m.Material
				}
			}
			if kmsMat == nil {
				r.violate("generation %s/%d: KMS holds no imported material %q on %s", g.Name, gen.Generation, gen.KeyMaterialID, gen.KeyARN)
				continue
			}
			blob, err := h.Wrap(ctx, gen.HSMLabel, der, comb.Algorithm)
			if err != nil {
				r.violate("generation %s/%d: HSM twin %s: %v", g.Name, gen.Generation, gen.HSMLabel, err)
				continue
			}
			hsmMat, err := wrapping.Unwrap(priv, comb.Algorithm, blob)
			if err != nil {
				r.violate("generation %s/%d: unwrap HSM twin: %v", g.Name, gen.Generation, err)
				continue
			}
			if !bytes.Equal(hsmMat, kmsMat) && !sameKey(g.KeySpec, hsmMat, kmsMat) {
				r.violate("generation %s/%d: KMS material on %s differs from HSM key %s", g.Name, gen.Generation, gen.KeyARN, gen.HSMLabel)
				continue
			}
			r.rep.GenerationsChecked++
		}
	}
}

// sameKey compares two encodings of one key (e.g. PKCS#8 with and without
// the optional public key) through the key-spec parser.
func sameKey(spec keyspec.Spec, a, b []byte) bool {
	ma, err1 := keyspec.ParseMaterial(spec, a)
	mb, err2 := keyspec.ParseMaterial(spec, b)
	if err1 != nil || err2 != nil {
		return false
	}
	if len(ma.Secret) > 0 {
		return bytes.Equal(ma.Secret, mb.Secret)
	}
	return len(ma.PublicDER) > 0 && bytes.Equal(ma.PublicDER, mb.PublicDER)
}
