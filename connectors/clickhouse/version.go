package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a ClickHouse server version, as SELECT version() reports it.
type Version struct {
	Major, Minor, Patch int
}

// ParseVersion parses "18.16.1", "24.8.4.13" or "23.3.1.2823-lts"; parts
// after the third are ignored.
func ParseVersion(s string) (Version, error) {
	core, _, _ := strings.Cut(strings.TrimSpace(s), "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR[.PATCH...]", s)
	}
	var nums [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return Version{}, fmt.Errorf("clickhouse version %q: part %q is not a number", s, parts[i])
		}
		nums[i] = n
	}
	return Version{nums[0], nums[1], nums[2]}, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// DateTime64 reports whether the server stores timestamps as
// DateTime64(6, 'UTC') and has toUnixTimestamp64Micro (20.5 and later).
// Older servers, such as Debian's 18.16, get Int64 microseconds instead.
func (v Version) DateTime64() bool { return v.AtLeast(20, 5) }

// Bool reports whether the server has the Bool type (21.12 and later); older
// servers store booleans as UInt8 0 or 1.
func (v Version) Bool() bool { return v.AtLeast(21, 12) }
