package rollout

import (
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestNeedsSlot(t *testing.T) {
	running := Revisions{Server: "s1", Database: "d1", Version: "26.4.0"}
	for _, tc := range []struct {
		name          string
		live, desired Revisions
		want          bool
	}{
		{"a new instance", Revisions{}, Revisions{Server: "", Database: "d1", Version: "26.5.0"}, false},
		{"a new instance whose schema is migrated, before its server exists",
			Revisions{Database: "d1", Version: "26.5.0"}, Revisions{Server: "s1", Database: "d1", Version: "26.5.0"}, false},
		{"the first migration, the database running", Revisions{Database: "d1"}, Revisions{Database: "d1", Version: "26.5.0"}, false},
		{"nothing changes", running, running, false},
		{"a new release to migrate to", running, Revisions{Server: "s1", Database: "d1", Version: "26.5.0"}, true},
		{"a new server template (configuration, Secret, release migrated)", running, Revisions{Server: "s2", Database: "d1", Version: "26.4.0"}, true},
		{"a new database template (password)", running, Revisions{Server: "s1", Database: "d2", Version: "26.4.0"}, true},
		{"an external database: no StatefulSet", Revisions{Server: "s1", Version: "26.4.0"}, Revisions{Server: "s2", Version: "26.4.0"}, true},
		{"a workload the pass leaves alone", running, Revisions{Database: "d1", Version: "26.4.0"}, false},
		{"a workload whose template hash was never recorded", Revisions{Server: "unrecorded", Database: "d1", Version: "26.4.0"},
			Revisions{Server: "s1", Database: "d1", Version: "26.4.0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsSlot(tc.live, tc.desired); got != tc.want {
				t.Errorf("NeedsSlot(%+v, %+v) = %v, want %v", tc.live, tc.desired, got, tc.want)
			}
		})
	}
}

func TestSlotsCapTheRollouts(t *testing.T) {
	s := &Slots{}
	all := []Instance{{UID: "a"}, {UID: "b", RollingOut: true}, {UID: "c"}, {UID: "d"}}

	// b's status says it rolls out (a previous operator process gave it a slot).
	if others, ok := s.Take("a", all, 2); !ok || others != 1 {
		t.Fatalf("a: %d others, ok=%v; want a slot beside b", others, ok)
	}
	// a's status does not say so yet (the cache lags): this process remembers.
	if others, ok := s.Take("c", all, 2); ok || others != 2 {
		t.Fatalf("c: %d others, ok=%v; want to wait behind a and b", others, ok)
	}
	if !s.Holds(all[0]) || !s.Holds(all[1]) || s.Holds(all[2]) {
		t.Error("holders: want a and b only")
	}
	// Taking again what one holds changes nothing.
	if _, ok := s.Take("a", all, 2); !ok {
		t.Error("a lost its slot")
	}

	// b finishes; its status still says it rolls out until the cache catches up.
	s.Release("b")
	if s.Holds(all[1]) {
		t.Error("b holds a slot after releasing it")
	}
	if _, ok := s.Take("c", all, 2); !ok {
		t.Error("c waits although b released its slot")
	}
	if _, ok := s.Take("d", all, 2); ok {
		t.Error("d took a third slot")
	}
	if _, ok := s.Take("d", all, 0); !ok {
		t.Error("no cap (0) refused a slot")
	}

	// A deleted instance holds no slot.
	if _, ok := s.Take("d", []Instance{{UID: "c"}, {UID: "d"}}, 2); !ok {
		t.Error("d waits for instances that are gone")
	}
}

// Concurrent reconciles never hand out more slots than the cap.
func TestSlotsUnderConcurrentTakes(t *testing.T) {
	s := &Slots{}
	var all []Instance
	for _, uid := range []types.UID{"a", "b", "c", "d", "e", "f", "g", "h"} {
		all = append(all, Instance{UID: uid})
	}
	var wg sync.WaitGroup
	granted := make(chan types.UID, len(all))
	for _, inst := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok := s.Take(inst.UID, all, 3); ok {
				granted <- inst.UID
			}
		}()
	}
	wg.Wait()
	close(granted)
	if n := len(granted); n != 3 {
		t.Errorf("%d slots granted, cap 3", n)
	}
}
