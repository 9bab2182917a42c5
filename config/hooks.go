package config

import (
	"math"
	"reflect"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// hookError is a decode failure whose message is already written for a
// config file author.
type hookError struct{ msg string }

func (e *hookError) Error() string { return e.msg }

// durationHook parses "90s"-style strings into time.Duration. A bare number
// is refused rather than read as nanoseconds, which is never what was meant.
func durationHook() mapstructure.DecodeHookFuncType {
	durationType := reflect.TypeFor[time.Duration]()
	return func(from, to reflect.Type, data any) (any, error) {
		if to != durationType || from == durationType {
			return data, nil
		}
		switch from.Kind() {
		case reflect.String:
			d, err := time.ParseDuration(data.(string))
			if err != nil {
				return nil, &hookError{msg: `is not a duration like "90s" or "10m"`}
			}
			return d, nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
			return nil, &hookError{msg: `needs a unit, e.g. "90s" or "10m"`}
		}
		return data, nil
	}
}

// wholeNumberHook refuses fractions for integer keys; mapstructure would
// silently truncate 1.5 to 1.
func wholeNumberHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if from.Kind() != reflect.Float64 && from.Kind() != reflect.Float32 {
			return data, nil
		}
		switch to.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		default:
			return data, nil
		}
		f := reflect.ValueOf(data).Float()
		if f != math.Trunc(f) {
			return nil, &hookError{msg: "is not a whole number"}
		}
		return data, nil
	}
}
