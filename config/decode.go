package config

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// decode unmarshals v, turning mapstructure's errors into ones that name the
// key and the offending value.
func decode(v *viper.Viper) (*Config, error) {
	var cfg Config
	err := v.Unmarshal(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook(), wholeNumberHook(), mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		return nil, describeDecodeError(v, err)
	}
	return &cfg, nil
}

// describeDecodeError rewrites every per-key failure as "key: value problem".
func describeDecodeError(v *viper.Viper, err error) error {
	leaves := leafDecodeErrors(err)
	if len(leaves) == 0 {
		return fmt.Errorf("decode config: %w", err)
	}
	errs := make([]error, 0, len(leaves))
	for _, de := range leaves {
		errs = append(errs, &KeyError{
			Key:     de.Name(),
			Value:   v.Get(de.Name()),
			Problem: typeProblem(de),
		})
	}
	return errors.Join(errs...)
}

// leafDecodeErrors returns the innermost DecodeErrors, which carry the full
// dotted key; the outer ones only name the section.
func leafDecodeErrors(err error) []*mapstructure.DecodeError {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []*mapstructure.DecodeError
		for _, inner := range e.Unwrap() {
			out = append(out, leafDecodeErrors(inner)...)
		}
		return out
	case *mapstructure.DecodeError:
		if inner := leafDecodeErrors(e.Unwrap()); len(inner) > 0 {
			return inner
		}
		return []*mapstructure.DecodeError{e}
	case interface{ Unwrap() error }:
		return leafDecodeErrors(e.Unwrap())
	}
	return nil
}

// typeProblem phrases a decode failure without mapstructure's Go type jargon
// where it can.
func typeProblem(de *mapstructure.DecodeError) string {
	var hookErr *hookError
	if errors.As(de, &hookErr) {
		return hookErr.msg
	}
	var pe *mapstructure.ParseError
	if errors.As(de, &pe) {
		return "is not a valid " + kindName(pe.Expected.Type())
	}
	var ue *mapstructure.UnconvertibleTypeError
	if errors.As(de, &ue) {
		return "is not a valid " + kindName(ue.Expected.Type())
	}
	return "is invalid: " + de.Unwrap().Error()
}

// kindName names the expected type the way a config file author thinks of it.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean (true or false)"
	default:
		return t.String()
	}
}
