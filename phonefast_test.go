package convo

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
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

// phoneRegions gives libphonenumber's supported regions, sorted.
func phoneRegions(tb testing.TB) []string {
	tb.Helper()
	var regions []string
	for r := range phonenumbers.GetSupportedRegions() {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	require.Greater(tb, len(regions), 200, "libphonenumber's regions")
	return regions
}

// nationalAgreement compares nationalPhone with the library's reading of
// numbers dialled in a region and counts the numbers the fast path
// decided, and, of those the library finds valid, how many it decided.
type nationalAgreement struct {
	fast, slow           int
	validFast, validSlow int
	errors               int
}

func (a *nationalAgreement) check(t *testing.T, region string, ds ...string) {
	t.Helper()
	for _, d := range ds {
		wantN, wantOK := e164Only(nationalPhoneLib(d, region))
		gotN, gotOK := nationalPhone(d, region)
		if gotN != wantN || gotOK != wantOK {
			a.errors++
			t.Errorf("nationalPhone(%q, %s) = %q, %v; libphonenumber: %q, %v", d, region, gotN, gotOK, wantN, wantOK)
		}
		_, _, sure := nationalPhoneFast(d, region)
		switch {
		case sure && wantOK:
			a.fast++
			a.validFast++
		case sure:
			a.fast++
		case wantOK:
			a.slow++
			a.validSlow++
		default:
			a.slow++
		}
	}
}

// The fast path reads every example number of every region, written as
// its national significant number, with the national prefix, with the
// region's calling code, their typos and random digits, exactly as
// libphonenumber does when the region is the default.
func TestNationalPhoneAgrees(t *testing.T) {
	// As in TestInternationalPhoneAgrees: a sample under -race and -short.
	step, perRegion := 1, 300
	if testing.Short() || RaceEnabled {
		step, perRegion = 7, 20
	}
	regions := phoneRegions(t)
	phoneMeta.once.Do(loadPhoneMeta)
	require.True(t, phoneMeta.loaded)
	var a, examples nationalAgreement
	i := 0
	for _, region := range regions {
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		// The international prefix the region dials, when it has one
		// (a number dialled abroad and back: +cc by way of the prefix).
		idd := ""
		if r := phoneMeta.regions[region]; r != nil {
			idd = strings.ReplaceAll(r.md.GetPreferredInternationalPrefix(), "~", "")
			if p := r.md.GetInternationalPrefix(); idd == "" && digitsOnly(p) {
				idd = p
			}
		}
		for typ := phonenumbers.FIXED_LINE; typ <= phonenumbers.UNKNOWN; typ++ {
			n := phonenumbers.GetExampleNumberForType(region, typ)
			if n == nil {
				continue
			}
			nsn := phonenumbers.GetNationalSignificantNumber(n)
			examples.check(t, region, nsn)
			a.check(t, region, nsn, cc+nsn)
			if ndd != "" {
				a.check(t, region, ndd+nsn)
			}
			if idd != "" {
				a.check(t, region, idd+cc+nsn)
			}
			if i++; i%step == 0 {
				a.check(t, region, mutations(nsn, 0)...)
				a.check(t, region, mutations(cc+nsn, len(cc))...)
				if ndd != "" {
					a.check(t, region, mutations(ndd+nsn, len(ndd))...)
				}
			}
		}
	}
	t.Logf("examples: %d by the fast path (%d valid), %d by the library (%d valid)", examples.fast, examples.validFast, examples.slow, examples.validSlow)
	t.Logf("examples' variants and typos: %d by the fast path (%d valid), %d by the library (%d valid)", a.fast, a.validFast, a.slow, a.validSlow)
	// The fast path decides most valid national numbers (the numbers with
	// a national prefix or the calling code in front go to the library).
	assert.Greater(t, examples.validFast, 4*examples.validSlow, "valid national numbers on the fast path")

	rnd := rand.New(rand.NewPCG(22, 2027))
	var r nationalAgreement
	for _, region := range regions {
		for range perRegion {
			b := make([]byte, 6+rnd.IntN(9)) // 6 to 14 digits
			for j := range b {
				b[j] = byte('0' + rnd.IntN(10))
			}
			r.check(t, region, string(b))
		}
	}
	t.Logf("random digits: %d by the fast path (%d valid), %d by the library (%d valid)", r.fast, r.validFast, r.slow, r.validSlow)
	// It refuses most invalid numbers itself.
	assert.Greater(t, r.fast-r.validFast, 3*(r.slow-r.validSlow), "invalid numbers on the fast path")
	t.Logf("mismatches: %d", examples.errors+a.errors+r.errors)
}

// FuzzNationalPhoneAgrees: for any region and any digits, nationalPhone
// gives what libphonenumber gives.
func FuzzNationalPhoneAgrees(f *testing.F) {
	regions := phoneRegions(f)
	index := func(region string) uint16 { return uint16(sort.SearchStrings(regions, region)) }
	for _, s := range []struct{ region, d string }{
		{"BR", "27999999999"}, {"BR", "027999999999"}, {"BR", "5527999999999"}, {"BR", "0212799999999"},
		{"US", "4155550100"}, {"US", "14155550100"}, {"US", "0114155550100"}, {"CA", "4165550123"},
		{"GB", "2079460958"}, {"GB", "02079460958"}, {"IT", "0612345678"}, {"IT", "312345678"},
		{"AR", "91112345678"}, {"MX", "5512345678"}, {"KZ", "7012345678"}, {"RU", "9123456789"},
		{"DE", "15123456789"}, {"IN", "9876543210"}, {"AU", "412345678"}, {"JP", "0312345678"},
	} {
		f.Add(index(s.region), s.d)
	}
	f.Fuzz(func(t *testing.T, i uint16, in string) {
		region := regions[int(i)%len(regions)]
		b := []byte(in) // digits only, as phone passes them on
		if len(b) > 20 {
			b = b[:20]
		}
		for j, c := range b {
			if c < '0' || c > '9' {
				b[j] = '0' + c%10
			}
		}
		d := string(b)
		wantN, wantOK := e164Only(nationalPhoneLib(d, region))
		if gotN, gotOK := nationalPhone(d, region); gotN != wantN || gotOK != wantOK {
			t.Fatalf("nationalPhone(%q, %s) = %q, %v; libphonenumber: %q, %v", d, region, gotN, gotOK, wantN, wantOK)
		}
	})
}

// A valid national number costs one allocation (the E.164 digits) on
// the fast path.
func TestNationalPhoneAllocations(t *testing.T) {
	var got string
	var ok bool
	allocs := testing.AllocsPerRun(100, func() { got, ok = nationalPhone("27999999999", "BR") })
	require.True(t, ok)
	assert.Equal(t, "5527999999999", got)
	_, _, sure := nationalPhoneFast("27999999999", "BR")
	require.True(t, sure, "read by the fast path")
	if !RaceEnabled { // the race detector makes sync.Pool drop regexp's matchers
		assert.LessOrEqual(t, allocs, 1.0)
	}
}

// Goroutines reading national numbers of the same regions at once
// compile each region's patterns once and agree with the library (run
// with -race).
func TestNationalPhoneConcurrent(t *testing.T) {
	type number struct{ region, d string }
	var numbers []number
	for _, region := range phoneRegions(t) {
		if n := phonenumbers.GetExampleNumberForType(region, phonenumbers.MOBILE); n != nil {
			numbers = append(numbers, number{region, phonenumbers.GetNationalSignificantNumber(n)})
		}
	}
	errs := make(chan string, 4)
	for g := range 4 {
		go func() {
			bad := ""
			for i := g; i < len(numbers); i += 2 { // each number read by two goroutines
				n := numbers[i]
				wantN, wantOK := e164Only(nationalPhoneLib(n.d, n.region))
				if got, ok := nationalPhone(n.d, n.region); got != wantN || ok != wantOK {
					bad = n.region + " " + n.d
				}
			}
			errs <- bad
		}()
	}
	for range 4 {
		assert.Empty(t, <-errs, "a number read otherwise than by libphonenumber")
	}
}
