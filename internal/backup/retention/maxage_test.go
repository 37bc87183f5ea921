package retention

import (
	"testing"
	"time"
)

func TestParseMaxAge(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "", want: 0},
		{in: "72h", want: 72 * time.Hour},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "8w", want: 8 * 7 * 24 * time.Hour},
		{in: "99999w", wantErr: true}, // beyond time.Duration
		{in: "36h30m", want: 36*time.Hour + 30*time.Minute},
		{in: "0d", wantErr: true},
		{in: "-3h", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "30 days", wantErr: true},
		{in: "d", wantErr: true},
	}
	for _, c := range cases {
		got, err := ParseMaxAge(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseMaxAge(%q) = %s, %v; want %s, error %t", c.in, got, err, c.want, c.wantErr)
		}
	}
}
