package convo

import "time"

// UnixMillis is a TalkJS timestamp: milliseconds since the Unix epoch, as
// the API sends and takes them. Zero means "not set" (a JSON null decodes
// to zero).
type UnixMillis int64

// Time converts m to a time.Time; zero gives the zero time.Time.
func (m UnixMillis) Time() time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m))
}

// IsZero reports whether m is unset.
func (m UnixMillis) IsZero() bool { return m == 0 }

// UnixMillisOf converts t to UnixMillis; the zero time gives zero.
func UnixMillisOf(t time.Time) UnixMillis {
	if t.IsZero() {
		return 0
	}
	return UnixMillis(t.UnixMilli())
}
