package dbtool

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// PasswordProblem says why password cannot be the database role's, "" if it can. The operator
// checks a password set by hand in the credentials Secret with it, and `db init` again before
// using one. A password is non-empty UTF-8 (the database's encoding) with no control character
// and no Unicode line or paragraph separator: none can be typed, and a newline is most often one
// `echo` left at the end by accident.
func PasswordProblem(password string) string {
	switch {
	case password == "":
		return "it is empty"
	case !utf8.ValidString(password):
		return "it is not valid UTF-8"
	}
	for i, r := range password {
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("it holds the control character %U at byte %d", r, i)
		case r == '\u2028' || r == '\u2029':
			return fmt.Sprintf("it holds the line or paragraph separator %U at byte %d", r, i)
		}
	}
	return ""
}
