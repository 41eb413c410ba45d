package groups

import (
	"fmt"
	"strings"
	"time"
)

// ParseScheduleWindow parses a group's schedule_window: "off" (0: every
// rotation fires at its due time) or a duration of whole minutes from 1m
// to 24h (EventBridge Scheduler's FlexibleTimeWindow.MaximumWindowInMinutes
// takes 1 to 1440).
func ParseScheduleWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return 0, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither \"off\" nor a duration (e.g. 30m, 2h): %w", s, err)
	}
	if d < time.Minute || d > MaxScheduleWindow || d%time.Minute != 0 {
		return 0, fmt.Errorf("%q: a schedule window is whole minutes from 1m to 24h (EventBridge Scheduler's flexible time window), or \"off\"", s)
	}
	return d, nil
}

// FlexibleWindow is the group's schedule window (0 = off); the default
// when the group was not validated.
func (g *Group) FlexibleWindow() time.Duration {
	w := g.ScheduleWindow
	if w == "" {
		w = DefaultScheduleWindow
	}
	d, err := ParseScheduleWindow(w)
	if err != nil {
		return 0
	}
	return d
}
