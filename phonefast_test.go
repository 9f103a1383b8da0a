package convo

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// phoneExamples gives libphonenumber's example numbers, as the digits
// after '+': every type of every region, and every non-geographical
// calling code's.
func phoneExamples(tb testing.TB) []string {
	tb.Helper()
	var regions []string
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	var out []string
	add := func(n *phonenumbers.PhoneNumber) {
		if n != nil {
			out = append(out, phonenumbers.Format(n, phonenumbers.E164)[1:])
		}
	}
	for _, r := range regions {
		for t := phonenumbers.FIXED_LINE; t <= phonenumbers.UNKNOWN; t++ {
			add(phonenumbers.GetExampleNumberForType(r, t))
		}
	}
	var nonGeo []int
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		nonGeo = append(nonGeo, cc)
	}
	sort.Ints(nonGeo)
	for _, cc := range nonGeo {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	require.Greater(tb, len(out), 1000, "libphonenumber's examples")
	return out
}

// mutations gives d changed as a typo changes it: the last digit dropped,
// a digit added at the end or right after the country code (where a
// national prefix or a leading zero goes), and a digit replaced by each
// of 0-9 at the start, the middle and the end of the national number.
func mutations(d string, ccLen int) []string {
	var out []string
	if len(d) > 1 {
		out = append(out, d[:len(d)-1])
	}
	for c := byte('0'); c <= '9'; c++ {
		out = append(out, d+string(c), d[:ccLen]+string(c)+d[ccLen:])
		for _, i := range []int{ccLen, ccLen + 1, (ccLen + len(d)) / 2, len(d) - 1} {
			if i < len(d) {
				b := []byte(d)
				b[i] = c
				out = append(out, string(b))
			}
		}
	}
	return out
}

// phoneAgreement compares internationalPhone with the library's reading
// of each of ds and counts the numbers the fast path decided, valid and
// not.
type phoneAgreement struct {
	fastValid, fastInvalid, slow int
}

func (a *phoneAgreement) check(t *testing.T, ds ...string) {
	t.Helper()
	for _, d := range ds {
		wantN, wantCC, wantOK := internationalPhoneLib(d)
		gotN, gotCC, gotOK := internationalPhone(d)
		if gotN != wantN || gotCC != wantCC || gotOK != wantOK {
			t.Errorf("internationalPhone(%q) = %q, %d, %v; libphonenumber: %q, %d, %v", d, gotN, gotCC, gotOK, wantN, wantCC, wantOK)
		}
		switch _, _, ok, sure := internationalPhoneFast(d); {
		case !sure:
			a.slow++
		case ok:
			a.fastValid++
		default:
			a.fastInvalid++
		}
	}
}

// The fast path reads every example number, its typos and random digits
// of every calling code exactly as libphonenumber does.
func TestInternationalPhoneAgrees(t *testing.T) {
	// The race detector makes the library some twenty times slower: a
	// race build (whose concurrency TestInternationalPhoneConcurrent
	// checks) and -short read a sample.
	step, perCode := 1, 300
	if testing.Short() || RaceEnabled {
		step, perCode = 7, 20
	}
	var a phoneAgreement
	for i, d := range phoneExamples(t) {
		a.check(t, d)
		if i%step == 0 {
			n, err := phonenumbers.Parse("+"+d, "")
			require.NoError(t, err, d)
			a.check(t, mutations(d, len(strconv.Itoa(int(n.GetCountryCode()))))...)
		}
	}
	t.Logf("examples and typos: %d valid and %d invalid by the fast path, %d by the library", a.fastValid, a.fastInvalid, a.slow)
	// Most numbers take the fast path, and it both accepts and refuses.
	assert.Greater(t, a.fastValid, 3*a.slow, "valid numbers on the fast path")
	assert.Greater(t, a.fastInvalid, 3*a.slow, "invalid numbers on the fast path")

	var codes []int
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		codes = append(codes, cc)
	}
	sort.Ints(codes)
	rnd := rand.New(rand.NewPCG(22, 2026))
	random := func(prefix string) string {
		n := 8 + rnd.IntN(8) // 8 to 15 digits
		b := []byte(prefix)
		for len(b) < n {
			b = append(b, byte('0'+rnd.IntN(10)))
		}
		return string(b[:n])
	}
	for _, cc := range codes {
		for range perCode {
			a.check(t, random(strconv.Itoa(cc)))
		}
	}
	for range 20 * perCode {
		a.check(t, random(strconv.Itoa(1+rnd.IntN(9))))
	}
	t.Logf("all: %d valid and %d invalid by the fast path, %d by the library", a.fastValid, a.fastInvalid, a.slow)
}

