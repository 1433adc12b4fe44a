package featurestore

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "15m", want: 15 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "0.5s", want: 500 * time.Millisecond},
		{in: " 7d ", want: 7 * 24 * time.Hour},
		{in: "0", want: 0},
		{in: "", wantErr: "empty duration (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)"},
		{in: "500ms", wantErr: `invalid duration "500ms": unknown unit "ms" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "1y", wantErr: `invalid duration "1y": unknown unit "y" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "10", wantErr: `invalid duration "10": "10" has no unit (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "h", wantErr: `invalid duration "h" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "1h30", wantErr: `invalid duration "1h30": "30" has no unit (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "-1h", wantErr: `negative duration "-1h" (durations are positive: use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "1.2.3s", wantErr: `invalid duration "1.2.3s": invalid number "1.2.3" (use a number and a unit s, m, h, d or w, such as 90s, 15m, 1h, 30d or 1h30m)`},
		{in: "99999999w", wantErr: `invalid duration "99999999w": out of range`},
		{in: "15000w15000w", wantErr: `invalid duration "15000w15000w": out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseDuration(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{24 * time.Hour, "24h"},
		{48 * time.Hour, "48h"},
		{7 * 24 * time.Hour, "7d"},
		{30 * 24 * time.Hour, "30d"},
		{25*time.Hour + 30*time.Minute, "25h30m"},
		{500 * time.Millisecond, "500ms"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.in%time.Second != 0 {
			continue
		}
		back, err := ParseDuration(FormatDuration(tt.in))
		if err != nil || back != tt.in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tt.in, back, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90s", "1h30m", "1.5h", "2w", "-1h", "1.2.3s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		if d%time.Second == 0 {
			back, err := ParseDuration(FormatDuration(d))
			if err != nil || back != d {
				t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, d, FormatDuration(d), back, err)
			}
		}
	})
}
