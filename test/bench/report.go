package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
)

// Figure is one reported number.
type Figure struct {
	Key   string
	Value float64
	Unit  string
	Note  string
}

// Report is the ordered list of figures `make bench` prints and writes.
type Report struct {
	Figures []Figure
	// Live, when set, gets each figure as it is added.
	Live io.Writer
}

// Add appends a figure (rounded to 3 decimals).
func (r *Report) Add(key string, v float64, unit, note string) {
	f := Figure{Key: key, Value: math.Round(v*1000) / 1000, Unit: unit, Note: note}
	r.Figures = append(r.Figures, f)
	if r.Live != nil {
		fmt.Fprintf(r.Live, "bench:   %s = %v %s\n", f.Key, f.Value, f.Unit)
	}
}

// Get returns the value of key.
func (r *Report) Get(key string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Key == key {
			return f.Value, true
		}
	}
	return 0, false
}

// JSON is the flat object {key: value}.
func (r *Report) JSON() ([]byte, error) {
	m := make(map[string]float64, len(r.Figures))
	for _, f := range r.Figures {
		m[f.Key] = f.Value
	}
	return json.MarshalIndent(m, "", "  ")
}

// WriteJSON writes the flat JSON object to path.
func (r *Report) WriteJSON(path string) error {
	b, err := r.JSON()
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Table prints the figures as an aligned table.
func (r *Report) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tUNIT\tNOTE")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", f.Key, f.Value, f.Unit, f.Note)
	}
	tw.Flush()
}
