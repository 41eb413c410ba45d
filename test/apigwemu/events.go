package apigwemu

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// requestTimeFormat is API Gateway's requestContext.requestTime layout.
const requestTimeFormat = "02/Jan/2006:15:04:05 -0700"

// reasonDeleted is the disconnectReason API Gateway reports after
// DeleteConnection (observed in the field: code 1000 with this reason).
const reasonDeleted = "Connection Closed Normally"

// awsHeaderCase restores the spelling API Gateway forwards for headers Go
// canonicalises differently.
var awsHeaderCase = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

// identity returns the requestContext.identity API Gateway reports for a
// connection authorised with AWS_IAM (the IAM fields stay empty for
// authorisation NONE).
func (c *conn) identity() events.APIGatewayRequestIdentity {
	id := events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent}
	if c.principal != nil {
		arn := c.principal.Cred.PrincipalARN
		caller := c.principal.Cred.CallerID
		if caller == "" {
			caller = callerIDFromARN(arn)
		}
		id.AccessKey = c.principal.AccessKey
		id.UserArn = arn
		id.Caller = caller
		id.User = caller
		id.AccountID = accountFromARN(arn)
	}
	return id
}

// requestContext builds the requestContext shared by every event of c.
func (c *conn) requestContext(routeKey, eventType string, at time.Time) events.APIGatewayWebsocketProxyRequestContext {
	reqID := newID()
	return events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: reqID,
		RequestID:         reqID,
		RequestTime:       at.UTC().Format(requestTimeFormat),
		RequestTimeEpoch:  at.UnixMilli(),
		MessageDirection:  "IN",
		Stage:             c.e.opts.Stage,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		Identity:          c.identity(),
		DomainName:        c.domain,
		ConnectionID:      c.id,
		APIID:             c.e.opts.APIID,
	}
}

// connectEvent is the $connect event: the upgrade request's headers and
// query string (signing parameters included, as API Gateway passes them).
func (c *conn) connectEvent(at time.Time) events.APIGatewayWebsocketProxyRequest {
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:           map[string]string{},
		MultiValueHeaders: map[string][]string{},
		RequestContext:    c.requestContext(RouteConnect, "CONNECT", at),
	}
	for k, vs := range c.headers {
		if aws, ok := awsHeaderCase[k]; ok {
			k = aws
		}
		ev.Headers[k] = strings.Join(vs, ",")
		ev.MultiValueHeaders[k] = append([]string(nil), vs...)
	}
	if len(c.query) > 0 {
		ev.QueryStringParameters = map[string]string{}
		ev.MultiValueQueryStringParameters = map[string][]string{}
		for k, vs := range c.query {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
			ev.MultiValueQueryStringParameters[k] = append([]string(nil), vs...)
		}
	}
	return ev
}

// messageEvent is a MESSAGE event for one client message. Binary messages
// arrive base64-encoded with IsBase64Encoded set.
func (c *conn) messageEvent(routeKey string, binary bool, body []byte, at time.Time) events.APIGatewayWebsocketProxyRequest {
	rc := c.requestContext(routeKey, "MESSAGE", at)
	rc.MessageID = newID()
	ev := events.APIGatewayWebsocketProxyRequest{RequestContext: rc}
	if binary || !utf8.Valid(body) {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	} else {
		ev.Body = string(body)
	}
	return ev
}

// disconnectEvent is the $disconnect event with the close status.
func (c *conn) disconnectEvent(code int, reason string, at time.Time) events.APIGatewayWebsocketProxyRequest {
	rc := c.requestContext(RouteDisconnect, "DISCONNECT", at)
	rc.DisconnectStatusCode = int64(code)
	rc.DisconnectReason = &reason
	host := c.domain
	return events.APIGatewayWebsocketProxyRequest{
		Headers: map[string]string{
			"Host":            host,
			"x-api-key":       "",
			"X-Forwarded-For": "",
			"x-restapi":       "",
		},
		MultiValueHeaders: map[string][]string{
			"Host":            {host},
			"x-api-key":       {""},
			"X-Forwarded-For": {""},
			"x-restapi":       {""},
		},
		RequestContext: rc,
	}
}

// accountFromARN returns the account field of an ARN ("" if malformed).
func accountFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	return parts[4]
}

// callerIDFromARN derives a stable caller id of the shape IAM uses: an
// "AIDA…" unique id for users, "AROA…:session" for assumed roles.
func callerIDFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	sum := sha256.Sum256([]byte(arn))
	uniq := strings.ToUpper(hex.EncodeToString(sum[:8]))
	res := strings.Split(parts[5], "/")
	switch {
	case res[0] == "user":
		return "AIDA" + uniq
	case res[0] == "assumed-role" && len(res) >= 3:
		return "AROA" + uniq + ":" + res[len(res)-1]
	case res[0] == "root":
		return parts[4]
	}
	return parts[5]
}
