package kmsemu

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSAES_OAEP_SHA_1 is a KMS algorithm.
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"sort"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// ciphertextMagic starts every symmetric ciphertext blob this emulator makes.
var ciphertextMagic = []byte("KFE1")

const (
	headerLen = 4 + 36 + 32 // magic, key id, key material id (raw SHA-256)
	nonceLen  = 12
)

// canonicalContext encodes an encryption context as sorted, length-prefixed
// key/value pairs, so the same map always gives the same AAD.
func canonicalContext(ctx map[string]string) []byte {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(ctx[k])))
		out = append(out, ctx[k]...)
	}
	return out
}

func gcmFor(m *material) (cipher.AEAD, error) {
	block, err := aes.NewCipher(m.parsed.Secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealSymmetric encrypts under the key's current material.
func sealSymmetric(k *key, m *material, plaintext []byte, ctx map[string]string) ([]byte, *Error) {
	mid, err := hex.DecodeString(m.id)
	if err != nil || len(mid) != 32 {
		return nil, errf("KMSInternalException", "bad key material id")
	}
	aead, err := gcmFor(m)
	if err != nil {
		return nil, errf("KMSInternalException", "cipher: %v", err)
	}
	out := make([]byte, 0, headerLen+nonceLen+len(plaintext)+aead.Overhead())
	out = append(out, ciphertextMagic...)
	out = append(out, k.id...)
	out = append(out, mid...)
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, errf("KMSInternalException", "nonce: %v", err)
	}
	out = append(out, nonce...)
	aad := append(append([]byte{}, out[:headerLen]...), canonicalContext(ctx)...)
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// parseHeader splits a ciphertext blob into key id and key material id.
func parseHeader(blob []byte) (keyID, materialID string, ok bool) {
	if len(blob) < headerLen+nonceLen+16 || string(blob[:4]) != string(ciphertextMagic) {
		return "", "", false
	}
	return string(blob[4:40]), hex.EncodeToString(blob[40:headerLen]), true
}

func openSymmetric(m *material, blob []byte, ctx map[string]string) ([]byte, *Error) {
	aead, err := gcmFor(m)
	if err != nil {
		return nil, errf("KMSInternalException", "cipher: %v", err)
	}
	aad := append(append([]byte{}, blob[:headerLen]...), canonicalContext(ctx)...)
	pt, err := aead.Open(nil, blob[headerLen:headerLen+nonceLen], blob[headerLen+nonceLen:], aad)
	if err != nil {
		return nil, errf(errInvalidCipher, "The ciphertext or encryption context is invalid")
	}
	return pt, nil
}

func oaepHash(alg string) hash.Hash {
	if alg == "RSAES_OAEP_SHA_1" {
		return sha1.New() //nolint:gosec
	}
	return sha256.New()
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func init() {
	register("Encrypt", (*Server).encrypt)
	register("Decrypt", (*Server).decrypt)
	register("ReEncrypt", (*Server).reEncrypt)
	register("GenerateDataKey", func(s *Server, now time.Time, b []byte) (any, *Error) { return s.generateDataKey(b, true) })
	register("GenerateDataKeyWithoutPlaintext", func(s *Server, now time.Time, b []byte) (any, *Error) { return s.generateDataKey(b, false) })
	register("GenerateMac", (*Server).generateMac)
	register("VerifyMac", (*Server).verifyMac)
	register("Sign", (*Server).sign)
	register("Verify", (*Server).verify)
	register("GetPublicKey", (*Server).getPublicKey)
}

// encryptKey resolves and checks a key for encryption and returns it with
// the effective algorithm.
func (s *Server) encryptKey(keyID, alg string) (*key, string, *Error) {
	k, e := s.resolveKey(keyID, true)
	if e != nil {
		return nil, "", e
	}
	if e := k.usable(); e != nil {
		return nil, "", e
	}
	if k.usage != keyspec.EncryptDecrypt {
		return nil, "", errf(errInvalidUsage, "%s key usage is %s, not ENCRYPT_DECRYPT", k.arn, k.usage)
	}
	if alg == "" {
		alg = "SYMMETRIC_DEFAULT"
	}
	if !contains(encryptionAlgorithms(k.info), alg) {
		return nil, "", errf(errInvalidUsage, "%s does not support encryption algorithm %s", k.arn, alg)
	}
	return k, alg, nil
}

// encryptWith encrypts plaintext under k (already checked) and returns the
// blob and the key material id used ("" for RSA).
func encryptWith(k *key, alg string, plaintext []byte, ctx map[string]string) ([]byte, string, *Error) {
	m := k.current()
	if alg == "SYMMETRIC_DEFAULT" {
		blob, e := sealSymmetric(k, m, plaintext, ctx)
		return blob, m.id, e
	}
	priv, ok := m.parsed.Private.(*rsa.PrivateKey)
	if !ok {
		return nil, "", errf("KMSInternalException", "RSA key has no RSA private key")
	}
	blob, err := rsa.EncryptOAEP(oaepHash(alg), rand.Reader, &priv.PublicKey, plaintext, nil)
	if err != nil {
		return nil, "", errf(errValidation, "Plaintext is too long for %s with %s", k.spec, alg)
	}
	return blob, "", nil
}

func checkPlaintext(p []byte) *Error {
	if len(p) < 1 || len(p) > 4096 {
		return errf(errValidation, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096")
	}
	return nil
}

func (s *Server) encrypt(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId               string
		Plaintext           []byte
		EncryptionContext   map[string]string
		EncryptionAlgorithm string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if e := checkPlaintext(req.Plaintext); e != nil {
		return nil, e
	}
	k, alg, e := s.encryptKey(req.KeyId, req.EncryptionAlgorithm)
	if e != nil {
		return nil, e
	}
	blob, _, e := encryptWith(k, alg, req.Plaintext, req.EncryptionContext)
	if e != nil {
		return nil, e
	}
	return map[string]any{"CiphertextBlob": blob, "KeyId": k.arn, "EncryptionAlgorithm": alg}, nil
}

// decryptBlob is Decrypt's core, shared with ReEncrypt.
func (s *Server) decryptBlob(keyID string, blob []byte, ctx map[string]string, alg string) (*key, []byte, string, string, *Error) {
	if len(blob) < 1 || len(blob) > 6144 {
		return nil, nil, "", "", errf(errValidation, "CiphertextBlob must be 1..6144 bytes")
	}
	if alg == "" {
		alg = "SYMMETRIC_DEFAULT"
	}
	if alg != "SYMMETRIC_DEFAULT" {
		if keyID == "" {
			return nil, nil, "", "", errf(errValidation, "KeyId is required to decrypt with %s", alg)
		}
		k, alg, e := s.encryptKey(keyID, alg)
		if e != nil {
			return nil, nil, "", "", e
		}
		priv, ok := k.current().parsed.Private.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, "", "", errf(errInvalidUsage, "%s is not an RSA key", k.arn)
		}
		pt, err := rsa.DecryptOAEP(oaepHash(alg), nil, priv, blob, nil)
		if err != nil {
			return nil, nil, "", "", errf(errInvalidCipher, "The ciphertext is invalid")
		}
		return k, pt, alg, "", nil
	}
	hkey, hmat, ok := parseHeader(blob)
	if !ok {
		return nil, nil, "", "", errf(errInvalidCipher, "The ciphertext is invalid")
	}
	k, ok := s.keys[hkey]
	if !ok {
		return nil, nil, "", "", errf(errInvalidCipher, "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access")
	}
	if keyID != "" {
		want, e := s.resolveKey(keyID, true)
		if e != nil {
			return nil, nil, "", "", e
		}
		if want.id != k.id {
			return nil, nil, "", "", errf(errIncorrectKey, "The key ID in the request does not identify a KMS key that can perform this operation")
		}
	}
	if e := k.usable(); e != nil {
		return nil, nil, "", "", e
	}
	if k.usage != keyspec.EncryptDecrypt || !k.info.Symmetric() {
		return nil, nil, "", "", errf(errInvalidUsage, "%s cannot decrypt SYMMETRIC_DEFAULT ciphertext", k.arn)
	}
	m := k.materialByID(hmat)
	if m == nil || pendingState(m.state) {
		return nil, nil, "", "", errf(errInvalidCipher, "The ciphertext names key material that is not associated with %s", k.arn)
	}
	if !m.imported {
		return nil, nil, "", "", errf(errInvalidState, "%s key material %s is not imported", k.arn, m.id)
	}
	pt, e := openSymmetric(m, blob, ctx)
	return k, pt, alg, m.id, e
}

func (s *Server) decrypt(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId               string
		CiphertextBlob      []byte
		EncryptionContext   map[string]string
		EncryptionAlgorithm string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, pt, alg, mid, e := s.decryptBlob(req.KeyId, req.CiphertextBlob, req.EncryptionContext, req.EncryptionAlgorithm)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"KeyId": k.arn, "Plaintext": pt, "EncryptionAlgorithm": alg}
	if mid != "" {
		out["KeyMaterialId"] = mid
	}
	return out, nil
}

func (s *Server) reEncrypt(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		CiphertextBlob                 []byte
		SourceKeyId                    string
		SourceEncryptionContext        map[string]string
		SourceEncryptionAlgorithm      string
		DestinationKeyId               string
		DestinationEncryptionContext   map[string]string
		DestinationEncryptionAlgorithm string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.DestinationKeyId == "" {
		return nil, errf(errValidation, "DestinationKeyId is required")
	}
	src, pt, salg, smid, e := s.decryptBlob(req.SourceKeyId, req.CiphertextBlob, req.SourceEncryptionContext, req.SourceEncryptionAlgorithm)
	if e != nil {
		return nil, e
	}
	dst, dalg, e := s.encryptKey(req.DestinationKeyId, req.DestinationEncryptionAlgorithm)
	if e != nil {
		return nil, e
	}
	blob, dmid, e := encryptWith(dst, dalg, pt, req.DestinationEncryptionContext)
	clear(pt)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"CiphertextBlob": blob, "KeyId": dst.arn, "SourceKeyId": src.arn,
		"SourceEncryptionAlgorithm": salg, "DestinationEncryptionAlgorithm": dalg}
	if smid != "" {
		out["SourceKeyMaterialId"] = smid
	}
	if dmid != "" {
		out["DestinationKeyMaterialId"] = dmid
	}
	return out, nil
}

func (s *Server) generateDataKey(body []byte, withPlaintext bool) (any, *Error) {
	var req struct {
		KeyId             string
		KeySpec           string
		NumberOfBytes     *int
		EncryptionContext map[string]string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	n := 0
	switch {
	case req.KeySpec != "" && req.NumberOfBytes != nil:
		return nil, errf(errValidation, "Please specify either number of bytes or key spec.")
	case req.KeySpec == "AES_256":
		n = 32
	case req.KeySpec == "AES_128":
		n = 16
	case req.KeySpec != "":
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]", req.KeySpec)
	case req.NumberOfBytes != nil:
		n = *req.NumberOfBytes
		if n < 1 || n > 1024 {
			return nil, errf(errValidation, "1 validation error detected: Value '%d' at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024", n)
		}
	default:
		return nil, errf(errValidation, "Please specify either number of bytes or key spec.")
	}
	k, _, e := s.encryptKey(req.KeyId, "")
	if e != nil {
		return nil, e
	}
	pt := make([]byte, n)
	if _, err := rand.Read(pt); err != nil {
		return nil, errf("KMSInternalException", "random: %v", err)
	}
	blob, mid, e := encryptWith(k, "SYMMETRIC_DEFAULT", pt, req.EncryptionContext)
	if e != nil {
		return nil, e
	}
	out := map[string]any{"CiphertextBlob": blob, "KeyId": k.arn, "KeyMaterialId": mid}
	if withPlaintext {
		out["Plaintext"] = pt
	}
	return out, nil
}

// ---- HMAC ----

func macHash(alg string) func() hash.Hash {
	switch alg {
	case "HMAC_SHA_224":
		return sha256.New224
	case "HMAC_SHA_256":
		return sha256.New
	case "HMAC_SHA_384":
		return sha512.New384
	case "HMAC_SHA_512":
		return sha512.New
	}
	return nil
}

func (s *Server) macKey(keyID, alg string, msg []byte) (*key, []byte, *Error) {
	if len(msg) < 1 || len(msg) > 4096 {
		return nil, nil, errf(errValidation, "Message must be 1..4096 bytes")
	}
	if macHash(alg) == nil {
		return nil, nil, errf(errValidation, "1 validation error detected: Value '%s' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]", alg)
	}
	k, e := s.resolveKey(keyID, true)
	if e != nil {
		return nil, nil, e
	}
	if e := k.usable(); e != nil {
		return nil, nil, e
	}
	if k.usage != keyspec.GenerateVerifyMAC || !contains(macAlgorithms(k.info), alg) {
		return nil, nil, errf(errInvalidUsage, "%s (%s, %s) does not support %s", k.arn, k.spec, k.usage, alg)
	}
	h := hmac.New(macHash(alg), k.current().parsed.Secret)
	h.Write(msg)
	return k, h.Sum(nil), nil
}

func (s *Server) generateMac(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId        string
		Message      []byte
		MacAlgorithm string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, mac, e := s.macKey(req.KeyId, req.MacAlgorithm, req.Message)
	if e != nil {
		return nil, e
	}
	return map[string]any{"KeyId": k.arn, "Mac": mac, "MacAlgorithm": req.MacAlgorithm}, nil
}

func (s *Server) verifyMac(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId        string
		Message      []byte
		MacAlgorithm string
		Mac          []byte
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, mac, e := s.macKey(req.KeyId, req.MacAlgorithm, req.Message)
	if e != nil {
		return nil, e
	}
	if !hmac.Equal(mac, req.Mac) {
		return nil, errf("KMSInvalidMacException", "The MAC is not valid")
	}
	return map[string]any{"KeyId": k.arn, "MacValid": true, "MacAlgorithm": req.MacAlgorithm}, nil
}

// ---- signatures ----

func signingHash(alg string) crypto.Hash {
	switch alg {
	case "ECDSA_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256":
		return crypto.SHA256
	case "ECDSA_SHA_384", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PSS_SHA_384":
		return crypto.SHA384
	case "ECDSA_SHA_512", "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_512":
		return crypto.SHA512
	}
	return 0
}

func isPSS(alg string) bool {
	return alg == "RSASSA_PSS_SHA_256" || alg == "RSASSA_PSS_SHA_384" || alg == "RSASSA_PSS_SHA_512"
}

type signReq struct {
	KeyId            string
	Message          []byte
	MessageType      string
	SigningAlgorithm string
	Signature        []byte
}

// signKey validates a Sign/Verify request and returns the key and digest.
func (s *Server) signKey(req *signReq) (*key, []byte, *Error) {
	h := signingHash(req.SigningAlgorithm)
	if h == 0 {
		return nil, nil, errf(errValidation, "1 validation error detected: Value '%s' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set", req.SigningAlgorithm)
	}
	var digest []byte
	switch req.MessageType {
	case "", "RAW":
		if len(req.Message) < 1 || len(req.Message) > 4096 {
			return nil, nil, errf(errValidation, "Message must be 1..4096 bytes for MessageType RAW; use DIGEST for longer messages")
		}
		hh := h.New()
		hh.Write(req.Message)
		digest = hh.Sum(nil)
	case "DIGEST":
		if len(req.Message) != h.Size() {
			return nil, nil, errf(errValidation, "Digest is %d bytes; %s needs %d", len(req.Message), req.SigningAlgorithm, h.Size())
		}
		digest = req.Message
	default:
		return nil, nil, errf(errValidation, "1 validation error detected: Value '%s' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [DIGEST, RAW]", req.MessageType)
	}
	k, e := s.resolveKey(req.KeyId, true)
	if e != nil {
		return nil, nil, e
	}
	if e := k.usable(); e != nil {
		return nil, nil, e
	}
	if k.usage != keyspec.SignVerify || !contains(signingAlgorithms(k.info), req.SigningAlgorithm) {
		return nil, nil, errf(errInvalidUsage, "%s (%s, %s) does not support %s", k.arn, k.spec, k.usage, req.SigningAlgorithm)
	}
	return k, digest, nil
}

func (s *Server) sign(_ time.Time, body []byte) (any, *Error) {
	var req signReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, digest, e := s.signKey(&req)
	if e != nil {
		return nil, e
	}
	var opts crypto.SignerOpts = signingHash(req.SigningAlgorithm)
	if isPSS(req.SigningAlgorithm) {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: signingHash(req.SigningAlgorithm)}
	}
	sig, err := k.current().parsed.Private.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, errf("KMSInternalException", "sign: %v", err)
	}
	return map[string]any{"KeyId": k.arn, "Signature": sig, "SigningAlgorithm": req.SigningAlgorithm}, nil
}

