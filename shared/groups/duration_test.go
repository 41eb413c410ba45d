package groups

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		frag string
	}{
		{in: "90d", want: 90 * day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "300s", want: 5 * time.Minute},
		{in: "-1h", want: -time.Hour},
		{in: "0d", want: 0},
		{in: " 7d ", want: 7 * day},
		{in: "", frag: "empty"},
		{in: "90", frag: "needs a unit"},
		{in: "1.5d", frag: "invalid duration"},
		{in: "d", frag: "invalid duration"},
		{in: "1d-5h", frag: "invalid duration"},
		{in: "7days", frag: "invalid duration"},
		{in: "99999999d", frag: "too large"},
		{in: "106751d24h", frag: "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.frag != "" {
				if err == nil || !strings.Contains(err.Error(), tc.frag) {
					t.Fatalf("want error with %q, got %v (%v)", tc.frag, err, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{day, 90 * day, 36 * time.Hour, 90 * time.Minute, time.Second, 0, -2 * day, 365 * day} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Fatalf("%v -> %q -> %v, %v", d, s, back, err)
		}
	}
	if got := FormatDuration(90 * day); got != "90d" {
		t.Fatalf("FormatDuration(90d) = %q", got)
	}
}

func TestExpirationYAML(t *testing.T) {
	cases := []struct {
		in   string
		want Expiration
		frag string
	}{
		{in: "never", want: Expiration{Never: true}},
		{in: "90d", want: Expiration{ValidFor: Duration(90 * day)}},
		{in: "2160h", want: Expiration{ValidFor: Duration(90 * day)}},
		{in: "sometimes", frag: `"never" or a duration`},
		{in: "[1]", frag: "got a list"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var e Expiration
			err := yaml.Unmarshal([]byte(tc.in), &e)
			if tc.frag != "" {
				if err == nil || !strings.Contains(err.Error(), tc.frag) {
					t.Fatalf("want error with %q, got %v", tc.frag, err)
				}
				return
			}
			if err != nil || e != tc.want {
				t.Fatalf("got %+v, %v", e, err)
			}
			out, err := yaml.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var back Expiration
			if err := yaml.Unmarshal(out, &back); err != nil || back != e {
				t.Fatalf("round trip %q -> %+v, %v", out, back, err)
			}
		})
	}
}
