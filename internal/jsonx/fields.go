package jsonx

import (
	"fmt"
	"slices"
	"strings"
)

// Struct fields. A hand-written decoder of a struct reads each member with
// these so that it fills the struct as json.Unmarshal does without it:
// keys matched as encoding/json matches them, null leaving a string,
// number or bool as it was, arrays filling a slice in place.

// ReadFields reads an object into a struct's fields: for each member it
// calls field with the name among names its key selects (FieldName; ""
// for an unknown key, whose value field must Skip), and an error of a
// named field says which. null is an object without members, as
// json.Unmarshal takes it.
func (d *Decoder) ReadFields(names []string, field func(name string) error) error {
	if d.ReadNull() {
		return nil
	}
	return d.ReadObject(func(key []byte) error {
		name := FieldName(key, names)
		err := field(name)
		if err != nil && name != "" {
			return fmt.Errorf("%s: %w", name, err)
		}
		return err
	})
}

// FieldName returns the name among names that key selects, as
// encoding/json matches keys to fields: exactly or, failing that, ignoring
// case (Unicode simple folding). It returns "" for an unknown key.
func FieldName(key []byte, names []string) string {
	for _, name := range names {
		if string(key) == name {
			return name
		}
	}
	for _, name := range names {
		if strings.EqualFold(string(key), name) {
			return name
		}
	}
	return ""
}

// ReadInto stores what read reads in *dst; null leaves *dst as it was, as
// encoding/json does for a string, number or bool field.
func ReadInto[T any](d *Decoder, dst *T, read func() (T, error)) error {
	if d.ReadNull() {
		return nil
	}
	v, err := read()
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// ReadStrings reads an array of strings into *dst as encoding/json fills
// a slice: over its elements (a null element keeps the one there), cut to
// the array's length, empty but not nil for []; null sets *dst to nil.
func (d *Decoder) ReadStrings(dst *[]string) error {
	if d.ReadNull() {
		*dst = nil
		return nil
	}
	s, i := *dst, 0
	err := d.ReadArray(func() error {
		if i >= cap(s) {
			s = slices.Grow(s, 1)
		}
		if i >= len(s) {
			s = s[:i+1]
		}
		i++
		return ReadInto(d, &s[i-1], d.ReadString)
	})
	if err != nil {
		return err
	}
	if i == 0 {
		s = []string{}
	}
	*dst = s[:i]
	return nil
}
