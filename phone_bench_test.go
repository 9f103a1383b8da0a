package convo

import "testing"

// BenchmarkPhone: the phone check of a Sessions.Start, as the bench
// module's SessionStart writes the number, and as digits only.
func BenchmarkPhone(b *testing.B) {
	for _, in := range []string{"+55 27 99999-9999", "5527999999999"} {
		b.Run("in="+in, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				var ps problems
				if got := ps.phone("Phone", in, ""); got != "5527999999999" || ps != nil {
					b.Fatalf("%q: got %q, %v", in, got, ps)
				}
			}
		})
	}
}
