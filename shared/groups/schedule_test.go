package groups

import (
	"strings"
	"testing"
)

func TestCheckSchedule(t *testing.T) {
	cases := []struct {
		expr string
		frag string // empty: valid
	}{
		{"rate(1 minute)", ""},
		{"rate(5 minutes)", ""},
		{"rate(1 hour)", ""},
		{"rate(12 hours)", ""},
		{"rate(1 day)", ""},
		{"rate(90 days)", ""},
		{"rate(1 days)", `singular unit "day"`},
		{"rate(5 minute)", `"minute" is singular`},
		{"rate(0 days)", "positive integer"},
		{"rate(05 days)", "leading zero"},
		{"rate(2 weeks)", "minute(s), hour(s) or day(s)"},
		{"rate(2  days)", "rate(N unit)"},
		{"rate(-2 days)", "rate(N unit)"},
		{"rate(99999999999 days)", "positive integer"},
		{"", "required"},
		{"every day", "is not rate(N unit) or cron(6 fields)"},
		{"at(2030-01-01T00:00:00)", "one-time at()"},
		{"cron(0 3 * * ? *)", ""},
		{"cron(0 3 ? * MON-FRI *)", ""},
		{"cron(0/15 * ? * * *)", ""},
		{"cron(*/5 8-17 ? * mon,wed,fri *)", ""},
		{"cron(0 0 L * ? *)", ""},
		{"cron(0 0 LW * ? *)", ""},
		{"cron(0 0 15W * ? *)", ""},
		{"cron(0 0 ? * 6L *)", ""},
		{"cron(0 0 ? * FRIL *)", ""},
		{"cron(0 0 ? * L *)", ""},
		{"cron(0 0 ? * 3#2 *)", ""},
		{"cron(0 0 ? * TUE#2 *)", ""},
		{"cron(0 0 1 JAN,JUL ? 2026-2030)", ""},
		{"cron(0 0 1 1/3 ? *)", ""},
		{"cron(0 3 * * ?)", "cron expression needs 6 fields, got 5"},
		{"cron(0 3 * * ? * *)", "needs 6 fields, got 7"},
		{"cron(60 3 * * ? *)", "minutes field \"60\": 60 is out of range 0-59"},
		{"cron(0 24 * * ? *)", "hours field"},
		{"cron(0 3 0 * ? *)", "day-of-month field"},
		{"cron(0 3 * 13 ? *)", "month field"},
		{"cron(0 3 ? * 8 *)", "day-of-week field"},
		{"cron(0 3 * * ? 1969)", "year field"},
		{"cron(0 3 * * ? 2200)", "year field"},
		{"cron(0 3 * * * *)", "needs ? in day-of-month or day-of-week"},
		{"cron(0 3 ? * ? *)", "cannot both be ?"},
		{"cron(? 3 * * ? *)", "? is allowed only in day-of-month and day-of-week"},
		{"cron(0 3 L * ? *)", ""},
		{"cron(0 L * * ? *)", "L, W and # are allowed only"},
		{"cron(0 3 ? * 3#6 *)", "must be 1-5"},
		{"cron(0 3 ? * 9#2 *)", "# needs a day of week"},
		{"cron(0 3 32W * ? *)", "W needs a day of month"},
		{"cron(0 3 1,L * ? *)", "L must stand alone"},
		{"cron(0 3 ? * MON,L *)", "cannot be combined"},
		{"cron(0 3 * * ? 2030-2026)", "runs backwards"},
		{"cron(0/0 3 * * ? *)", "step 0 is out of range"},
		{"cron(0/x 3 * * ? *)", "is not a number"},
		{"cron(0,,5 3 * * ? *)", "empty list element"},
		{"cron(0 3 * FOO ? *)", `"FOO" is not a value`},
		{"cron(0 3 * JAN-DEC ? *)", ""},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			err := CheckSchedule(tc.expr)
			if tc.frag == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.frag) {
				t.Fatalf("want error containing %q, got %v", tc.frag, err)
			}
		})
	}
}

func FuzzCheckSchedule(f *testing.F) {
	for _, s := range []string{"rate(1 day)", "cron(0 3 ? * MON-FRI *)", "cron(0 0 ? * 3#2 *)", "cron(0/15 * L * ? 2030)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = CheckSchedule(s) // must not panic
	})
}
