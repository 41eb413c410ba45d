// Package triggers delivers the stack's triggers the way AWS does, through
// the Lambda Invoke API (the real service/lambda client against the
// sandbox's emulator): EventBridge Scheduler schedules read from the
// synthesized template (rate/cron/at expressions in their time zone, the
// flexible window, the target's exact Input as an asynchronous invocation,
// the retry policy and the SQS dead-letter queue with Scheduler's message
// attributes), EventBridge rules (event pattern matching, the event
// envelope, rule target retries and DLQ), CloudWatch alarm actions (the
// documented Lambda alarm payload, from an alarm whose state is set in
// moto_server's CloudWatch) and the KMS key-material events. Delivery is at
// least once: a Duplicate probability delivers some invocations twice.
package triggers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrExpression: a schedule expression this package cannot read.
var ErrExpression = errors.New("triggers: bad schedule expression")

// Expression is a parsed Scheduler schedule expression.
type Expression struct {
	Raw  string
	loc  *time.Location
	rate time.Duration // rate(): every rate from the schedule's start
	at   time.Time     // at(): one time
	cron *cronSpec
}

// ParseExpression reads rate(N unit), cron(min hour dom month dow year) and
// at(yyyy-mm-ddThh:mm:ss) (Scheduler's three forms) in time zone tz
// (empty: UTC). cron and at are read in tz; rate is zone-independent.
func ParseExpression(expr, tz string) (*Expression, error) {
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: %v", ErrExpression, tz, err)
	}
	e := &Expression{Raw: expr, loc: loc}
	body := func(prefix string) (string, bool) {
		s, ok := strings.CutPrefix(expr, prefix+"(")
		if !ok {
			return "", false
		}
		return strings.CutSuffix(s, ")")
	}
	if b, ok := body("rate"); ok {
		f := strings.Fields(b)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: %q: rate(value unit)", ErrExpression, expr)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: %q: rate value must be a positive integer", ErrExpression, expr)
		}
		unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour,
			"day": 24 * time.Hour, "days": 24 * time.Hour}[f[1]]
		if unit == 0 || (n == 1) != !strings.HasSuffix(f[1], "s") {
			return nil, fmt.Errorf("%w: %q: unit must be minute(s), hour(s) or day(s), singular for 1", ErrExpression, expr)
		}
		e.rate = time.Duration(n) * unit
		return e, nil
	}
	if b, ok := body("at"); ok {
		t, err := time.ParseInLocation("2006-01-02T15:04:05", b, loc)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: at(yyyy-mm-ddThh:mm:ss): %v", ErrExpression, expr, err)
		}
		e.at = t
		return e, nil
	}
	if b, ok := body("cron"); ok {
		c, err := parseCron(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrExpression, expr, err)
		}
		e.cron = c
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q: expected rate(), cron() or at()", ErrExpression, expr)
}

// Next returns the first firing time strictly after after; start is the
// schedule's start (rate schedules fire at start + k*rate). The zero time
// means never again.
func (e *Expression) Next(start, after time.Time) time.Time {
	switch {
	case e.rate > 0:
		if after.Before(start) {
			return start
		}
		k := after.Sub(start)/e.rate + 1
		return start.Add(k * e.rate)
	case !e.at.IsZero():
		if e.at.After(after) {
			return e.at
		}
		return time.Time{}
	default:
		return e.cron.next(after.In(e.loc))
	}
}

// cronSpec is Scheduler's 6-field cron: minutes hours day-of-month month
// day-of-week year. One of day-of-month and day-of-week is "?". Supported:
// *, ?, lists, ranges, steps, month and weekday names, L in day-of-month.
type cronSpec struct {
	min, hour, dom, month, dow, year map[int]bool
	anyDom, anyDow, lastDom          bool
}

func parseCron(s string) (*cronSpec, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("cron needs 6 fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &cronSpec{}
	months := map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	days := map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
	var err error
	if c.min, err = cronField(f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("minutes: %w", err)
	}
	if c.hour, err = cronField(f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("hours: %w", err)
	}
	switch f[2] {
	case "?":
		c.anyDom = true
	case "L":
		c.lastDom = true
	default:
		if c.dom, err = cronField(f[2], 1, 31, nil); err != nil {
			return nil, fmt.Errorf("day-of-month: %w", err)
		}
	}
	if c.month, err = cronField(f[3], 1, 12, months); err != nil {
		return nil, fmt.Errorf("month: %w", err)
	}
	if f[4] == "?" {
		c.anyDow = true
	} else if c.dow, err = cronField(f[4], 1, 7, days); err != nil {
		return nil, fmt.Errorf("day-of-week: %w", err)
	}
	if c.year, err = cronField(f[5], 1970, 2199, nil); err != nil {
		return nil, fmt.Errorf("year: %w", err)
	}
	if c.anyDom == c.anyDow {
		return nil, errors.New("exactly one of day-of-month and day-of-week must be ?")
	}
	return c, nil
}

func cronField(s string, lo, hi int, names map[string]int) (map[int]bool, error) {
	out := map[int]bool{}
	val := func(v string) (int, error) {
		if n, ok := names[strings.ToUpper(v)]; ok {
			return n, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not in %d-%d", v, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(s, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("step %q is not a positive integer", stepS)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = val(x); err != nil {
				return nil, err
			}
			if b, err = val(y); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			n, err := val(rng)
			if err != nil {
				return nil, err
			}
			a = n
			if !hasStep {
				b = n
			}
		}
		for v := a; v <= b; v += step {
			out[v] = true
		}
	}
	return out, nil
}

// next finds the first minute after t (in t's location) the spec matches;
// zero after year 2199.
func (c *cronSpec) next(t time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= 2199 {
		if !c.year[t.Year()] {
			t = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !c.month[int(t.Month())] {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
			continue
		}
		if !c.hour[t.Hour()] {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, t.Location())
			continue
		}
		if !c.min[t.Minute()] {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (c *cronSpec) dayMatches(t time.Time) bool {
	switch {
	case c.lastDom:
		return t.AddDate(0, 0, 1).Day() == 1
	case c.anyDom:
		return c.dow[int(t.Weekday())+1] // SUN = 1
	default:
		return c.dom[t.Day()]
	}
}
