package convo

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// The fast paths of internationalPhone and nationalPhone.
// phonenumbers.Parse, IsValidNumber and Format cost some fifty
// allocations a number (builders, the regexp cache's keys rebuilt on every
// look-up); this file reads the same metadata with the same regular
// expressions, compiled once per country code and per default region,
// gives the same answer and allocates nothing (but the E.164 digits of a
// national number). Where libphonenumber could read a number otherwise
// than "country code, then the national number as written" (a prefix that
// Parse may strip, metadata it would not find), it steps aside and the
// library decides. TestInternationalPhoneAgrees and
// FuzzInternationalPhoneAgrees compare the two on every calling code,
// TestNationalPhoneAgrees and FuzzNationalPhoneAgrees on every region.

// phoneMeta indexes libphonenumber's metadata by calling code, as the
// library itself looks it up, and by region. It is built on the first
// number read, not at init (the CLI's start-up pays for nothing it does
// not use).
var phoneMeta struct {
	once    sync.Once
	loaded  bool
	codes   [1000]*phoneCode               // by calling code; nil: not one libphonenumber knows
	regions map[string]*phoneRegionDefault // by supported region id
}

// phoneCode is what Parse and IsValidNumber read for one calling code.
type phoneCode struct {
	regions []*phoneRegion // in the library's order: the main region first
	parse   *phonenumbers.PhoneMetadata
	sure    bool // the library's look-ups all find their metadata

	once     sync.Once
	compiled bool           // every pattern below compiled
	prefix   *regexp.Regexp // ^(?:national prefix for parsing); nil: none
}

// phoneRegion is one region of a calling code, or its non-geographical
// entity ("001").
type phoneRegion struct {
	md        *phonenumbers.PhoneMetadata
	ccMatches bool           // IsValidNumberForRegion's country code check
	leading   *regexp.Regexp // ^(?:leading digits), for shared calling codes; nil: none

	once     sync.Once
	compiled bool
	general  phoneDesc
	types    []phoneDesc // a number is valid when it matches general and one of these
}

// phoneDesc is a PhoneNumberDesc as the Go library's isNumberMatchingDesc
// reads it: a possible length (any when none is listed), and the national
// number pattern matching the whole number.
type phoneDesc struct {
	anyLength bool
	lengths   uint64 // bit n: length n is possible
	pattern   *regexp.Regexp
}

func (p *phoneDesc) matches(nsn string) bool {
	if !p.anyLength && (len(nsn) >= 64 || p.lengths&(1<<len(nsn)) == 0) {
		return false
	}
	return p.pattern.MatchString(nsn)
}

// loadPhoneMeta indexes the metadata as libphonenumber's own maps hold it:
// regions by id and non-geographical entities by calling code (the last
// entry wins), a region only when the library supports it.
func loadPhoneMeta() {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return // no code known here: every number goes to the library
	}
	byRegion := map[string]*phonenumbers.PhoneMetadata{}
	nonGeo := map[int]*phonenumbers.PhoneMetadata{}
	for _, md := range coll.GetMetadata() {
		if id := md.GetId(); id == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY {
			nonGeo[int(md.GetCountryCode())] = md
		} else {
			byRegion[id] = md
		}
	}
	supported := phonenumbers.GetSupportedRegions()
	region := func(r string) *phonenumbers.PhoneMetadata { // getMetadataForRegion
		if r == "" || !supported[r] {
			return nil
		}
		return byRegion[r]
	}
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		if cc <= 0 || cc >= len(phoneMeta.codes) {
			continue // never read from one to three digits
		}
		names := phonenumbers.GetRegionCodesForCountryCode(cc)
		c := &phoneCode{sure: len(names) > 0}
		for _, r := range names {
			var md *phonenumbers.PhoneMetadata
			switch {
			case len(names) > 1: // getRegionCodeForNumberFromRegionList
				md = region(r)
			case r == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY: // getMetadataForRegionOrCallingCode
				md = nonGeo[cc]
			default:
				md = region(r)
			}
			if md == nil {
				c.sure = false
				break
			}
			c.regions = append(c.regions, &phoneRegion{md: md,
				ccMatches: r == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY || int(md.GetCountryCode()) == cc})
		}
		if c.sure { // Parse reads the main region's metadata, or the entity's
			if names[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY && len(names) == 1 {
				c.parse = nonGeo[cc]
			} else {
				c.parse = region(names[0])
			}
			c.sure = c.parse != nil
		}
		phoneMeta.codes[cc] = c
	}
	phoneMeta.regions = make(map[string]*phoneRegionDefault, len(supported))
	for r := range supported {
		md := region(r)
		if md == nil {
			continue
		}
		cc := int(md.GetCountryCode())
		if cc <= 0 || cc >= len(phoneMeta.codes) || phoneMeta.codes[cc] == nil {
			continue
		}
		phoneMeta.regions[r] = &phoneRegionDefault{md: md, code: phoneMeta.codes[cc], cc: strconv.Itoa(cc)}
	}
	phoneMeta.loaded = true
}

