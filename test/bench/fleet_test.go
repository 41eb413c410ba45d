package bench

import (
	"testing"
	"time"
)

func TestQuotaTimelineAddsUpToElapsed(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(ms ...int) []Sample {
		var s []Sample
		for _, m := range ms {
			s = append(s, Sample{ParamsAt: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return s
	}
	sec := time.Second
	tests := []struct {
		name    string
		samples []Sample
		elapsed time.Duration
		want    QuotaTimeline
	}{
		{"no calls", nil, 5 * sec, QuotaTimeline{Tail: 5 * sec}},
		{"paced back to back", at(2000, 3000, 4000), 6 * sec,
			QuotaTimeline{Calls: 3, Lead: 2 * sec, Paced: 2 * sec, Tail: 2 * sec}},
		{"a hole of 3 s beyond the interval", at(1000, 2000, 6000, 7000), 9 * sec,
			QuotaTimeline{Calls: 4, Lead: sec, Paced: 3 * sec, Idle: 3 * sec, Tail: 2 * sec, LongestIdle: 3 * sec, LongestIdleAt: 2 * sec}},
		{"faster than the interval counts as paced", at(0, 500, 900), 2 * sec,
			QuotaTimeline{Calls: 3, Paced: 900 * time.Millisecond, Tail: 1100 * time.Millisecond}},
		{"jobs without PARAMS are left out", append(at(1000, 2000), Sample{}), 3 * sec,
			QuotaTimeline{Calls: 2, Lead: sec, Paced: sec, Tail: sec}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FleetResult{Samples: tc.samples, Start: t0, Elapsed: tc.elapsed}.Timeline(time.Second)
			if got != tc.want {
				t.Errorf("timeline %+v, want %+v", got, tc.want)
			}
			if sum := got.Lead + got.Paced + got.Idle + got.Tail; sum != tc.elapsed {
				t.Errorf("parts add to %s, elapsed %s", sum, tc.elapsed)
			}
		})
	}
}
