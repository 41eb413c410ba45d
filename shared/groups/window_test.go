package groups

import (
	"strings"
	"testing"
	"time"
)

func TestParseScheduleWindow(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"off", 0, ""},
		{"1m", time.Minute, ""},
		{"90m", 90 * time.Minute, ""},
		{"24h", 24 * time.Hour, ""},
		{"1d", 24 * time.Hour, ""},
		{"30s", 0, "whole minutes"},
		{"90s", 0, "whole minutes"},
		{"25h", 0, "whole minutes from 1m to 24h"},
		{"0m", 0, "whole minutes"},
		{"-5m", 0, "whole minutes"},
		{"soon", 0, "neither \"off\" nor a duration"},
	}
	for _, tc := range cases {
		got, err := ParseScheduleWindow(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestScheduleWindowDefaultAndProblemPath(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "default on", mut: func(doc, g m) {}, check: func(t *testing.T, c *Config) {
			if g := c.Groups[0]; g.ScheduleWindow != DefaultScheduleWindow || g.FlexibleWindow() != time.Hour {
				t.Fatalf("window %q (%v), want the default %s", g.ScheduleWindow, g.FlexibleWindow(), DefaultScheduleWindow)
			}
		}},
		{name: "off", mut: func(doc, g m) { g["schedule_window"] = "off" }, check: func(t *testing.T, c *Config) {
			if w := c.Groups[0].FlexibleWindow(); w != 0 {
				t.Fatalf("window %v, want off", w)
			}
		}},
		{name: "two days is beyond Scheduler", mut: func(doc, g m) { g["schedule_window"] = "2d" }, path: "groups[0].schedule_window", frag: "1m to 24h"},
		{name: "seconds", mut: func(doc, g m) { g["schedule_window"] = "45s" }, path: "groups[0].schedule_window", frag: "whole minutes"},
	})
}
