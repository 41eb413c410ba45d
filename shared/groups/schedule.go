package groups

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CheckSchedule validates an EventBridge Scheduler recurring expression:
// rate(value unit) or cron(minutes hours day-of-month month day-of-week year)
// in AWS syntax (? L W # wildcards). One-time at(...) schedules are refused:
// a rotation schedule recurs.
func CheckSchedule(expr string) error {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return checkRate(expr[len("rate(") : len(expr)-1])
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return checkCron(expr[len("cron(") : len(expr)-1])
	case strings.HasPrefix(expr, "at("):
		return errors.New("one-time at() schedules cannot drive rotations; use rate(...) or cron(...)")
	case expr == "":
		return errors.New("required: rate(N unit) or cron(6 fields)")
	}
	return fmt.Errorf("%q is not rate(N unit) or cron(6 fields)", expr)
}

var rateRe = regexp.MustCompile(`^([0-9]+) ([a-z]+)$`)

func checkRate(body string) error {
	m := rateRe.FindStringSubmatch(body)
	if m == nil {
		return fmt.Errorf("rate expression must be rate(N unit), e.g. rate(7 days), got rate(%s)", body)
	}
	if len(m[1]) > 1 && m[1][0] == '0' {
		return fmt.Errorf("rate value %q has a leading zero", m[1])
	}
	n, err := strconv.ParseUint(m[1], 10, 31)
	if err != nil || n == 0 {
		return fmt.Errorf("rate value must be a positive integer, got %s", m[1])
	}
	unit := m[2]
	switch unit {
	case "minute", "hour", "day":
		if n != 1 {
			return fmt.Errorf("rate unit %q is singular; use %ss for a value of %d", unit, unit, n)
		}
	case "minutes", "hours", "days":
		if n == 1 {
			return fmt.Errorf("rate value 1 takes the singular unit %q", strings.TrimSuffix(unit, "s"))
		}
	default:
		return fmt.Errorf("rate unit must be minute(s), hour(s) or day(s), got %q", unit)
	}
	return nil
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] has value min+i
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	cronFields = []cronField{
		{name: "minutes", min: 0, max: 59},
		{name: "hours", min: 0, max: 23},
		{name: "day-of-month", min: 1, max: 31},
		{name: "month", min: 1, max: 12, names: monthNames},
		{name: "day-of-week", min: 1, max: 7, names: dayNames},
		{name: "year", min: 1970, max: 2199},
	}
)

const (
	fMinutes = iota
	fHours
	fDOM
	fMonth
	fDOW
	fYear
)

func checkCron(body string) error {
	fields := strings.Fields(body)
	if len(fields) != 6 {
		return fmt.Errorf("cron expression needs 6 fields, got %d (minutes hours day-of-month month day-of-week year)", len(fields))
	}
	var errs []error
	for i, f := range fields {
		if err := checkCronField(i, f); err != nil {
			errs = append(errs, err)
		}
	}
	domQ, dowQ := fields[fDOM] == "?", fields[fDOW] == "?"
	switch {
	case domQ && dowQ:
		errs = append(errs, errors.New("cron day-of-month and day-of-week cannot both be ?"))
	case !domQ && !dowQ:
		errs = append(errs, errors.New("cron needs ? in day-of-month or day-of-week (one of them, not both)"))
	}
	return errors.Join(errs...)
}

func checkCronField(i int, s string) error {
	f := cronFields[i]
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cron %s field %q: %s", f.name, s, fmt.Sprintf(format, args...))
	}
	if s == "?" {
		if i != fDOM && i != fDOW {
			return bad("? is allowed only in day-of-month and day-of-week")
		}
		return nil
	}
	// Special single-term forms (no lists, ranges or steps).
	if !strings.ContainsAny(s, ",-/") {
		switch i {
		case fDOM:
			if s == "L" || s == "LW" {
				return nil
			}
			if v, ok := strings.CutSuffix(s, "W"); ok {
				if _, err := f.value(v); err != nil {
					return bad("W needs a day of month 1-31 before it: %v", err)
				}
				return nil
			}
		case fDOW:
			if s == "L" {
				return nil
			}
			if v, ok := strings.CutSuffix(strings.ToUpper(s), "L"); ok {
				if _, err := f.value(v); err != nil {
					return bad("L needs a day of week before it (5L, FRIL): %v", err)
				}
				return nil
			}
			if d, k, ok := strings.Cut(s, "#"); ok {
				if _, err := f.value(d); err != nil {
					return bad("# needs a day of week before it: %v", err)
				}
				n, err := strconv.Atoi(k)
				if err != nil || n < 1 || n > 5 {
					return bad("the instance after # must be 1-5")
				}
				return nil
			}
		}
	}
	for _, term := range strings.Split(s, ",") {
		if err := f.term(term); err != nil {
			if f.hasSpecial(term) {
				switch i {
				case fDOM:
					return bad("L must stand alone (L, LW) and W follows a single day (15W)")
				case fDOW:
					return bad("L and # cannot be combined with lists or ranges")
				default:
					return bad("L, W and # are allowed only in day-of-month and day-of-week")
				}
			}
			return bad("%v", err)
		}
	}
	return nil
}

// hasSpecial reports whether a term uses the L, W or # wildcards (month and
// day names, which contain those letters, do not count).
func (f cronField) hasSpecial(term string) bool {
	t := strings.ToUpper(term)
	for _, n := range f.names {
		t = strings.ReplaceAll(t, n, "")
	}
	return strings.ContainsAny(t, "LW#")
}

func (f cronField) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	if s == "" || len(s) > 4 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a value", s)
	}
	v, _ := strconv.Atoi(s)
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

func (f cronField) term(t string) error {
	if t == "" {
		return errors.New("empty list element")
	}
	base, step, hasStep := strings.Cut(t, "/")
	if hasStep {
		if step == "" || len(step) > 4 || strings.Trim(step, "0123456789") != "" {
			return fmt.Errorf("step %q is not a number", step)
		}
		n, _ := strconv.Atoi(step)
		if n < 1 || n > f.max-f.min+1 {
			return fmt.Errorf("step %d is out of range 1-%d", n, f.max-f.min+1)
		}
	}
	if base == "*" {
		return nil
	}
	lo, hi, isRange := strings.Cut(base, "-")
	a, err := f.value(lo)
	if err != nil {
		return err
	}
	if isRange {
		b, err := f.value(hi)
		if err != nil {
			return err
		}
		if b < a {
			return fmt.Errorf("range %s runs backwards", base)
		}
	}
	return nil
}