// compile compiles the national prefix and the regions' leading digits.
func (c *phoneCode) compile() {
	var err error
	if p := c.parse.GetNationalPrefixForParsing(); p != "" {
		if c.prefix, err = regexp.Compile("^(?:" + p + ")"); err != nil {
			return
		}
	}
	if len(c.regions) > 1 {
		for _, r := range c.regions {
			if l := r.md.GetLeadingDigits(); l != "" {
				if r.leading, err = regexp.Compile("^(?:" + l + ")"); err != nil {
					return
				}
			}
		}
	}
	c.compiled = true
}

// compile compiles the region's number types, mobile first (the numbers
// this SDK reads most).
func (r *phoneRegion) compile() {
	md := r.md
	descs := []*phonenumbers.PhoneNumberDesc{md.GetFixedLine(), md.GetPremiumRate(), md.GetTollFree(),
		md.GetSharedCost(), md.GetVoip(), md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail()}
	// getNumberTypeHelper: a fixed line is FIXED_LINE or FIXED_LINE_OR_MOBILE,
	// and a mobile number counts only when the patterns differ.
	if !md.GetSameMobileAndFixedLinePattern() {
		descs = append([]*phonenumbers.PhoneNumberDesc{md.GetMobile()}, descs...)
	}
	var ok bool
	if r.general, ok = compileDesc(md.GetGeneralDesc()); !ok {
		return
	}
	r.types = make([]phoneDesc, len(descs))
	for i, d := range descs {
		if r.types[i], ok = compileDesc(d); !ok {
			return
		}
	}
	r.compiled = true
}

func compileDesc(d *phonenumbers.PhoneNumberDesc) (phoneDesc, bool) {
	if d == nil {
		return phoneDesc{}, false // the library would not read it either
	}
	re, err := regexp.Compile("^(?:" + d.GetNationalNumberPattern() + ")$")
	if err != nil {
		return phoneDesc{}, false
	}
	p := phoneDesc{anyLength: len(d.GetPossibleLength()) == 0, pattern: re}
	for _, l := range d.GetPossibleLength() {
		if l >= 0 && l < 64 {
			p.lengths |= 1 << l
		}
	}
	return p, true
}

// valid is getNumberTypeHelper(nsn, r.md) != UNKNOWN.
func (r *phoneRegion) valid(nsn string) bool {
	if !r.general.matches(nsn) {
		return false
	}
	for i := range r.types {
		if r.types[i].matches(nsn) {
			return true
		}
	}
	return false
}

// internationalPhoneFast is internationalPhone for the numbers whose
// reading it is sure of: sure is false when libphonenumber must decide.
func internationalPhoneFast(d string) (e164 string, cc int, ok, sure bool) {
	if len(d) < 8 || len(d) > 15 || d[0] == '0' || !digitsOnly(d) { // what phone passes on
		return "", 0, false, false
	}
	if phoneMeta.once.Do(loadPhoneMeta); !phoneMeta.loaded {
		return "", 0, false, false
	}
	// extractCountryCode: the first of one to three digits that is a
	// calling code.
	var c *phoneCode
	var nsn string
	for i := 0; i < 3 && c == nil; i++ {
		cc = cc*10 + int(d[i]-'0')
		c, nsn = phoneMeta.codes[cc], d[i+1:]
	}
	if c == nil {
		return "", 0, false, true // ErrInvalidCountryCode
	}
	if !c.sure {
		return "", 0, false, false
	}
	c.once.Do(c.compile)
	// Parse keeps nsn as it is unless it strips a national prefix (tried
	// only when the prefix matches). Leading zeros it keeps as Italian
	// leading zeros, and GetNationalSignificantNumber and Format give them
	// back as they were (NumberOfLeadingZeros is 1 unless set).
	if !c.compiled || len(nsn) < 2 || c.prefix != nil && c.prefix.MatchString(nsn) {
		return "", 0, false, false
	}
	switch ok, sure := c.isValid(nsn); {
	case !sure:
		return "", 0, false, false
	case !ok:
		return "", cc, false, true
	}
	return d, cc, true, true // Format(E164) is "+", cc, nsn
}

