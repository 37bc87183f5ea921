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

var capOf2 = Limits{Max: 2}

func TestSlotsCapTheRollouts(t *testing.T) {
	s := &Slots{}
	all := []Instance{{UID: "a"}, {UID: "b", RollingOut: true}, {UID: "c"}, {UID: "d"}}

	// b's status says it rolls out (a previous operator process gave it a slot).
	if held, ok := s.Take(all[0], all, capOf2); !ok || held.All != 1 {
		t.Fatalf("a: %+v held by others, ok=%v; want a slot beside b", held, ok)
	}
	// a's status does not say so yet (the cache lags): this process remembers.
	if held, ok := s.Take(all[2], all, capOf2); ok || held.All != 2 {
		t.Fatalf("c: %+v held by others, ok=%v; want to wait behind a and b", held, ok)
	}
	if !s.Holds(all[0]) || !s.Holds(all[1]) || s.Holds(all[2]) {
		t.Error("holders: want a and b only")
	}
	// Taking again what one holds changes nothing.
	if _, ok := s.Take(all[0], all, capOf2); !ok {
		t.Error("a lost its slot")
	}

	// b finishes; its status still says it rolls out until the cache catches up.
	s.Release("b")
	if s.Holds(all[1]) {
		t.Error("b holds a slot after releasing it")
	}
	if _, ok := s.Take(all[2], all, capOf2); !ok {
		t.Error("c waits although b released its slot")
	}
	if _, ok := s.Take(all[3], all, capOf2); ok {
		t.Error("d took a third slot")
	}
	if _, ok := s.Take(all[3], all, Limits{}); !ok {
		t.Error("no cap (0) refused a slot")
	}

	// A deleted instance holds no slot.
	if _, ok := s.Take(all[3], []Instance{{UID: "c"}, {UID: "d"}}, capOf2); !ok {
		t.Error("d waits for instances that are gone")
	}
}

// One namespace holds at most its share of the slots; the others stay free for other tenants.
func TestSlotsPerNamespace(t *testing.T) {
	s := &Slots{}
	limits := Limits{Max: 3, PerNamespace: 2}
	all := []Instance{{UID: "a1", Namespace: "a"}, {UID: "a2", Namespace: "a"}, {UID: "a3", Namespace: "a"}, {UID: "b1", Namespace: "b"}, {UID: "c1", Namespace: "c"}}
	for _, inst := range all[:2] {
		if _, ok := s.Take(inst, all, limits); !ok {
			t.Fatalf("%s waits with a free slot in its namespace's share", inst.UID)
		}
	}
	held, ok := s.Take(all[2], all, limits)
	if ok || held != (Held{All: 2, Namespace: 2}) || held.Full(limits) != "namespace" {
		t.Fatalf("a3: %+v held, ok=%v; want to wait for its namespace's share", held, ok)
	}
	if _, ok := s.Take(all[3], all, limits); !ok {
		t.Fatal("b1 waits although a holds only its share")
	}
	if held, ok := s.Take(all[4], all, limits); ok || held.Full(limits) != "all" {
		t.Fatalf("c1: %+v held, ok=%v; want to wait for the cap", held, ok)
	}
	s.Release("a1")
	if _, ok := s.Take(all[2], all, limits); !ok {
		t.Error("a3 waits although a1 gave its slot back")
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
			if _, ok := s.Take(inst, all, Limits{Max: 3}); ok {
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
