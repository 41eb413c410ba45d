// Package kmsemu is an in-process AWS KMS emulator with real cryptography,
// built for keyferry's tests: it speaks the KMS wire protocol (awsJson1_1,
// X-Amz-Target: TrentService.<Operation>, errors as {"__type","message"},
// HTTP 400 for client errors, base64 blobs, epoch-second timestamps) so the
// unmodified aws-sdk-go-v2 KMS client and the AWS CLI work against it.
//
// Unlike local-kms and moto it implements bring-your-own-key end to end:
// GetParametersForImport hands out a fresh RSA wrapping key per call (from a
// small background pool), ImportKeyMaterial really unwraps the material with
// shared/wrapping, validates it with shared/keyspec, enforces the
// ExpirationModel/ValidTo and ImportType/KeyMaterialId rules, and the
// imported bytes then encrypt, MAC and sign for real. In-place rotation
// (NEW_KEY_MATERIAL + RotateKeyOnDemand + ListKeyRotations) is asynchronous
// and capped per key, and per-operation quotas answer ThrottlingException.
//
// Use from a Go test:
//
//	srv := kmsemu.New(kmsemu.Options{Region: "eu-west-1", Account: "111122223333", QuotaScale: 0})
//	if err := srv.Start("127.0.0.1:0"); err != nil { ... }
//	defer srv.Close()
//	client := kms.New(kms.Options{BaseEndpoint: aws.String(srv.URL()), ...})
//
// (*Server).ServeHTTP also makes it usable with httptest.NewServer.
// The clock is the real clock plus an offset: (*Server).Advance(d) moves it
// forward (material expiry, import-token expiry, scheduled deletion, rotation
// completion all follow it), and (*Server).Stats() returns request, error and
// throttle counts per operation. The same two are on the admin endpoints
// POST /_emu/clock {"advance_seconds": N} and GET /_emu/stats. Options.Fault
// is a fault-injection hook (error, delay, or apply-then-drop the response)
// for fault suites.
//
// SigV4 signatures are not verified (any credentials are accepted) but the
// Authorization header must be present.
//
// Decisions where the AWS documentation is silent (pinned by the tests):
//
//   - GetParametersForImport applies the full keyspec.CheckWrapping legality
//     check (the key spec is known at that point) with ValidationException, and
//     ImportKeyMaterial checks it again.
//   - Material that does not unwrap under the token's wrapping key is
//     InvalidCiphertextException; material that unwraps but does not parse for
//     the key spec, or differs from the bytes already associated, is
//     IncorrectKeyMaterialException.
//   - A second NEW_KEY_MATERIAL while one is PENDING_ROTATION, or while a
//     rotation runs, is ConflictException; RotateKeyOnDemand on an EXTERNAL key
//     without PENDING_ROTATION material is KMSInvalidStateException.
//   - A KeyMaterialId that is not associated with the key is NotFoundException.
//   - Key material ids are hex SHA-256 over a domain label, the key id and the
//     material, so re-importing the same bytes yields the same id (as AWS
//     documents: "based on the KMS key ID and the imported key material").
//
// Ciphertext blobs are this emulator's own opaque format: a header naming the
// key id and key material id, then AES-256-GCM under the material with the
// header and the canonical (sorted, length-prefixed) encryption context as
// AAD, so Decrypt works without KeyId after rotations and alias moves.
package kmsemu
