package dbtool

import (
	"strings"
	"testing"
)

func TestPasswordProblem(t *testing.T) {
	for _, pw := range []string{
		"ABCdef0123456789", `it's; a "test"`, "a\\b", "$$ end $$", "pässwörd ☃ 密码", "two  spaces", " leading",
	} {
		if problem := PasswordProblem(pw); problem != "" {
			t.Errorf("PasswordProblem(%q) = %q, want none", pw, problem)
		}
	}
	for pw, want := range map[string]string{
		"":              "empty",
		"abc\n":         "U+000A at byte 3",
		"a\x00b":        "U+0000",
		"tab\there":     "U+0009",
		"vt\vhere":      "U+000B",
		"del\x7f":       "U+007F",
		"nel\u0085":     "U+0085",
		"line\u2028sep": "U+2028",
		"para\u2029sep": "U+2029",
		"bad\xffutf8":   "not valid UTF-8",
		"cr\r\nnewline": "U+000D",
	} {
		if problem := PasswordProblem(pw); !strings.Contains(problem, want) {
			t.Errorf("PasswordProblem(%q) = %q, want it to say %q", pw, problem, want)
		}
	}
}