func (s *Server) verify(_ time.Time, body []byte) (any, *Error) {
	var req signReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.Signature) < 1 || len(req.Signature) > 6144 {
		return nil, errf(errValidation, "Signature must be 1..6144 bytes")
	}
	k, digest, e := s.signKey(&req)
	if e != nil {
		return nil, e
	}
	h := signingHash(req.SigningAlgorithm)
	ok := false
	switch pub := k.current().parsed.Private.Public().(type) {
	case *rsa.PublicKey:
		if isPSS(req.SigningAlgorithm) {
			ok = rsa.VerifyPSS(pub, h, digest, req.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(pub, h, digest, req.Signature) == nil
		}
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest, req.Signature)
	case *secp256k1.PublicKey:
		ok = secp256k1.Verify(pub, digest, req.Signature)
	}
	if !ok {
		return nil, errf("KMSInvalidSignatureException", "The signature is not valid")
	}
	return map[string]any{"KeyId": k.arn, "SignatureValid": true, "SigningAlgorithm": req.SigningAlgorithm}, nil
}

func (s *Server) getPublicKey(_ time.Time, body []byte) (any, *Error) {
	k, e := s.keyFromBody(body, true)
	if e != nil {
		return nil, e
	}
	if !k.info.Asymmetric() {
		return nil, errf(errUnsupported, "%s is %s and has no public key", k.arn, k.spec)
	}
	if e := k.usable(); e != nil {
		return nil, e
	}
	md := k.metadata(s.opts.Account)
	out := map[string]any{"KeyId": k.arn, "PublicKey": k.current().parsed.PublicDER, "KeySpec": string(k.spec),
		"CustomerMasterKeySpec": string(k.spec), "KeyUsage": string(k.usage)}
	if md.SigningAlgorithms != nil {
		out["SigningAlgorithms"] = md.SigningAlgorithms
	}
	if md.EncryptionAlgorithms != nil {
		out["EncryptionAlgorithms"] = md.EncryptionAlgorithms
	}
	if md.KeyAgreementAlgorithms != nil {
		out["KeyAgreementAlgorithms"] = md.KeyAgreementAlgorithms
	}
	return out, nil
}
