package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/keyferry/keyferry/agent/audit"
)

// cmdAuditVerify checks an audit log's hash chain (and signatures with
// -pubkey) and names the first broken record.
func cmdAuditVerify(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	pubPath := fs.String("pubkey", "", "agent identity public key (PEM) to verify record signatures")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"usage: keyferry-agent audit verify [-pubkey PEM] FILE"}
	}
	var pub *ecdsa.PublicKey
	if *pubPath != "" {
		b, err := os.ReadFile(*pubPath)
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return fmt.Errorf("%s: no PEM block", *pubPath)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", *pubPath, err)
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s: not an ECDSA public key", *pubPath)
		}
		pub = ek
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := audit.Verify(f, pub)
	if err != nil {
		return fmt.Errorf("%s: FAILED: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(stdout, "%s: OK: %d records, last seq %d, last hash %s", fs.Arg(0), res.Records, res.LastSeq, res.LastHash)
	if pub != nil {
		fmt.Fprintf(stdout, ", %d signatures verified", res.Signed)
	}
	fmt.Fprintln(stdout)
	return nil
}
