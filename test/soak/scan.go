package soak

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// windowLen is the length of the material windows searched for: any 16
// consecutive bytes of a key (128 bits) count as a leak.
const windowLen = 16

// Leak is one occurrence of key plaintext where it must never be.
type Leak struct {
	Where    string
	KeyARN   string
	Encoding string
}

// needles returns the encodings of material searched for: the whole
// material raw, hex, base64 (std and URL, padded and raw), and every
// windowLen-byte window raw and hex.
func needles(mat []byte) map[string][]byte {
	out := map[string][]byte{
		"raw":       mat,
		"hex":       []byte(hex.EncodeToString(mat)),
		"HEX":       []byte(strings.ToUpper(hex.EncodeToString(mat))),
		"base64":    []byte(base64.StdEncoding.EncodeToString(mat)),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString(mat)),
	}
	for i := 0; i+windowLen <= len(mat); i++ {
		w := mat[i : i+windowLen]
		out["raw-window@"+strconv.Itoa(i)] = w
		out["hex-window@"+strconv.Itoa(i)] = []byte(hex.EncodeToString(w))
	}
	return out
}

// ScanForMaterial searches haystacks (name -> bytes) for every material.
func ScanForMaterial(haystacks map[string][]byte, materials map[string][]byte) []Leak {
	var leaks []Leak
	for arn, mat := range materials {
		if len(mat) < windowLen {
			continue
		}
		ns := needles(mat)
		for where, hay := range haystacks {
			for enc, n := range ns {
				if bytes.Contains(hay, n) {
					leaks = append(leaks, Leak{Where: where, KeyARN: arn, Encoding: enc})
					break
				}
			}
		}
	}
	return leaks
}

// logFiles lists every log the soak produced: agent.log, the audit log,
// the control plane's JSON log, the EMF metrics file.
func logFiles(dir string) map[string][]byte {
	out := map[string][]byte{}
	for _, p := range []string{"agent.log", "agent/audit.jsonl", "control-plane.log", "metrics.emf.jsonl"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
			out[p] = b
		}
	}
	return out
}

// checkPlaintext: no imported material appears on the websocket or in a log.
func (r *soakRun) checkPlaintext() {
	hay := logFiles(r.sb.Dir)
	hay["websocket"] = r.inj.wireBytes()
	for _, b := range hay {
		r.rep.BytesScanned += len(b)
	}
	mats := map[string][]byte{}
	for _, m := range r.materials() {
		mats[m.KeyARN+"#"+m.KeyMaterialID] = m.Material
	}
	r.rep.MaterialsScanned = len(mats)
	if len(mats) == 0 {
		r.violate("plaintext scan: no imported material to look for")
	}
	if len(hay["websocket"]) == 0 || len(hay["agent.log"]) == 0 {
		r.violate("plaintext scan: nothing captured (websocket %d bytes, agent.log %d bytes)", len(hay["websocket"]), len(hay["agent.log"]))
	}
	for _, l := range ScanForMaterial(hay, mats) {
		r.violate("plaintext of %s found in %s (%s)", l.KeyARN, l.Where, l.Encoding)
	}
}
