package daemon

import "testing"

func TestGatewayNotice(t *testing.T) {
	cases := []struct {
		msg  string
		want bool
	}{
		{`{"message":"Internal server error","connectionId":"abc=","requestId":"r"}`, true},
		{`{"message":"Forbidden","connectionId":"abc=","requestId":"r"}`, true},
		{`{"message":"Endpoint request timed out","requestId":"r"}`, true},
		{`{"v":1,"action":"wrap_request","payload":"e30=","sig":"AA==","signer":"x"}`, false},
		{`{"message":"x","action":"error"}`, false},
		{`{"message":"no ids"}`, false},
		{`not json`, false},
	}
	for _, c := range cases {
		if _, got := gatewayNotice([]byte(c.msg)); got != c.want {
			t.Errorf("%s: got %v, want %v", c.msg, got, c.want)
		}
	}
}
