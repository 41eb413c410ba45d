package apigwemu

import (
	"testing"
	"unicode/utf8"
)

func TestSelectRoute(t *testing.T) {
	routes := map[string]bool{"wrap_result": true, "heartbeat": true, RouteConnect: true, RouteDisconnect: true, RouteDefault: true}
	has := func(k string) bool { return routes[k] }
	tests := []struct {
		name   string
		body   string
		binary bool
		want   string
	}{
		{"known action", `{"action":"wrap_result","x":1}`, false, "wrap_result"},
		{"second known action", `{"x":{"action":"no"},"action":"heartbeat"}`, false, "heartbeat"},
		{"unknown action", `{"action":"nope"}`, false, RouteDefault},
		{"missing action", `{"verb":"wrap_result"}`, false, RouteDefault},
		{"non-string action", `{"action":7}`, false, RouteDefault},
		{"null action", `{"action":null}`, false, RouteDefault},
		{"empty action", `{"action":""}`, false, RouteDefault},
		{"case differs", `{"Action":"wrap_result"}`, false, RouteDefault},
		{"value case differs", `{"action":"WRAP_RESULT"}`, false, RouteDefault},
		{"not json", `wrap_result`, false, RouteDefault},
		{"json array", `[{"action":"wrap_result"}]`, false, RouteDefault},
		{"truncated json", `{"action":"wrap_result"`, false, RouteDefault},
		{"trailing garbage", `{"action":"wrap_result"} x`, false, RouteDefault},
		{"empty body", ``, false, RouteDefault},
		{"cannot select $connect", `{"action":"$connect"}`, false, RouteDefault},
		{"cannot select $disconnect", `{"action":"$disconnect"}`, false, RouteDefault},
		{"binary is never parsed", `{"action":"wrap_result"}`, true, RouteDefault},
		{"escaped action", `{"action":"wrap\u005fresult"}`, false, "wrap_result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := selectRoute([]byte(tc.body), tc.binary, has); got != tc.want {
				t.Fatalf("selectRoute(%q) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

func FuzzSelectRoute(f *testing.F) {
	for _, s := range []string{`{"action":"wrap_result"}`, `{"action":"$connect"}`, `{"action":1}`, `[]`, `{`, ``, "\xff"} {
		f.Add([]byte(s), false)
	}
	routes := map[string]bool{"wrap_result": true, RouteConnect: true, RouteDisconnect: true}
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		got := selectRoute(body, binary, func(k string) bool { return routes[k] })
		switch got {
		case RouteDefault:
		case RouteConnect, RouteDisconnect:
			t.Fatalf("message selected lifecycle route %q", got)
		default:
			if binary || !routes[got] {
				t.Fatalf("selected %q (binary=%v) which is not a registered route", got, binary)
			}
			if actionOf(body) != got || !utf8.ValidString(got) {
				t.Fatalf("selected %q but action is %q", got, actionOf(body))
			}
		}
	})
}