// FuzzInternationalPhoneAgrees: for any digits, internationalPhone gives
// what libphonenumber gives.
func FuzzInternationalPhoneAgrees(f *testing.F) {
	for _, d := range []string{"5527999999999", "14155550100", "442079460958", "390612345678", "79123456789",
		"78123456789", "5491112345678", "80012345678", "8821234567890", "12425550100", "4407400123456",
		"112684601234", "4402079460958", "3906123456789", "7812345678"} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, in string) {
		// Digits only, as phone passes them on: each byte is one digit
		// (a digit stays itself).
		b := []byte(in)
		if len(b) > 20 {
			b = b[:20]
		}
		for i, c := range b {
			if c < '0' || c > '9' {
				b[i] = '0' + c%10
			}
		}
		d := string(b)
		wantN, wantCC, wantOK := internationalPhoneLib(d)
		gotN, gotCC, gotOK := internationalPhone(d)
		if gotN != wantN || gotCC != wantCC || gotOK != wantOK {
			t.Fatalf("internationalPhone(%q) = %q, %d, %v; libphonenumber: %q, %d, %v", d, gotN, gotCC, gotOK, wantN, wantCC, wantOK)
		}
	})
}

// A valid number costs the phone check no allocation when it is written
// as digits, and one (the digits) when it is written with punctuation.
func TestPhoneAllocations(t *testing.T) {
	for in, want := range map[string]float64{"5527999999999": 0, "+55 27 99999-9999": 1, "+1 415 555 0100": 1, "447400123456": 0} {
		var got string
		allocs := testing.AllocsPerRun(100, func() {
			var ps problems
			got = ps.phone("Phone", in, "")
		})
		_, _, ok, sure := internationalPhoneFast(got)
		require.True(t, ok && sure, "%q read by the fast path", in)
		if !RaceEnabled { // the race detector makes sync.Pool drop regexp's matchers
			assert.LessOrEqual(t, allocs, want, "allocations checking %q", in)
		}
	}
}

// Goroutines reading numbers of the same calling codes at once compile
// each code's patterns once and agree with the library (run with -race).
func TestInternationalPhoneConcurrent(t *testing.T) {
	examples := phoneExamples(t)
	errs := make(chan string, 4)
	for g := range 4 {
		go func() {
			bad := ""
			for i := g; i < len(examples); i += 2 { // each number read by two goroutines
				d := examples[i]
				wantN, wantCC, wantOK := internationalPhoneLib(d)
				if n, cc, ok := internationalPhone(d); n != wantN || cc != wantCC || ok != wantOK {
					bad = d
				}
			}
			errs <- bad
		}()
	}
	for range 4 {
		assert.Empty(t, <-errs, "a number read otherwise than by libphonenumber")
	}
}

// For a calling code shared by several regions (+1, +7, +44, …), the fast
// path picks the region libphonenumber's GetRegionCodeForNumber picks: by
// leading digits where a region has them, else by full validation, in the
// library's order; for invalid numbers too (then a region chosen by its
// leading digits, not none).
func TestPhoneRegionOfSharedCodes(t *testing.T) {
	phoneMeta.once.Do(loadPhoneMeta)
	require.True(t, phoneMeta.loaded)
	shared, byLeading := 0, 0
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		regions := phonenumbers.GetRegionCodesForCountryCode(cc)
		if len(regions) < 2 {
			continue
		}
		shared++
		c := phoneMeta.codes[cc]
		require.NotNil(t, c, "+%d", cc)
		c.once.Do(c.compile)
		require.True(t, c.compiled, "+%d", cc)
		var nsns []string
		for _, region := range regions {
			for typ := phonenumbers.FIXED_LINE; typ <= phonenumbers.VOICEMAIL; typ++ {
				n := phonenumbers.GetExampleNumberForType(region, typ)
				if n == nil {
					continue
				}
				nsn := phonenumbers.GetNationalSignificantNumber(n)
				// The example, and the same with its last digits changed
				// (often invalid, still starting with the region's digits).
				nsns = append(nsns, nsn, nsn[:len(nsn)-2]+"00", nsn[:len(nsn)-2]+"99", nsn+"1")
			}
		}
		for _, nsn := range nsns {
			if nsn[0] == '0' {
				continue
			}
			nn, err := strconv.ParseUint(nsn, 10, 64)
			require.NoError(t, err)
			cc32 := int32(cc)
			want := phonenumbers.GetRegionCodeForNumber(&phonenumbers.PhoneNumber{CountryCode: &cc32, NationalNumber: &nn})
			r, sure := c.region(nsn)
			require.True(t, sure, "+%d %s", cc, nsn)
			got := ""
			if r != nil {
				got = r.md.GetId()
				if r.leading != nil {
					byLeading++
				}
			}
			assert.Equal(t, want, got, "+%d %s", cc, nsn)
		}
	}
	assert.Positive(t, shared, "no shared calling code in the metadata")
	assert.Positive(t, byLeading, "no region chosen by its leading digits: the branch is not tested")
}
