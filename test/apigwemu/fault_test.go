package apigwemu

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/gorilla/websocket"
)

func TestFaultHookOutbound(t *testing.T) {
	tests := []struct {
		name     string
		action   FaultAction
		wantGone bool
		want     []string // what the client reads after posting "1" (faulted) then "2"
	}{
		{"deliver", Deliver, false, []string{"1", "2"}},
		{"drop", Drop, false, []string{"2"}},
		{"duplicate", Duplicate, false, []string{"1", "1", "2"}},
		{"hold reorders", Hold, false, []string{"2", "1"}},
		{"gone", Gone, true, []string{"2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			emu := startEmu(t, func(o *Options) {
				o.Fault = func(p FaultPoint) FaultAction {
					if p.Direction == Outbound && p.FromPost && n.Add(1) == 1 {
						return tc.action
					}
					return Deliver
				}
			})
			connect := newRecorder(200)
			emu.Route(RouteConnect, connect.handle)
			c := mustDial(t, emu)
			id := connect.next(t).RequestContext.ConnectionID
			api := mgmtClient(emu)
			_, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("1")})
			var gone *types.GoneException
			if errors.As(err, &gone) != tc.wantGone || (err != nil && !tc.wantGone) {
				t.Fatalf("first post: %v", err)
			}
			if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("2")}); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, got, err := c.ReadMessage()
				if err != nil || string(got) != want {
					t.Fatalf("message %d = %q (%v), want %q", i, got, err, want)
				}
			}
			// Nothing else is pending: a marker posted now is read next.
			_, _ = api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("end")})
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, got, err := c.ReadMessage(); err != nil || string(got) != "end" {
				t.Fatalf("extra message %q (%v)", got, err)
			}
		})
	}
}

func TestFaultHookInbound(t *testing.T) {
	tests := []struct {
		name   string
		action FaultAction
		want   []string // bodies the handler sees for "1" (faulted) then "2"
	}{
		{"drop", Drop, []string{"2"}},
		{"duplicate", Duplicate, []string{"1", "1", "2"}},
		{"hold", Hold, []string{"2", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, func(o *Options) {
				o.Fault = func(p FaultPoint) FaultAction {
					if p.Direction == Inbound && string(p.Data) == "1" {
						return tc.action
					}
					return Deliver
				}
			})
			rec := newRecorder(200)
			emu.Route(RouteDefault, rec.handle)
			c := mustDial(t, emu)
			for _, m := range []string{"1", "2"} {
				if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			// Handlers run concurrently (as in API Gateway): compare as a
			// multiset, plus the hold case's ordering of dispatch.
			counts := map[string]int{}
			for range tc.want {
				counts[rec.next(t).Body]++
			}
			for _, w := range tc.want {
				counts[w]--
			}
			for k, v := range counts {
				if v != 0 {
					t.Fatalf("body %q seen %+d times off", k, v)
				}
			}
		})
	}
}
