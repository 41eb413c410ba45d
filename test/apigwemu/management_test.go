package apigwemu

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/gorilla/websocket"
)

func mgmtClient(emu *Emulator) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(emu.ManagementURL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFUNCTIONS", "secret", ""),
	})
}

func TestManagementAPIWithSDKClient(t *testing.T) {
	ctx := context.Background()
	emu := startEmu(t, nil)
	connect, disc := newRecorder(200), newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	emu.Route(RouteDisconnect, disc.handle)
	c := mustDial(t, emu)
	id := connect.next(t).RequestContext.ConnectionID
	api := mgmtClient(emu)

	tests := []struct {
		name string
		data []byte
	}{
		{"small", []byte(`{"type":"wrap_request","job":"j1"}`)},
		{"fragmented at 32 KB", bytes.Repeat([]byte("b"), 3*MaxFrameSize+17)},
		{"exactly 128 KB", bytes.Repeat([]byte("c"), MaxMessageSize)},
	}
	for _, tc := range tests {
		t.Run("post "+tc.name, func(t *testing.T) {
			if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: tc.data}); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			typ, got, err := c.ReadMessage()
			if err != nil || typ != websocket.TextMessage || !bytes.Equal(got, tc.data) {
				t.Fatalf("client got type %d, %d bytes, err %v; want text of %d bytes", typ, len(got), err, len(tc.data))
			}
		})
	}

	t.Run("post over 128 KB", func(t *testing.T) {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: bytes.Repeat([]byte("d"), MaxMessageSize+1)})
		var tooLarge *types.PayloadTooLargeException
		if !errors.As(err, &tooLarge) {
			t.Fatalf("want PayloadTooLargeException, got %v", err)
		}
	})

	t.Run("get", func(t *testing.T) {
		out, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if out.ConnectedAt == nil || out.LastActiveAt == nil || out.Identity == nil {
			t.Fatalf("incomplete GetConnection output %+v", out)
		}
		if aws.ToString(out.Identity.SourceIp) != "127.0.0.1" || aws.ToString(out.Identity.UserAgent) != "keyferry-agent/test" {
			t.Fatalf("identity %+v", out.Identity)
		}
		if d := time.Since(*out.ConnectedAt); d < 0 || d > time.Hour {
			t.Fatalf("connectedAt %v", out.ConnectedAt)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		if ce := readClose(t, c); ce.Code != websocket.CloseNormalClosure {
			t.Fatalf("client close code %d, want 1000", ce.Code)
		}
		ev := disc.next(t)
		rc := ev.RequestContext
		if rc.DisconnectStatusCode != CloseNormal || rc.DisconnectReason == nil || *rc.DisconnectReason != reasonDeleted {
			t.Fatalf("$disconnect context %+v", rc)
		}
	})

	for _, op := range []struct {
		name string
		call func() error
	}{
		{"post", func() error {
			_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("x")})
			return err
		}},
		{"get", func() error {
			_, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			return err
		}},
		{"delete", func() error {
			_, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
			return err
		}},
		{"post to unknown id", func() error {
			_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("Zm9vYmFyYmF6cXU="), Data: []byte("x")})
			return err
		}},
	} {
		t.Run(op.name+" after close is Gone", func(t *testing.T) {
			var gone *types.GoneException
			if err := op.call(); !errors.As(err, &gone) {
				t.Fatalf("want GoneException, got %v", err)
			}
		})
	}
}

func TestManagementRawShapes(t *testing.T) {
	emu := startEmu(t, nil)
	tests := []struct {
		method, path string
		status       int
		errType      string
	}{
		{http.MethodPost, "/@connections/Zm9vYmFyYmF6cXU=", http.StatusGone, "GoneException"},
		{http.MethodGet, "/@connections/Zm9vYmFyYmF6cXU=", http.StatusGone, "GoneException"},
		{http.MethodPut, "/@connections/Zm9vYmFyYmF6cXU=", http.StatusForbidden, "ForbiddenException"},
		{http.MethodGet, "/@connections/", http.StatusForbidden, "ForbiddenException"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, emu.ManagementURL()+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-ErrorType") != tc.errType || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q %q", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), resp.Header.Get("Content-Type"))
			}
		})
	}
}
