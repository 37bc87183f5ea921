package kintotest

import (
	"testing"
	"time"
)

// Eventually polls check every interval until it reports done, failing the test after timeout
// with the last state check described.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		done, state := check()
		if done {
			t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last state: %s", what, timeout, state)
		}
		time.Sleep(interval)
	}
}
