package train

import (
	"errors"
	"fmt"
	"regexp"
)

// FieldError is an error about settings of a Config. Its message names
// them as {Field} tokens, the Go names of Config's fields ({BatchSize},
// {Augment.Crop}): Error writes those names, and Named the caller's own
// names for them, such as a command's flags, so that this package knows
// nothing of a command line.
type FieldError struct {
	msg string
	err error
}

// fieldErrorf formats an error whose message may hold {Field} tokens; a
// %w verb wraps its argument as fmt.Errorf does.
func fieldErrorf(format string, args ...any) error {
	e := fmt.Errorf(format, args...)
	return &FieldError{msg: e.Error(), err: errors.Unwrap(e)}
}

func (e *FieldError) Error() string { return Named(e.msg, nil) }

// Unwrap returns the error that the message wraps, if any.
func (e *FieldError) Unwrap() error { return e.err }

// Named writes the message with each field named by name.
func (e *FieldError) Named(name func(field string) string) string { return Named(e.msg, name) }

var fieldToken = regexp.MustCompile(`\{([A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]*)?)\}`)

// Named replaces the {Field} tokens of s, a FieldError's message or a
// Start note, by name(field), or by the field's Go name where name is nil
// or returns "".
func Named(s string, name func(field string) string) string {
	return fieldToken.ReplaceAllStringFunc(s, func(tok string) string {
		field := tok[1 : len(tok)-1]
		if name != nil {
			if n := name(field); n != "" {
				return n
			}
		}
		return field
	})
}
