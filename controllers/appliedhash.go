package controllers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// appliedHash is the hash of the configuration apply sends for obj: its JSON as an unstructured
// object (every object's keys in order, as encoding/json writes a map), without what a typed
// object carries and apply does not send (status, resource version, creation timestamps). Its
// form must not change: a child whose hash no longer matches is applied again, and a Secret's
// new resource version rolls the pods that mount it. It is made from the typed JSON, with the
// keys sorted, rather than by converting obj to a map and encoding that, which took most of the
// CPU of creating a child (TestAppliedHashIsOfTheUnstructuredForm holds the two the same).
func appliedHash(obj client.Object) (string, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	s := sorters.Get().(*jsonSorter)
	defer sorters.Put(s)
	// Empty, unless the sorter's last value was malformed.
	s.members, s.written = s.members[:0], s.written[:0]
	sorted, rest, err := s.sorted(s.out[:0], raw, notApplied)
	if err == nil && len(rest) != 0 {
		err = errors.New("more after the object")
	}
	if err != nil {
		return "", err
	}
	s.out = sorted
	sum := sha256.Sum256(sorted)
	return hex.EncodeToString(sum[:16]), nil
}

// fields names members of JSON objects, by key: a member whose value is nil is left out, one
// whose value is a fields is kept without the members that names.
type fields map[string]fields

// notApplied is what a typed object holds that apply leaves out of what it sends.
var notApplied = fields{
	"status":   nil,
	"metadata": {"resourceVersion": nil, "creationTimestamp": nil},
	"spec":     {"template": {"metadata": {"creationTimestamp": nil}}},
}

var errMalformed = errors.New("malformed JSON")

// jsonSorter sorts the members of JSON objects (sorted). Its slices are reused from one value
// to the next: a fleet's children are hashed by the thousand.
type jsonSorter struct {
	out []byte
	// members and written are stacks: an object's own are above those of the objects that
	// hold it.
	members []member
	written []byte
}

// member is one member of an object, `"key":value`, at start:end of the object's written members.
type member struct {
	key        []byte // unquoted, as encoding/json sorts a map's keys
	start, end int
}

var sorters = sync.Pool{New: func() any { return &jsonSorter{} }}

// sorted appends to dst the JSON value src starts with, compact as encoding/json writes it,
// with each object's members in the order of their keys and without the members drop names, and
// returns what follows the value in src.
func (s *jsonSorter) sorted(dst, src []byte, drop fields) ([]byte, []byte, error) {
	if len(src) == 0 {
		return nil, nil, errMalformed
	}
	switch src[0] {
	case '{':
		return s.sortedObject(dst, src, drop)
	case '[':
		dst, src = append(dst, '['), src[1:]
		if len(src) > 0 && src[0] == ']' {
			return append(dst, ']'), src[1:], nil
		}
		for {
			var err error
			if dst, src, err = s.sorted(dst, src, nil); err != nil {
				return nil, nil, err
			}
			if len(src) == 0 {
				return nil, nil, errMalformed
			}
			next := src[0]
			dst, src = append(dst, next), src[1:]
			switch next {
			case ']':
				return dst, src, nil
			case ',':
			default:
				return nil, nil, errMalformed
			}
		}
	case '"':
		n, err := stringLength(src)
		if err != nil {
			return nil, nil, err
		}
		return append(dst, src[:n]...), src[n:], nil
	default: // a number, true, false or null
		n := bytes.IndexAny(src, ",]}")
		if n < 0 {
			n = len(src)
		}
		return append(dst, src[:n]...), src[n:], nil
	}
}

// sortedObject is sorted for an object: its members are written one after the other, each
// sorted, then moved aside and written again in the order of their keys.
func (s *jsonSorter) sortedObject(dst, src []byte, drop fields) ([]byte, []byte, error) {
	src = src[1:]
	if len(src) > 0 && src[0] == '}' {
		return append(dst, '{', '}'), src[1:], nil
	}
	start, base := len(dst), len(s.members)
	for {
		n, err := stringLength(src)
		if err != nil {
			return nil, nil, err
		}
		quoted := src[:n]
		key := quoted[1 : n-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var unquoted string
			if err := json.Unmarshal(quoted, &unquoted); err != nil {
				return nil, nil, err
			}
			key = []byte(unquoted)
		}
		src = src[n:]
		if len(src) == 0 || src[0] != ':' {
			return nil, nil, errMalformed
		}
		within, named := drop[string(key)]
		at := len(dst)
		dst = append(append(dst, quoted...), ':')
		if dst, src, err = s.sorted(dst, src[1:], within); err != nil {
			return nil, nil, err
		}
		if named && within == nil {
			dst = dst[:at]
		} else {
			s.members = append(s.members, member{key: key, start: at - start, end: len(dst) - start})
		}
		if len(src) == 0 {
			return nil, nil, errMalformed
		}
		next := src[0]
		src = src[1:]
		if next == '}' {
			break
		}
		if next != ',' {
			return nil, nil, errMalformed
		}
	}
	members := s.members[base:]
	slices.SortFunc(members, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	aside := len(s.written)
	s.written = append(s.written, dst[start:]...)
	written := s.written[aside:]
	dst = append(dst[:start], '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, written[m.start:m.end]...)
	}
	s.members, s.written = s.members[:base], s.written[:aside]
	return append(dst, '}'), src, nil
}

// stringLength is the length of the JSON string src starts with, quotes included.
func stringLength(src []byte) (int, error) {
	if len(src) == 0 || src[0] != '"' {
		return 0, errMalformed
	}
	for i := 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errMalformed
}