// isValid is IsValidNumber of the number with c's calling code and the
// national significant number nsn (as GetNationalSignificantNumber gives
// it): GetRegionCodeForNumber, then IsValidNumberForRegion. sure is false
// when a region's patterns do not compile. c must be compiled.
func (c *phoneCode) isValid(nsn string) (ok, sure bool) {
	r, sure := c.region(nsn)
	if !sure {
		return false, false
	}
	if r == nil {
		return false, true
	}
	if r.once.Do(r.compile); !r.compiled {
		return false, false
	}
	return r.ccMatches && r.valid(nsn), true
}

// region is GetRegionCodeForNumber's region of the national number nsn:
// the only one, or the first in the library's order whose leading digits
// nsn starts with, or, for a region without leading digits, that nsn is
// valid in. It is nil for none; sure is false when a region's patterns do
// not compile.
func (c *phoneCode) region(nsn string) (r *phoneRegion, sure bool) {
	if len(c.regions) == 1 {
		return c.regions[0], true
	}
	for _, x := range c.regions {
		if x.leading != nil {
			if x.leading.MatchString(nsn) {
				return x, true
			}
			continue
		}
		if x.once.Do(x.compile); !x.compiled {
			return nil, false
		}
		if x.valid(nsn) {
			return x, true
		}
	}
	return nil, true
}

// phoneRegionDefault is what Parse reads of a default region (a client's
// WithDefaultCountry) for a number written without '+': the region's own
// metadata (CA's, not US's, for CA), not its calling code's main region's.
type phoneRegionDefault struct {
	md   *phonenumbers.PhoneMetadata
	code *phoneCode // the region's calling code
	cc   string     // its digits

	once     sync.Once
	compiled bool
	idd      *regexp.Regexp // ^(?:international prefix)
	prefix   *regexp.Regexp // ^(?:national prefix for parsing); nil: none
}

// compile compiles the international and the national prefix, as
// maybeStripInternationalPrefixAndNormalize and
// maybeStripNationalPrefixAndCarrierCode read them, anchored.
func (r *phoneRegionDefault) compile() {
	var err error
	if r.idd, err = regexp.Compile("^(?:" + r.md.GetInternationalPrefix() + ")"); err != nil {
		return
	}
	if p := r.md.GetNationalPrefixForParsing(); p != "" {
		if r.prefix, err = regexp.Compile("^(?:" + p + ")"); err != nil {
			return
		}
	}
	r.compiled = true
}

// nationalPhoneFast is nationalPhone for the numbers whose reading it is
// sure of: sure is false when libphonenumber must decide.
//
// For d, digits only, Parse(d, region) reads the region's own metadata:
// it strips an international prefix matching at the start of d and reads
// a country code after it; it may strip the region's calling code from
// the start of d; it may strip or transform a national prefix matching
// at the start. In each of these cases this function steps aside. Else
// the number is the region's calling code with d as its national
// significant number (leading zeros kept as Italian leading zeros, which
// GetNationalSignificantNumber gives back as written): too short under 2
// digits, too long over 17, and valid as IsValidNumber finds it.
func nationalPhoneFast(d, region string) (e164 string, ok, sure bool) {
	if !digitsOnly(d) {
		return "", false, false
	}
	if len(d) < 2 { // isViablePhoneNumber: ErrNotANumber
		return "", false, true
	}
	if phoneMeta.once.Do(loadPhoneMeta); !phoneMeta.loaded {
		return "", false, false
	}
	r := phoneMeta.regions[region]
	if r == nil || !r.code.sure { // not a region Parse takes, or metadata it would not find
		return "", false, false
	}
	if r.once.Do(r.compile); !r.compiled {
		return "", false, false
	}
	if r.idd.MatchString(d) || strings.HasPrefix(d, r.cc) || r.prefix != nil && r.prefix.MatchString(d) {
		return "", false, false
	}
	if len(d) > phonenumbers.MAX_LENGTH_FOR_NSN { // ErrNumTooLong
		return "", false, true
	}
	c := r.code
	if c.once.Do(c.compile); !c.compiled {
		return "", false, false
	}
	switch ok, sure := c.isValid(d); {
	case !sure:
		return "", false, false
	case !ok:
		return "", false, true
	}
	return r.cc + d, true, true // Format(E164) is "+", cc, nsn
}
