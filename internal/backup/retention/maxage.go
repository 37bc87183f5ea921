package retention

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// maxAgeForm is the API's form of spec.backup.retention.maxAge ("72h", "30d", "8w"), which the
// operator passes on as it is; Go durations ("36h30m") are accepted too.
var maxAgeForm = regexp.MustCompile(`^([1-9][0-9]*)(h|d|w)$`)

var maxAgeUnits = map[string]time.Duration{"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}

// ParseMaxAge reads a retention age (spec.backup.retention.maxAge); "" is no age limit.
func ParseMaxAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if m := maxAgeForm.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		unit := maxAgeUnits[m[2]]
		if err != nil || n > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("%s is too long an age", s)
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive age such as 72h, 30d or 8w")
	}
	return d, nil
}
