package main

import (
	"encoding/json"
	"io"
	"time"
)

// writeJSONLine writes v as one line of JSON (for streams such as --watch).
func writeJSONLine(w io.Writer, v any) {
	json.NewEncoder(w).Encode(v)
}

// age renders a duration for tables ("3d4h", "5m", "12s").
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + age(-d)
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return d.Truncate(time.Minute).String()
	case d < 48*time.Hour:
		return d.Truncate(time.Minute).String()
	}
	days := int(d / (24 * time.Hour))
	return (time.Duration(days)*24*time.Hour + (d % (24 * time.Hour)).Truncate(time.Hour)).String()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
