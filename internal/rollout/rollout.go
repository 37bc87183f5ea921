// Package rollout decides when an instance may roll its pods, so that a change reaching many
// instances at once (a new default release, a new operator with new pod templates) restarts and
// migrates only a few of them at a time, as Mattermost's operator limits the installations it
// reconciles at once.
package rollout

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Revisions identifies what an instance runs: the pod template hash of each of its workloads (""
// when the workload does not exist, or when a pass would leave it alone) and the Kinto release its
// database schema is at ("" before the first migration).
type Revisions struct {
	Server, Database, Version string
}

// NeedsSlot says whether going from live to desired rolls pods that run: a new template for a
// workload that exists, or a migration of the schema a running server uses (the migration Job is
// the first step of an upgrade, the server's rollout the second). Creating a workload is no
// rollout: a new instance never waits for a slot.
func NeedsSlot(live, desired Revisions) bool {
	changes := func(live, desired string) bool { return live != "" && desired != "" && live != desired }
	return changes(live.Server, desired.Server) ||
		changes(live.Database, desired.Database) ||
		live.Server != "" && changes(live.Version, desired.Version)
}

// Instance is what Slots needs to know of an instance: who it is, its namespace (its tenant's),
// and whether its status says it holds a slot.
type Instance struct {
	UID        types.UID
	Namespace  string
	RollingOut bool
}

// Limits bound the slots: Max in all, PerNamespace to the instances of one namespace, so that
// one tenant's rollouts never hold every slot. Zero or less: no bound.
type Limits struct {
	Max, PerNamespace int
}

// Held counts the slots other instances hold: in all, and in the namespace of the one asking.
type Held struct {
	All, Namespace int
}

// Full says which limit held leaves no slot under: "" when one is free.
func (h Held) Full(l Limits) string {
	switch {
	case l.Max > 0 && h.All >= l.Max:
		return "all"
	case l.PerNamespace > 0 && h.Namespace >= l.PerNamespace:
		return "namespace"
	}
	return ""
}

// Slots counts the instances rolling out. Each instance's status records whether it holds a slot,
// which outlives the operator's restarts; Slots also remembers what this process decided since,
// because the cache shows a status written a moment ago only when its watch event arrives: going
// by the cache alone, two passes in a row could both see the same free slot. Its methods may be
// called from concurrent reconciles.
type Slots struct {
	mu sync.Mutex
	// decided maps an instance to whether it holds a slot, as this process last decided.
	decided map[types.UID]bool
}

func (s *Slots) holdsLocked(inst Instance) bool {
	if held, ok := s.decided[inst.UID]; ok {
		return held
	}
	return inst.RollingOut
}

// Holds says whether the instance holds a slot.
func (s *Slots) Holds(inst Instance) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdsLocked(inst)
}

// Take gives self a slot when the others leave one free under limits, and says how many slots
// the others hold. all lists every instance the operator reconciles.
func (s *Slots) Take(self Instance, all []Instance, limits Limits) (held Held, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	listed := make(map[types.UID]bool, len(all))
	for _, inst := range all {
		listed[inst.UID] = true
		if inst.UID != self.UID && s.holdsLocked(inst) {
			held.All++
			if inst.Namespace == self.Namespace {
				held.Namespace++
			}
		}
	}
	// Instances deleted since hold nothing.
	for uid := range s.decided {
		if !listed[uid] && uid != self.UID {
			delete(s.decided, uid)
		}
	}
	if held.Full(limits) != "" {
		return held, false
	}
	if s.decided == nil {
		s.decided = map[types.UID]bool{}
	}
	s.decided[self.UID] = true
	return held, true
}

// Release gives the instance's slot back.
func (s *Slots) Release(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.decided == nil {
		s.decided = map[types.UID]bool{}
	}
	s.decided[uid] = false
}
