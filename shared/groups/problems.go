package groups

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Path locates the field, e.g. "groups[2].schedule"; empty for the whole document.
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError lists every problem found in a configuration file.
type ValidationError struct {
	Problems []Problem
}

var _ error = (*ValidationError)(nil)

// Error lists all problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems in the order they are found.
type problems struct {
	list    []Problem
	dropped int
}

// maxProblems bounds the list so that hostile input cannot make the error
// huge; document-level problems (empty path) are always kept.
const maxProblems = 1000

func (p *problems) addf(path, format string, args ...any) {
	if len(p.list) >= maxProblems && path != "" {
		p.dropped++
		return
	}
	p.list = append(p.list, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(a, b int) bool {
		sa, ia := sectionOf(p.list[a].Path)
		sb, ib := sectionOf(p.list[b].Path)
		if sa != sb {
			return sa < sb
		}
		return ia < ib
	})
	if p.dropped > 0 {
		p.list = append(p.list, Problem{Message: fmt.Sprintf("%d more problems not shown", p.dropped)})
		p.dropped = 0
	}
	return &ValidationError{Problems: p.list}
}

var sectionRe = regexp.MustCompile(`^([a-z_]*)(?:\[([0-9]+)\])?`)

// sectionOf ranks a path by file section (document, version, control_plane,
// hsm_pools, defaults, groups) and list index, so problems read in file order.
func sectionOf(path string) (rank, index int) {
	m := sectionRe.FindStringSubmatch(path)
	index, _ = strconv.Atoi(m[2])
	switch m[1] {
	case "":
		return 0, index
	case "version":
		return 1, index
	case "control_plane":
		return 2, index
	case "hsm_pools":
		return 3, index
	case "defaults":
		return 4, index
	case "groups":
		return 5, index
	}
	return 6, index
}
