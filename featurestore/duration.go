package featurestore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// durationUnits are the units of the feature repository format.
var durationUnits = map[string]time.Duration{
	"s": time.Second,
	"m": time.Minute,
	"h": time.Hour,
	"d": day,
	"w": 7 * day,
}

const durationHint = "use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m"

// ParseDuration parses a duration of the feature repository format: one or
// more numbers, each followed by a unit s, m, h, d (24 hours) or w (7 days),
// such as "90s", "1h", "30d", "2w", "1h30m" or "1.5h". Durations are never
// negative; units below a second are not part of the format.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, fmt.Errorf("empty duration (%s)", durationHint)
	case s[0] == '-':
		return 0, fmt.Errorf("negative duration %q (durations are positive: %s)", orig, durationHint)
	case s == "0":
		return 0, nil
	}
	var total time.Duration
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i < 0 {
			return 0, fmt.Errorf("invalid duration %q: %q has no unit (%s)", orig, s, durationHint)
		}
		num := s[:i]
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return (r >= '0' && r <= '9') || r == '.' })
		if j < 0 {
			j = len(s)
		}
		unit := s[:j]
		s = s[j:]
		if num == "" {
			return 0, fmt.Errorf("invalid duration %q (%s)", orig, durationHint)
		}
		u, ok := durationUnits[unit]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (%s)", orig, unit, durationHint)
		}
		d, err := scaleDuration(num, u)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", orig, err)
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("invalid duration %q: out of range", orig)
		}
		total += d
	}
	return total, nil
}

// scaleDuration returns num (decimal, optionally with a fraction) units.
func scaleDuration(num string, unit time.Duration) (time.Duration, error) {
	whole, frac, hasFrac := strings.Cut(num, ".")
	if strings.Contains(frac, ".") || (whole == "" && frac == "") {
		return 0, fmt.Errorf("invalid number %q (%s)", num, durationHint)
	}
	var d time.Duration
	if whole != "" {
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/int64(unit) {
			return 0, errors.New("out of range")
		}
		d = time.Duration(w) * unit
	}
	if hasFrac && frac != "" {
		f, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid number %q", num)
		}
		d += time.Duration(math.Round(f * float64(unit)))
	}
	return d, nil
}

// FormatDuration renders d in the feature repository format: whole days
// from 3 days up ("7d", "30d"), else hours, minutes and seconds ("24h",
// "1h30m", "90s" as "1m30s"). Durations that are not whole seconds fall
// back to Go's notation.
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < 0 || d%time.Second != 0:
		return d.String()
	case d%day == 0 && d >= 3*day:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.d
		}
	}
	return b.String()
}
