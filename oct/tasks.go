package oct

import (
	"fmt"
	"strings"
)

// Tasks is a set of the challenge's two tasks: segmenting each slice into
// the classes, and detecting which lesions each slice shows. The
// multi-task networks do both; a detector (ResNet-18) only detects, and a
// segmentation network trained without the detection loss only segments.
// A task a network does not do has its figures reported as absent, not as
// zero.
type Tasks uint8

const (
	Segmentation Tasks = 1 << iota
	Detection

	BothTasks = Segmentation | Detection
)

// Has reports whether every task of u is in t.
func (t Tasks) Has(u Tasks) bool { return t&u == u }

// Names returns the tasks' names in order: "segmentation", "detection".
func (t Tasks) Names() []string {
	var names []string
	if t.Has(Segmentation) {
		names = append(names, "segmentation")
	}
	if t.Has(Detection) {
		names = append(names, "detection")
	}
	return names
}

// String writes the set as "segmentation and detection", "detection" or
// "no task".
func (t Tasks) String() string {
	if names := t.Names(); len(names) > 0 {
		return strings.Join(names, " and ")
	}
	return "no task"
}

// ParseTasks reads the names that Names writes.
func ParseTasks(names []string) (Tasks, error) {
	var t Tasks
	for _, n := range names {
		switch n {
		case "segmentation":
			t |= Segmentation
		case "detection":
			t |= Detection
		default:
			return 0, fmt.Errorf("unknown task %q (want segmentation or detection)", n)
		}
	}
	if t == 0 {
		return 0, fmt.Errorf("no task named")
	}
	return t, nil
}
