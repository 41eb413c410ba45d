package apigwemu

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/gorilla/websocket"
)

// BenchmarkPostToConnection measures one PostToConnection through the
// real SDK client until the websocket client has read the message.
func BenchmarkPostToConnection(b *testing.B) {
	for _, size := range []int{1 << 10, MaxMessageSize} {
		b.Run(byteSize(size), func(b *testing.B) {
			emu := New(Options{Stage: "bench", Region: testRegion, Credentials: testCreds()})
			if err := emu.Start("127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			defer emu.Close()
			ids := make(chan string, 1)
			emu.Route(RouteConnect, func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				ids <- ev.RequestContext.ConnectionID
				return events.APIGatewayProxyResponse{StatusCode: 200}, nil
			})
			u, err := PresignURL(context.Background(), emu.URL(), awsCreds(testSecret), testRegion, time.Minute, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			c, _, err := websocket.DefaultDialer.Dial(u, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			id := <-ids
			api := mgmtClient(emu)
			data := bytes.Repeat([]byte("p"), size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if _, err := api.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data}); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRouteRoundTrip measures a client message routed on its action
// to a handler whose response body comes back to the client.
func BenchmarkRouteRoundTrip(b *testing.B) {
	emu := New(Options{Stage: "bench", AllowUnauthenticated: true, RouteResponses: true})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	emu.Route("echo", func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
	})
	c, _, err := websocket.DefaultDialer.Dial(emu.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(`{"action":"echo","payload":"` + string(bytes.Repeat([]byte("e"), 1000)) + `"}`)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string { return strconv.Itoa(n>>10) + "KB" }
