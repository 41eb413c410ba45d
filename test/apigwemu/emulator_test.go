package apigwemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"
)

// selfSigned returns a server config and a pool trusting it, for 127.0.0.1.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "apigwemu"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestURLs(t *testing.T) {
	cfg, pool := selfSigned(t)
	tests := []struct {
		name           string
		tls            *tls.Config
		wsPrefix, mgmt string
	}{
		{"plain", nil, "ws://127.0.0.1:", "http://127.0.0.1:"},
		{"tls", cfg, "wss://127.0.0.1:", "https://127.0.0.1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, func(o *Options) { o.TLS = tc.tls; o.Stage = "prod" })
			if !strings.HasPrefix(emu.URL(), tc.wsPrefix) || !strings.HasSuffix(emu.URL(), "/prod") {
				t.Fatalf("URL %q", emu.URL())
			}
			if !strings.HasPrefix(emu.ManagementURL(), tc.mgmt) || !strings.HasSuffix(emu.ManagementURL(), "/prod") {
				t.Fatalf("ManagementURL %q", emu.ManagementURL())
			}
			connect := newRecorder(200)
			emu.Route(RouteConnect, connect.handle)
			d := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
			c, _, err := dial(t, d, presign(t, emu, testSecret, time.Now(), time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			id := connect.next(t).RequestContext.ConnectionID
			api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
				Region: testRegion, BaseEndpoint: aws.String(emu.ManagementURL()),
				HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
			})
			if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("hi")}); err != nil {
				t.Fatal(err)
			}
			if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hi" {
				t.Fatalf("read %q %v", msg, err)
			}
		})
	}
}

func TestSessionTokenCredential(t *testing.T) {
	emu := startEmu(t, func(o *Options) {
		o.Credentials = map[string]Credential{testAccessKey: {SecretAccessKey: testSecret, SessionToken: "session-token-1", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/agent/host-1"}}
	})
	connect := newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"matching token", "session-token-1", true},
		{"other token", "session-token-2", false},
		{"no token", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret, SessionToken: tc.token}
			u, err := PresignURL(context.Background(), emu.URL(), creds, testRegion, time.Minute, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, resp, err := dial(t, nil, u)
			if (err == nil) != tc.ok {
				t.Fatalf("dial err %v (resp %v), want ok=%v", err, resp, tc.ok)
			}
			if tc.ok {
				id := connect.next(t).RequestContext.Identity
				if !strings.HasPrefix(id.Caller, "AROA") || !strings.HasSuffix(id.Caller, ":host-1") {
					t.Fatalf("caller %q", id.Caller)
				}
			}
		})
	}
}
