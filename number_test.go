package tollguard_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/tollguard/tollguard"
)

var (
	planGB = tollguard.NumberPlan{Country: "GB"}
	planUS = tollguard.NumberPlan{Country: "US"}
	planCA = tollguard.NumberPlan{Country: "CA"}
	planDE = tollguard.NumberPlan{Country: "DE"}
	planFR = tollguard.NumberPlan{Country: "FR"}
	planSE = tollguard.NumberPlan{Country: "SE"}
	planES = tollguard.NumberPlan{Country: "ES"}
	planIT = tollguard.NumberPlan{Country: "IT"}
	planPL = tollguard.NumberPlan{Country: "PL"}
	planAT = tollguard.NumberPlan{Country: "AT"}
	planFI = tollguard.NumberPlan{Country: "FI"}
	planAE = tollguard.NumberPlan{Country: "AE"}
	planZA = tollguard.NumberPlan{Country: "ZA"}
	planBR = tollguard.NumberPlan{Country: "BR"}
)

func TestClassify(t *testing.T) {
	hr := tollguard.DefaultHighRiskList()
	tests := []struct {
		name    string
		dialled string
		plan    tollguard.NumberPlan
		hr      tollguard.HighRiskMatcher // nil: the default list
		noHR    bool                      // classify with no list at all
		want    tollguard.Class
		e164    string
		region  string
		intl    bool
		typ     string // "" skips the check
		risky   bool   // HighRisk is set
		short   bool   // a national short code
	}{
		// GB
		{name: "GB emergency 999", dialled: "999", plan: planGB, want: tollguard.ClassEmergency},
		{name: "GB emergency 112", dialled: "112", plan: planGB, want: tollguard.ClassEmergency},
		{name: "GB emergency 999 with #", dialled: "999#", plan: planGB, want: tollguard.ClassEmergency},
		{name: "GB emergency spaced", dialled: " 9 9 9 ", plan: planGB, want: tollguard.ClassEmergency},
		{name: "GB premium 09", dialled: "09061234567", plan: planGB, want: tollguard.ClassPremium, e164: "+449061234567", region: "GB", typ: tollguard.TypePremiumRate},
		{name: "GB mobile 07", dialled: "07400123456", plan: planGB, want: tollguard.ClassMobile, e164: "+447400123456", region: "GB", typ: tollguard.TypeMobile},
		{name: "GB international 00", dialled: "00493012345678", plan: planGB, want: tollguard.ClassInternational, e164: "+493012345678", region: "DE", intl: true, typ: tollguard.TypeFixedLine},
		{name: "GB international with plus", dialled: "+49 30 12345678", plan: planGB, want: tollguard.ClassInternational, e164: "+493012345678", region: "DE", intl: true},
		{name: "GB national 020 London", dialled: "02079460000", plan: planGB, want: tollguard.ClassNational, e164: "+442079460000", region: "GB", typ: tollguard.TypeFixedLine},
		{name: "GB national 020 spaces", dialled: "020 7946 0000", plan: planGB, want: tollguard.ClassNational, e164: "+442079460000", region: "GB"},
		{name: "GB national 020 dashes and parens", dialled: "(020)-7946-0000", plan: planGB, want: tollguard.ClassNational, e164: "+442079460000", region: "GB"},
		{name: "GB own country in international form", dialled: "0044 20 7946 0000", plan: planGB, want: tollguard.ClassNational, e164: "+442079460000", region: "GB"},
		{name: "GB toll free 0800", dialled: "0800 123 4567", plan: planGB, want: tollguard.ClassTollFree, e164: "+448001234567", region: "GB", typ: tollguard.TypeTollFree},
		{name: "GB personal 070 is gated as premium", dialled: "070 1234 5678", plan: planGB, want: tollguard.ClassPremium, e164: "+447012345678", region: "GB", typ: tollguard.TypePersonalNumber},
		{name: "GB Isle of Man mobile is another region", dialled: "07624 123456", plan: planGB, want: tollguard.ClassInternational, e164: "+447624123456", region: "IM", intl: true, typ: tollguard.TypeMobile},
		{name: "GB short code 118", dialled: "118118", plan: planGB, want: tollguard.ClassNational, region: "GB", typ: tollguard.TypeShortCode, short: true},
		{name: "GB free short code 116", dialled: "116 123", plan: planGB, want: tollguard.ClassTollFree, region: "GB", typ: tollguard.TypeTollFree, short: true},
		{name: "GB international premium", dialled: "001 900 234 5678", plan: planGB, want: tollguard.ClassPremium, e164: "+19002345678", region: "US", intl: true, typ: tollguard.TypePremiumRate},
		{name: "GB international toll free is international", dialled: "+1 800 234 5678", plan: planGB, want: tollguard.ClassInternational, e164: "+18002345678", region: "US", intl: true, typ: tollguard.TypeTollFree},
		{name: "GB internal extension", dialled: "1001", plan: planGB, want: tollguard.ClassInternal},
		{name: "GB internal 3 digits", dialled: "200", plan: planGB, want: tollguard.ClassInternal},

		// NANP
		{name: "US emergency 911", dialled: "911", plan: planUS, want: tollguard.ClassEmergency},
		{name: "US 999 always emergency", dialled: "999", plan: planUS, want: tollguard.ClassEmergency},
		{name: "US premium 1-900", dialled: "1-900-234-5678", plan: planUS, want: tollguard.ClassPremium, e164: "+19002345678", region: "US", typ: tollguard.TypePremiumRate},
		{name: "US premium 900 10 digits", dialled: "9002345678", plan: planUS, want: tollguard.ClassPremium, e164: "+19002345678", region: "US"},
		{name: "US area code 909 is national", dialled: "(909) 234-5678", plan: planUS, want: tollguard.ClassNational, e164: "+19092345678", region: "US", typ: tollguard.TypeFixedLineOrMobile},
		{name: "US area code 909 11 digits", dialled: "19092345678", plan: planUS, want: tollguard.ClassNational, e164: "+19092345678", region: "US"},
		{name: "US 10 digits", dialled: "2125550100", plan: planUS, want: tollguard.ClassNational, e164: "+12125550100", region: "US"},
		{name: "US 11 digits dotted", dialled: "1.212.555.0100", plan: planUS, want: tollguard.ClassNational, e164: "+12125550100", region: "US"},
		{name: "US toll free", dialled: "1-800-234-5678", plan: planUS, want: tollguard.ClassTollFree, e164: "+18002345678", region: "US", typ: tollguard.TypeTollFree},
		{name: "US international 011", dialled: "011 44 20 7946 0000", plan: planUS, want: tollguard.ClassInternational, e164: "+442079460000", region: "GB", intl: true},
		{name: "US Jamaica 876 high risk", dialled: "1 876 925 1234", plan: planUS, want: tollguard.ClassHighRisk, e164: "+18769251234", region: "JM", intl: true, risky: true},
		{name: "US Jamaica 876 10 digits", dialled: "876-925-1234", plan: planUS, want: tollguard.ClassHighRisk, e164: "+18769251234", region: "JM", intl: true, risky: true},
		{name: "US Jamaica without a list is international", dialled: "18769251234", plan: planUS, noHR: true, want: tollguard.ClassInternational, e164: "+18769251234", region: "JM", intl: true},
		{name: "US Dominican Republic 809", dialled: "+1 809 234 5678", plan: planUS, want: tollguard.ClassHighRisk, e164: "+18092345678", region: "DO", intl: true, risky: true},
		{name: "US Dominican Republic 829", dialled: "18292345678", plan: planUS, want: tollguard.ClassHighRisk, region: "DO", intl: true, risky: true},
		{name: "US Antigua 268", dialled: "1-268-462-1234", plan: planUS, want: tollguard.ClassHighRisk, region: "AG", intl: true, risky: true},
		{name: "US Grenada 473", dialled: "14734401234", plan: planUS, want: tollguard.ClassHighRisk, region: "GD", intl: true, risky: true},
		{name: "US Bahamas 242", dialled: "12423591234", plan: planUS, want: tollguard.ClassHighRisk, region: "BS", intl: true, risky: true},
		{name: "US Cayman 345", dialled: "+1 345 949 1234", plan: planUS, want: tollguard.ClassHighRisk, region: "KY", intl: true, risky: true},
		{name: "US Puerto Rico is not on the list", dialled: "17872345678", plan: planUS, want: tollguard.ClassInternational, region: "PR", intl: true},
		{name: "GB Abkhazia +7 940", dialled: "0079401234567", plan: planGB, want: tollguard.ClassHighRisk, intl: true, risky: true},
		{name: "US Canada is another region", dialled: "+1 514 555 1234", plan: planUS, want: tollguard.ClassInternational, e164: "+15145551234", region: "CA", intl: true},
		{name: "US 7 digit local dialling is unknown", dialled: "2345678", plan: planUS, want: tollguard.ClassUnknown},
		{name: "US own country with 011", dialled: "011 1 212 555 0100", plan: planUS, want: tollguard.ClassNational, e164: "+12125550100", region: "US"},
		{name: "CA emergency 911", dialled: "911", plan: planCA, want: tollguard.ClassEmergency},
		{name: "CA national", dialled: "416 234 5678", plan: planCA, want: tollguard.ClassNational, e164: "+14162345678", region: "CA"},
		{name: "CA to US is international", dialled: "1 212 234 5678", plan: planCA, want: tollguard.ClassInternational, e164: "+12122345678", region: "US", intl: true},
		{name: "CA premium 1-900", dialled: "1 900 234 5678", plan: planCA, want: tollguard.ClassPremium, region: "US", intl: true, typ: tollguard.TypePremiumRate},

		// DE
		{name: "DE emergency 110", dialled: "110", plan: planDE, want: tollguard.ClassEmergency},
		{name: "DE emergency 112", dialled: "112", plan: planDE, want: tollguard.ClassEmergency},
		{name: "DE premium 0900", dialled: "0900 1 234567", plan: planDE, want: tollguard.ClassPremium, e164: "+499001234567", region: "DE", typ: tollguard.TypePremiumRate},
		{name: "DE mobile 015", dialled: "01512 3456789", plan: planDE, want: tollguard.ClassMobile, e164: "+4915123456789", region: "DE"},
		{name: "DE national Berlin", dialled: "030 1234567", plan: planDE, want: tollguard.ClassNational, e164: "+49301234567", region: "DE"},
		{name: "DE toll free 0800", dialled: "0800 1234567890", plan: planDE, want: tollguard.ClassTollFree, region: "DE"},
		{name: "DE international 00", dialled: "00 44 20 7946 0000", plan: planDE, want: tollguard.ClassInternational, e164: "+442079460000", region: "GB", intl: true},

		// ES: the emergency services' short numbers beyond 112, 085 and
		// 088, which the metadata lacks (it has them as standard-rate
		// short codes, and they were denied as of unknown cost).
		{name: "ES emergency 091 Policía Nacional", dialled: "091", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES emergency 092 Policía Local", dialled: "092", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES emergency 062 Guardia Civil", dialled: "062", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES emergency 061 urgencias sanitarias", dialled: "061", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES emergency 080 bomberos with #", dialled: "080#", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES emergency 085 bomberos", dialled: "085", plan: planES, want: tollguard.ClassEmergency},
		{name: "ES 060 government information is not an emergency number", dialled: "060", plan: planES, want: tollguard.ClassNational, region: "ES", typ: tollguard.TypeShortCode, short: true},
		// ES: 905 (mass calling, televoting) and 907 are premium-rate
		// (tarificación adicional) like 803/806/807, which libphonenumber
		// knows; it does not know 905 and 907, which read as ordinary
		// national numbers, free without a deck row of their own.
		{name: "ES premium 803", dialled: "803 123 456", plan: planES, want: tollguard.ClassPremium, e164: "+34803123456", region: "ES", typ: tollguard.TypePremiumRate},
		{name: "ES premium 905 televoting", dialled: "905 123 456", plan: planES, want: tollguard.ClassPremium, e164: "+34905123456", region: "ES", typ: tollguard.TypePremiumRate},
		{name: "ES premium 905 from GB", dialled: "0034 905 412 345", plan: planGB, want: tollguard.ClassPremium, e164: "+34905412345", region: "ES", typ: tollguard.TypePremiumRate, intl: true},
		{name: "ES premium 907", dialled: "907 123 456", plan: planES, want: tollguard.ClassPremium, e164: "+34907123456", region: "ES", typ: tollguard.TypePremiumRate},
		{name: "ES 901 shared cost is not premium", dialled: "901 123 456", plan: planES, want: tollguard.ClassNational, e164: "+34901123456", region: "ES", typ: tollguard.TypeSharedCost},
		{name: "ES toll free 900", dialled: "900 123 456", plan: planES, want: tollguard.ClassTollFree, e164: "+34900123456", region: "ES", typ: tollguard.TypeTollFree},
		// AE: 900 is the premium-rate code; libphonenumber types only its
		// 9000 and 9002 blocks, and the rest read as national numbers.
		{name: "AE premium 9000", dialled: "0900 012345", plan: planAE, want: tollguard.ClassPremium, e164: "+971900012345", region: "AE", typ: tollguard.TypePremiumRate},
		{name: "AE premium 9001", dialled: "0900 112345", plan: planAE, want: tollguard.ClassPremium, e164: "+971900112345", region: "AE", typ: tollguard.TypePremiumRate},
		{name: "AE premium 9009 from GB", dialled: "+971 900 912345", plan: planGB, want: tollguard.ClassPremium, e164: "+971900912345", region: "AE", typ: tollguard.TypePremiumRate, intl: true},
		{name: "AE premium 9005 overdialled", dialled: "0900 512345 6", plan: planAE, want: tollguard.ClassPremium, e164: "+9719005123456", region: "AE", typ: tollguard.TypePremiumRate},
		{name: "AE toll free 800", dialled: "800 12345", plan: planAE, want: tollguard.ClassTollFree, e164: "+97180012345", region: "AE", typ: tollguard.TypeTollFree},
		{name: "AE national Dubai", dialled: "04 234 5678", plan: planAE, want: tollguard.ClassNational, e164: "+97142345678", region: "AE", typ: tollguard.TypeFixedLine},

		// IT: the emergency numbers of the national numbering plan beyond
		// 112, 113, 115 and 118, which the metadata has as short codes of
		// unknown cost.
		{name: "IT emergency 117 Guardia di Finanza", dialled: "117", plan: planIT, want: tollguard.ClassEmergency},
		{name: "IT emergency 1530 Guardia Costiera", dialled: "1530", plan: planIT, want: tollguard.ClassEmergency},
		{name: "IT emergency 1530 with #", dialled: "1530#", plan: planIT, want: tollguard.ClassEmergency},
		{name: "IT emergency 1515 environmental", dialled: "1515", plan: planIT, want: tollguard.ClassEmergency},
		{name: "IT emergency 114 Emergenza Infanzia", dialled: "114", plan: planIT, want: tollguard.ClassEmergency},

		// PL: the numery alarmowe beyond 112 and 997-999, which the
		// metadata has as short codes of unknown cost.
		{name: "PL emergency 985 sea and mountain rescue", dialled: "985", plan: planPL, want: tollguard.ClassEmergency},
		{name: "PL emergency 984 water rescue", dialled: "984#", plan: planPL, want: tollguard.ClassEmergency},
		{name: "PL emergency 992 gas", dialled: "992", plan: planPL, want: tollguard.ClassEmergency},
		{name: "PL emergency 997 police", dialled: "997", plan: planPL, want: tollguard.ClassEmergency},

		// AT directory enquiries 118 xyz: the short-number metadata lacks
		// them, and 118877 read as a Vienna number (+43 1 18877) was
		// priced as a national call.
		{name: "AT directory enquiries 118877", dialled: "118877", plan: planAT, want: tollguard.ClassNational, region: "AT", typ: tollguard.TypeShortCode, short: true},
		{name: "AT directory enquiries 118 200 spaced", dialled: "118 200", plan: planAT, want: tollguard.ClassNational, region: "AT", typ: tollguard.TypeShortCode, short: true},
		{name: "AT directory enquiries overdialled", dialled: "1188770", plan: planAT, want: tollguard.ClassNational, region: "AT", typ: tollguard.TypeShortCode, short: true},
		{name: "AT Vienna", dialled: "01 5880 0", plan: planAT, want: tollguard.ClassNational, e164: "+43158800", region: "AT", typ: tollguard.TypeFixedLine},

		// FI 118, directory enquiries: the metadata lacks it, and it
		// passed as an internal extension (and onto the include's
		// emergency line of a PBX with CH, IT or JP accounts too).
		{name: "FI directory enquiries 118", dialled: "118", plan: planFI, want: tollguard.ClassNational, region: "FI", typ: tollguard.TypeShortCode, short: true},

		// ZA: 107, Cape Town's and Tshwane's emergency number from a
		// landline; the metadata has it as a short code of unknown cost.
		{name: "ZA emergency 107", dialled: "107", plan: planZA, want: tollguard.ClassEmergency},
		{name: "ZA emergency 10111 police", dialled: "10111", plan: planZA, want: tollguard.ClassEmergency},
		{name: "ZA 1020 is not an emergency number", dialled: "1020", plan: planZA, want: tollguard.ClassNational, region: "ZA", typ: tollguard.TypeShortCode, short: true},

		// BR: Anatel's serviços públicos de emergência beyond the
		// metadata's 190, 192, 193, 112, 128 and 911.
		{name: "BR emergency 153 Guarda Municipal", dialled: "153", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 185 Salvamar", dialled: "185", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 191 Polícia Rodoviária Federal", dialled: "191", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 194 Polícia Federal", dialled: "194", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 197 Polícia Civil", dialled: "197", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 198 Polícia Rodoviária Estadual", dialled: "198", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 199 Defesa Civil", dialled: "199", plan: planBR, want: tollguard.ClassEmergency},
		{name: "BR emergency 190 Polícia Militar", dialled: "190", plan: planBR, want: tollguard.ClassEmergency},

		// AT: the Notrufnummern of KEM-V 2009 beyond the metadata's 112,
		// 122, 133 and 144, which were free short codes, so internal.
		{name: "AT emergency 140 Bergrettung", dialled: "140", plan: planAT, want: tollguard.ClassEmergency},
		{name: "AT emergency 141 Ärztenotdienst", dialled: "141", plan: planAT, want: tollguard.ClassEmergency},
		{name: "AT emergency 128 Gasnotruf", dialled: "128", plan: planAT, want: tollguard.ClassEmergency},
		{name: "AT emergency 142 Telefonseelsorge", dialled: "142", plan: planAT, want: tollguard.ClassEmergency},
		{name: "AT emergency 147 Rat auf Draht", dialled: "147", plan: planAT, want: tollguard.ClassEmergency},
		{name: "AT emergency 144 Rettung", dialled: "144", plan: planAT, want: tollguard.ClassEmergency},

		// FR
		{name: "FR emergency 15 SAMU", dialled: "15", plan: planFR, want: tollguard.ClassEmergency},
		{name: "FR emergency 17 police", dialled: "17", plan: planFR, want: tollguard.ClassEmergency},
		{name: "FR emergency 18 pompiers", dialled: "18", plan: planFR, want: tollguard.ClassEmergency},
		{name: "FR premium 089", dialled: "0 891 12 34 56", plan: planFR, want: tollguard.ClassPremium, e164: "+33891123456", region: "FR", typ: tollguard.TypePremiumRate},
		{name: "FR mobile 06", dialled: "06 12 34 56 78", plan: planFR, want: tollguard.ClassMobile, e164: "+33612345678", region: "FR"},
		{name: "FR national Paris", dialled: "01 40 12 34 56", plan: planFR, want: tollguard.ClassNational, e164: "+33140123456", region: "FR"},
		{name: "FR toll free 0801", dialled: "0801 23 45 67", plan: planFR, want: tollguard.ClassTollFree, region: "FR"},
		{name: "FR premium short code 118", dialled: "118 712", plan: planFR, want: tollguard.ClassPremium, region: "FR", typ: tollguard.TypePremiumRate, short: true},
		// DE 118xy also has a possible length for an ordinary number.
		{name: "DE directory enquiries 118", dialled: "11833", plan: planDE, want: tollguard.ClassNational, region: "DE", typ: tollguard.TypeShortCode, short: true},
		{name: "DE free short code 116", dialled: "116117", plan: planDE, want: tollguard.ClassTollFree, region: "DE", short: true},
		{name: "DE national Berlin", dialled: "030 12345678", plan: planDE, want: tollguard.ClassNational, e164: "+493012345678", region: "DE", typ: tollguard.TypeFixedLine},
		// Overdialled: the carrier connects the leading part and drops the rest.
		{name: "DE premium 0900 overdialled", dialled: "0900 1234567 0", plan: planDE, want: tollguard.ClassPremium, e164: "+4990012345670", region: "DE", typ: tollguard.TypePremiumRate},
		{name: "DE premium 0900 overdialled from GB", dialled: "0049 900 1234567 00", plan: planGB, want: tollguard.ClassPremium, e164: "+499001234567" + "00", region: "DE", typ: tollguard.TypePremiumRate, intl: true},
		{name: "DE personal 0700 overdialled", dialled: "0700 12345678 9", plan: planDE, want: tollguard.ClassPremium, e164: "+497001234567" + "89", region: "DE", typ: tollguard.TypePersonalNumber},
		{name: "SE personal 075 overdialled", dialled: "075 1234567 0", plan: planSE, want: tollguard.ClassPremium, e164: "+4675" + "12345670", region: "SE", typ: tollguard.TypePersonalNumber},
		// Underdialled: a premium number with digits missing is gated as
		// premium, not priced as an ordinary national number (the network
		// may connect it, or wait for digits the gate never sees).
		{name: "DE premium 0900 a digit short", dialled: "0900 123456", plan: planDE, want: tollguard.ClassPremium, e164: "+49900123456", region: "DE", typ: tollguard.TypePremiumRate},
		{name: "DE premium 0900 three digits short", dialled: "0900 1234", plan: planDE, want: tollguard.ClassPremium, e164: "+499001234", region: "DE", typ: tollguard.TypePremiumRate},
		{name: "DE personal 0700 a digit short", dialled: "0700 1234567", plan: planDE, want: tollguard.ClassPremium, e164: "+497001234567", region: "DE", typ: tollguard.TypePersonalNumber},
		{name: "GB premium 09 a digit short", dialled: "0909 879000", plan: planGB, want: tollguard.ClassPremium, e164: "+44909879000", typ: tollguard.TypePremiumRate, intl: true},
		{name: "DE premium 0900 a digit short from GB", dialled: "0049 900 123456", plan: planGB, want: tollguard.ClassPremium, e164: "+49900123456", region: "DE", typ: tollguard.TypePremiumRate, intl: true},
		{name: "AE premium 9005 a digit short (extraPremium)", dialled: "0900 51234", plan: planAE, want: tollguard.ClassPremium, e164: "+97190051234", region: "AE", typ: tollguard.TypePremiumRate},
		// The metadata leaves FR's premium lengths to the region's own.
		{name: "FR premium 0891 a digit short", dialled: "0891 23456", plan: planFR, want: tollguard.ClassPremium, region: "FR", typ: tollguard.TypePremiumRate},
		{name: "FR premium 0899 a digit short", dialled: "0899 12345", plan: planFR, want: tollguard.ClassPremium, region: "FR", typ: tollguard.TypePremiumRate},
		// libphonenumber keeps a national prefix whose removal leaves an
		// impossible length: the number begun is the one after it.
		{name: "CH premium 0900 a digit short", dialled: "0900 12345", plan: tollguard.NumberPlan{Country: "CH"}, want: tollguard.ClassPremium, region: "CH", typ: tollguard.TypePremiumRate},
		{name: "US premium 1-900 a digit short", dialled: "1 900 555 123", plan: planUS, want: tollguard.ClassPremium, typ: tollguard.TypePremiumRate, intl: true},
		{name: "GB premium 09 two digits short", dialled: "0909 87900", plan: planGB, want: tollguard.ClassPremium, typ: tollguard.TypePremiumRate, intl: true},
		{name: "ES 905 a digit short: not a possible length", dialled: "905 12345", plan: tollguard.NumberPlan{Country: "ES"}, want: tollguard.ClassUnknown},
		// libphonenumber drops Russia's national prefix 8 from a number it
		// finds too long: +7 809 (premium) with a digit more read as
		// +7 0912..., an ordinary number. The trunk sends what was dialled.
		{name: "RU premium overdialled from GB is not another number", dialled: "00780912345670", plan: planGB, want: tollguard.ClassUnknown},
		{name: "RU premium overdialled with +", dialled: "+780912345670", plan: planGB, want: tollguard.ClassUnknown},
		// A national prefix dialled after the country code is the valid
		// number without it, as carriers take it.
		{name: "GB with its national prefix after +44", dialled: "+44 0 20 7946 0000", plan: planUS, want: tollguard.ClassInternational, e164: "+442079460000", region: "GB", typ: tollguard.TypeFixedLine, intl: true},
		{name: "DE with its national prefix after 0049", dialled: "0049 030 123456", plan: planGB, want: tollguard.ClassInternational, e164: "+4930123456", region: "DE", typ: tollguard.TypeFixedLine, intl: true},
		{name: "DE directory enquiries overdialled", dialled: "118330", plan: planDE, want: tollguard.ClassNational, region: "DE", typ: tollguard.TypeShortCode, short: true},
		// A number of a range libphonenumber does not know yet is not a
		// short code with digits added (US SMS codes are any 5-6 digits).
		{name: "US unknown new area code stays a number", dialled: "624 555 1234", plan: planUS, want: tollguard.ClassInternational, e164: "+16245551234", intl: true},
		{name: "FR unknown 07 range stays a number", dialled: "07 12 34 56 78", plan: planFR, want: tollguard.ClassNational, e164: "+33712345678", region: "FR"},
		{name: "FR international 00", dialled: "00 1 212 234 5678", plan: planFR, want: tollguard.ClassInternational, e164: "+12122345678", region: "US", intl: true},

		// High-risk codes from anywhere
		{name: "Somalia +252", dialled: "+252 61 1234567", plan: planGB, want: tollguard.ClassHighRisk, e164: "+252611234567", region: "SO", intl: true, risky: true},
		{name: "Somalia 00252", dialled: "00252611234567", plan: planDE, want: tollguard.ClassHighRisk, region: "SO", intl: true, risky: true},
		{name: "GMSS +881", dialled: "+881612345678", plan: planGB, want: tollguard.ClassHighRisk, e164: "+881612345678", region: "001", intl: true, risky: true},
		{name: "International networks +882", dialled: "+882 3421234", plan: planGB, want: tollguard.ClassHighRisk, e164: "+8823421234", region: "001", intl: true, risky: true},
		{name: "International networks +883", dialled: "011 883 510012345", plan: planUS, want: tollguard.ClassHighRisk, e164: "+883510012345", region: "001", intl: true, risky: true},
		{name: "Inmarsat +870", dialled: "+870301234567", plan: planFR, want: tollguard.ClassHighRisk, region: "001", intl: true, risky: true},
		{name: "IPRS +979 is high risk over premium", dialled: "+979123456789", plan: planGB, want: tollguard.ClassHighRisk, intl: true, typ: tollguard.TypePremiumRate, risky: true},
		{name: "custom matcher", dialled: "02079460000", plan: planGB, hr: tollguard.NewPrefixList([]tollguard.HighRiskEntry{{Prefix: "+4420", Description: "London test"}}), want: tollguard.ClassHighRisk, e164: "+442079460000", region: "GB", risky: true},

		// Plans
		{name: "plan country in lower case", dialled: "02079460000", plan: tollguard.NumberPlan{Country: "gb"}, want: tollguard.ClassNational, e164: "+442079460000", region: "GB"},
		{name: "plan custom international prefix", dialled: "0044 20 7946 0000", plan: tollguard.NumberPlan{Country: "US", IntlPrefix: "00"}, want: tollguard.ClassInternational, e164: "+442079460000", region: "GB", intl: true},
		{name: "plan longer internal numbers", dialled: "200200", plan: tollguard.NumberPlan{Country: "GB", InternalMaxLen: 6}, want: tollguard.ClassInternal},
		// As short as an extension, but a short code the trunk would dial.
		{name: "GB international operator 155 is a short code", dialled: "155", plan: planGB, want: tollguard.ClassNational, region: "GB", typ: tollguard.TypeShortCode, short: true},
		{name: "GB 118118 with 6-digit extensions is still a short code", dialled: "118118", plan: tollguard.NumberPlan{Country: "GB", InternalMaxLen: 6}, want: tollguard.ClassNational, region: "GB", typ: tollguard.TypeShortCode, short: true},
		// As short as an extension, but a whole national number the
		// trunk would dial: premium numbers are that short in places.
		{name: "AD premium 912345 with 6-digit extensions is that number", dialled: "912345", plan: tollguard.NumberPlan{Country: "AD", InternalMaxLen: 6}, want: tollguard.ClassPremium, e164: "+376912345", region: "AD", typ: tollguard.TypePremiumRate},
		{name: "HK premium 90031 with 5-digit extensions is that number", dialled: "90031", plan: tollguard.NumberPlan{Country: "HK", InternalMaxLen: 5}, want: tollguard.ClassPremium, e164: "+85290031", region: "HK", typ: tollguard.TypePremiumRate},
		{name: "LU premium 90012345 with 8-digit extensions is that number", dialled: "90012345", plan: tollguard.NumberPlan{Country: "LU", InternalMaxLen: 8}, want: tollguard.ClassPremium, e164: "+35290012345", region: "LU", typ: tollguard.TypePremiumRate},
		{name: "US directory 411 is a short code", dialled: "411", plan: planUS, want: tollguard.ClassNational, region: "US", typ: tollguard.TypeShortCode, short: true},
		{name: "US four digits are an extension, not an SMS code", dialled: "1234", plan: planUS, want: tollguard.ClassInternal},
		{name: "FR premium 3949 is a short code", dialled: "3949", plan: planFR, want: tollguard.ClassPremium, region: "FR", typ: tollguard.TypePremiumRate, short: true},
		{name: "GB extension 1001 stays internal", dialled: "1001", plan: planGB, want: tollguard.ClassInternal},
		{name: "plan short internal numbers", dialled: "1001", plan: tollguard.NumberPlan{Country: "GB", InternalMaxLen: 3}, want: tollguard.ClassUnknown},
		{name: "plan without country still takes +", dialled: "+442079460000", plan: tollguard.NumberPlan{}, want: tollguard.ClassInternational, e164: "+442079460000", region: "GB", intl: true},
		{name: "plan without country cannot read national", dialled: "02079460000", plan: tollguard.NumberPlan{}, want: tollguard.ClassUnknown},

		// Garbage
		{name: "empty", dialled: "", plan: planGB, want: tollguard.ClassUnknown},
		{name: "letters", dialled: "abc", plan: planGB, want: tollguard.ClassUnknown},
		{name: "vanity letters", dialled: "1-800-FLOWERS", plan: planUS, want: tollguard.ClassUnknown},
		{name: "feature code", dialled: "*97", plan: planGB, want: tollguard.ClassUnknown},
		{name: "plus alone", dialled: "+", plan: planGB, want: tollguard.ClassUnknown},
		{name: "double plus", dialled: "++442079460000", plan: planGB, want: tollguard.ClassUnknown},
		{name: "plus 112 is not emergency", dialled: "+112", plan: planGB, want: tollguard.ClassUnknown},
		{name: "00112 is not emergency", dialled: "00112", plan: planGB, want: tollguard.ClassUnknown},
		{name: "emergency with extra digits", dialled: "99912345", plan: planGB, want: tollguard.ClassUnknown},
		{name: "too long", dialled: strings.Repeat("4", 40), plan: planGB, want: tollguard.ClassUnknown},
		{name: "four digits are internal even after a prefix", dialled: "0044", plan: planGB, want: tollguard.ClassInternal},
		{name: "too short after prefix", dialled: "004420", plan: planGB, want: tollguard.ClassUnknown},
		{name: "bad country code", dialled: "+999123456789", plan: planGB, want: tollguard.ClassUnknown},
		{name: "SIP URI", dialled: "sip:1001@example.com", plan: planGB, want: tollguard.ClassUnknown},
		{name: "unicode digits", dialled: "٠٢٠٧٩٤٦٠٠٠٠", plan: planGB, want: tollguard.ClassUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m tollguard.HighRiskMatcher = hr
			if tt.hr != nil {
				m = tt.hr
			}
			if tt.noHR {
				m = nil
			}
			got := tollguard.Classify(tt.dialled, tt.plan, m)
			if got.Dialled != tt.dialled {
				t.Errorf("Dialled = %q, want %q", got.Dialled, tt.dialled)
			}
			if got.Class != tt.want {
				t.Errorf("Class = %s, want %s (number %+v)", got.Class, tt.want, got)
			}
			if tt.e164 != "" && got.E164 != tt.e164 {
				t.Errorf("E164 = %q, want %q", got.E164, tt.e164)
			}
			if tt.region != "" && got.Region != tt.region {
				t.Errorf("Region = %q, want %q", got.Region, tt.region)
			}
			if got.International != tt.intl {
				t.Errorf("International = %v, want %v", got.International, tt.intl)
			}
			if tt.typ != "" && got.Type != tt.typ {
				t.Errorf("Type = %q, want %q", got.Type, tt.typ)
			}
			if got.Short != tt.short {
				t.Errorf("Short = %v, want %v", got.Short, tt.short)
			}
			if (got.HighRisk != "") != tt.risky {
				t.Errorf("HighRisk = %q, want set: %v", got.HighRisk, tt.risky)
			}
			switch {
			case tt.short, tt.want == tollguard.ClassEmergency, tt.want == tollguard.ClassInternal, tt.want == tollguard.ClassUnknown:
				if got.E164 != "" {
					t.Errorf("E164 = %q for class %s, want empty", got.E164, tt.want)
				}
			}
		})
	}
}

func TestIsEmergency(t *testing.T) {
	tests := []struct {
		dialled, country string
		want             bool
	}{
		{"112", "GB", true},
		{"999", "GB", true},
		{"911", "US", true},
		{"911", "GB", true}, // handsets route 911 everywhere
		{"112", "US", true},
		{"999", "US", true},
		{"112", "", true},
		{"999", "", true},
		{"999#", "GB", true},
		{"9-9-9", "GB", true},
		{" 112 ", "de", true},
		{"110", "DE", true},
		{"110", "GB", false},
		{"15", "FR", true},
		{"17", "FR", true},
		{"18", "FR", true},
		{"000", "AU", true},
		{"000", "GB", false},
		{"110", "JP", true},
		{"119", "JP", true},
		{"118", "JP", true},
		// France's and Switzerland's official lists, beyond the metadata.
		{"114", "FR", true},
		{"115", "FR", true},
		{"119", "FR", true},
		{"191", "FR", true},
		{"196", "FR", true},
		{"197", "FR", true},
		{"116000", "FR", true},
		{"114", "GB", false},
		{"1414", "CH", true},
		{"145", "CH", true},
		{"1414", "DE", false},
		{"110", "CN", true},
		{"119", "CN", true},
		{"100", "IN", true},
		{"101", "IN", true},
		{"102", "IN", true},
		{"108", "IN", true},
		{"10111", "NA", true},
		{"091", "ES", true},
		{"062", "ES", true},
		{"091", "GB", false},
		{"1530", "IT", true},
		{"117", "IT", true},
		{"1530", "GB", false},
		{"985", "PL", true},
		{"994", "PL", true},
		{"985", "GB", false},
		{"107", "ZA", true},
		{"107", "GB", false},
		{"153", "BR", true},
		{"185", "BR", true},
		{"199", "BR", true},
		{"199", "PT", false},
		{"140", "AT", true},
		{"141", "AT", true},
		{"140", "DE", false},
		{"122", "CN", true},
		{"12395", "CN", true},
		{"122", "GB", false},
		{"1412", "NO", true},
		{"1412", "SE", false},
		{"103", "AR", true},
		{"103", "BR", false},
		{"+112", "GB", false},
		{"+999", "GB", false},
		{"+1911", "US", false},
		{"00112", "GB", false},
		{"0112", "GB", false},
		{"0999", "GB", false},
		{"9991", "GB", false},
		{"1120", "DE", false},
		{"9911", "US", false},
		{"911#1", "US", false},
		{"*911", "US", false},
		{"", "GB", false},
		{"#", "GB", false},
		{"abc", "GB", false},
		{"02079460000", "GB", false},
	}
	for _, tt := range tests {
		if got := tollguard.IsEmergency(tt.dialled, tt.country); got != tt.want {
			t.Errorf("IsEmergency(%q, %q) = %v, want %v", tt.dialled, tt.country, got, tt.want)
		}
	}
}

// Emergency numbers from the library's metadata must classify as
// emergency in their country, whatever the plan says about internal
// numbers: the one misclassification that can cost a life. The
// candidates are each region's example emergency number and the common
// ones.
func TestClassifyEveryEmergencyNumber(t *testing.T) {
	coll, err := phonenumbers.ShortNumberMetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"000", "08", "100", "101", "102", "108", "110", "111", "112", "113", "115", "117", "118", "119",
		"15", "17", "18", "190", "911", "999", "10111", "061", "062", "066", "080", "088"}
	checked := 0
	for _, md := range coll.GetMetadata() {
		country := md.GetId()
		cands := append([]string{md.GetEmergency().GetExampleNumber()}, common...)
		for _, d := range cands {
			if d == "" || !phonenumbers.IsEmergencyNumber(d, country) {
				continue
			}
			checked++
			for _, maxLen := range []int{0, 2, 8} {
				plan := tollguard.NumberPlan{Country: country, InternalMaxLen: maxLen}
				if got := tollguard.Classify(d, plan, tollguard.DefaultHighRiskList()); got.Class != tollguard.ClassEmergency {
					t.Errorf("Classify(%q, %s, internal %d).Class = %s, want emergency", d, country, maxLen, got.Class)
				}
			}
			if !tollguard.IsEmergency(d, country) {
				t.Errorf("IsEmergency(%q, %s) = false", d, country)
			}
		}
	}
	if checked < 200 {
		t.Errorf("checked only %d emergency numbers; the metadata seems missing", checked)
	}
}

func TestPlanFor(t *testing.T) {
	tests := []struct {
		country      string
		national     string
		intl         string
		wantErr      bool
		wantMaxLen   int
		wantCountryU string
	}{
		{country: "GB", national: "0", intl: "00"},
		{country: "US", national: "1", intl: "011"},
		{country: "CA", national: "1", intl: "011"},
		{country: "JM", national: "1", intl: "011"},
		{country: "DE", national: "0", intl: "00"},
		{country: "FR", national: "0", intl: "00"},
		{country: "AU", national: "0", intl: "0011"},
		{country: "JP", national: "0", intl: "010"},
		{country: "RU", national: "8", intl: "810"},
		{country: "IT", national: "", intl: "00"},
		{country: "BR", national: "0", intl: ""}, // several carrier-select IDDs: leave it to the library
		{country: " gb ", national: "0", intl: "00"},
		{country: "ZZ", wantErr: true},
		{country: "001", wantErr: true},
		{country: "", wantErr: true},
		{country: "United Kingdom", wantErr: true},
	}
	for _, tt := range tests {
		p, err := tollguard.PlanFor(tt.country)
		if tt.wantErr {
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Errorf("PlanFor(%q) error = %v, want EINVALID", tt.country, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("PlanFor(%q): %v", tt.country, err)
			continue
		}
		want := tollguard.NumberPlan{Country: strings.ToUpper(strings.TrimSpace(tt.country)), NationalPrefix: tt.national, IntlPrefix: tt.intl, InternalMaxLen: tollguard.DefaultInternalMaxLen}
		if p != want {
			t.Errorf("PlanFor(%q) = %+v, want %+v", tt.country, p, want)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("PlanFor(%q).Validate(): %v", tt.country, err)
		}
	}
}

// Every country's own prefixes are a valid plan, the prefix clash check
// included.
func TestEveryCountrysOwnPlanValidates(t *testing.T) {
	for region := range phonenumbers.GetSupportedRegions() {
		p, err := tollguard.PlanFor(region)
		if err != nil {
			t.Errorf("PlanFor(%s): %v", region, err)
			continue
		}
		if err := p.Validate(); err != nil {
			t.Errorf("PlanFor(%s) = %+v: %v", region, p, err)
		}
	}
}

func TestNumberPlanValidate(t *testing.T) {
	tests := []struct {
		name string
		plan tollguard.NumberPlan
		ok   bool
	}{
		{"country only", tollguard.NumberPlan{Country: "GB"}, true},
		{"full", tollguard.NumberPlan{Country: "US", NationalPrefix: "1", IntlPrefix: "011", InternalMaxLen: 5}, true},
		{"unknown country", tollguard.NumberPlan{Country: "XX"}, false},
		{"no country", tollguard.NumberPlan{}, false},
		{"letters in national prefix", tollguard.NumberPlan{Country: "GB", NationalPrefix: "O"}, false},
		{"plus in international prefix", tollguard.NumberPlan{Country: "GB", IntlPrefix: "+"}, false},
		{"negative internal length", tollguard.NumberPlan{Country: "GB", InternalMaxLen: -1}, false},
		{"internal length too long", tollguard.NumberPlan{Country: "GB", InternalMaxLen: 9}, false},
		// A prefix left empty is the country's own: GB's international
		// prefix is 00, US's national prefix 1.
		{"national prefix is the country's international", tollguard.NumberPlan{Country: "GB", NationalPrefix: "00"}, false},
		{"international prefix is the country's national", tollguard.NumberPlan{Country: "US", IntlPrefix: "1"}, false},
		// The international prefix is matched first: 01 beside 0 would
		// read DE 0151 2345678 as +51 (Peru).
		{"international prefix begins national numbers", tollguard.NumberPlan{Country: "DE", IntlPrefix: "01"}, false},
		{"international prefix begins national numbers, both given", tollguard.NumberPlan{Country: "GB", NationalPrefix: "0", IntlPrefix: "07"}, false},
		{"national prefix begins with the international", tollguard.NumberPlan{Country: "GB", NationalPrefix: "000", IntlPrefix: "00"}, false},
		{"international prefix no national number begins", tollguard.NumberPlan{Country: "DE", IntlPrefix: "000"}, true},
		{"US 011 beside 1", tollguard.NumberPlan{Country: "US", NationalPrefix: "1", IntlPrefix: "011"}, true},
		{"RU 810 beside 8", tollguard.NumberPlan{Country: "RU", NationalPrefix: "8", IntlPrefix: "810"}, true},
		{"US 12 beside 1", tollguard.NumberPlan{Country: "US", NationalPrefix: "1", IntlPrefix: "12"}, false},
	}
	for _, tt := range tests {
		err := tt.plan.Validate()
		if tt.ok != (err == nil) {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("%s: error code %q, want EINVALID", tt.name, tollguard.ErrorCode(err))
		}
	}
}

func TestNumberIsAndToll(t *testing.T) {
	hr := tollguard.DefaultHighRiskList()
	tests := []struct {
		name    string
		dialled string
		plan    tollguard.NumberPlan
		is      []tollguard.Class
		toll    bool
	}{
		{"international premium", "+1 900 234 5678", planGB, []tollguard.Class{tollguard.ClassPremium, tollguard.ClassInternational}, true},
		{"high-risk international", "+252611234567", planGB, []tollguard.Class{tollguard.ClassHighRisk, tollguard.ClassInternational}, true},
		{"IPRS is high risk and premium", "+979123456789", planGB, []tollguard.Class{tollguard.ClassHighRisk, tollguard.ClassPremium, tollguard.ClassInternational}, true},
		{"national", "02079460000", planGB, []tollguard.Class{tollguard.ClassNational}, true},
		{"toll free", "08001234567", planGB, []tollguard.Class{tollguard.ClassTollFree}, false},
		{"emergency", "999", planGB, []tollguard.Class{tollguard.ClassEmergency}, false},
		{"internal", "1001", planGB, []tollguard.Class{tollguard.ClassInternal}, false},
		{"unknown", "*97", planGB, []tollguard.Class{tollguard.ClassUnknown}, true},
	}
	for _, tt := range tests {
		n := tollguard.Classify(tt.dialled, tt.plan, hr)
		for _, c := range tollguard.Classes {
			if want := slices.Contains(tt.is, c); n.Is(c) != want {
				t.Errorf("%s: Is(%s) = %v, want %v (number %+v)", tt.name, c, n.Is(c), want, n)
			}
		}
		if n.Toll() != tt.toll {
			t.Errorf("%s: Toll() = %v, want %v", tt.name, n.Toll(), tt.toll)
		}
	}
}

// FuzzClassify checks the invariants the policy relies on, for any input:
// no panic, a known class, emergency exactly when IsEmergency says so,
// and an E.164 only for classes that have one.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"999", "112#", "+112", "00112", "02079460000", "+1 876 925 1234", "011 44 20 7946 0000",
		"1-900-234-5678", "+881612345678", "118118", "*97", "", "+", "0044", "٠٢٠", "1 (800) FLOWERS", "++44",
		// Codes before a number: carrier selection, caller ID.
		"01013 00 683 123", "1470 118118", "01 682 12345", "141 999", "*67911", "#31#110", "1414 02946000"} {
		for _, c := range []string{"GB", "US", "FR", "", "zz", "DE", "AU"} {
			f.Add(s, c, 0)
		}
	}
	f.Add("0044 20 7946 0000", "US", 6)
	hr := tollguard.DefaultHighRiskList()
	f.Fuzz(func(t *testing.T, dialled, country string, maxLen int) {
		// The country's real plan (its national and international
		// prefixes) when it has one, so prefix stripping is fuzzed too.
		plan, err := tollguard.PlanFor(country)
		if err != nil {
			plan = tollguard.NumberPlan{Country: country}
		}
		plan.InternalMaxLen = maxLen % 10
		n := tollguard.Classify(dialled, plan, hr)
		// A number dialled with the plan's international prefix is the
		// same number as with '+' (once too long to be an extension).
		if digits, ok := strings.CutPrefix(dialled, "+"); ok && plan.IntlPrefix != "" && digits != "" && strings.Trim(digits, "0123456789") == "" {
			internal := plan.InternalMaxLen
			if internal <= 0 {
				internal = tollguard.DefaultInternalMaxLen
			}
			if viaPrefix := plan.IntlPrefix + digits; len(viaPrefix) > internal {
				m := tollguard.Classify(viaPrefix, plan, hr)
				if m.E164 != n.E164 || m.Region != n.Region || m.Type != n.Type || m.Class != n.Class {
					t.Fatalf("Classify(%q) = %+v, but %q gives %+v", dialled, n, viaPrefix, m)
				}
			}
		}
		if !slices.Contains(tollguard.Classes, n.Class) {
			t.Fatalf("Classify(%q, %q) class %q is not a known class", dialled, country, n.Class)
		}
		if em := tollguard.IsEmergency(dialled, country); em != (n.Class == tollguard.ClassEmergency) {
			t.Fatalf("Classify(%q, %q).Class = %s but IsEmergency = %v", dialled, country, n.Class, em)
		}
		switch n.Class {
		case tollguard.ClassEmergency, tollguard.ClassInternal, tollguard.ClassUnknown:
			if n.E164 != "" {
				t.Fatalf("Classify(%q, %q): class %s with E164 %q", dialled, country, n.Class, n.E164)
			}
		}
		if n.Short && (n.E164 != "" || n.International || n.Region != strings.ToUpper(strings.TrimSpace(country))) {
			t.Fatalf("Classify(%q, %q) = %+v: a short code has no E.164 form and is the plan country's own", dialled, country, n)
		}
		if n.E164 != "" {
			if n.E164[0] != '+' || len(n.E164) > 16 {
				t.Fatalf("Classify(%q, %q).E164 = %q: not E.164", dialled, country, n.E164)
			}
			// The E.164 form must classify the same from anywhere but
			// for International, which depends on the caller's country.
			again := tollguard.Classify(n.E164, plan, hr)
			if again.E164 != n.E164 || again.Region != n.Region || again.Type != n.Type || again.HighRisk != n.HighRisk {
				t.Fatalf("Classify(%q) = %+v, but its E.164 form gives %+v", dialled, n, again)
			}
		}
		if (n.Class == tollguard.ClassHighRisk) != (n.HighRisk != "") {
			t.Fatalf("Classify(%q, %q): class %s with HighRisk %q", dialled, country, n.Class, n.HighRisk)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	hr := tollguard.DefaultHighRiskList()
	for _, d := range []string{"02079460000", "011 44 20 7946 0000", "999"} {
		b.Run(d, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tollguard.Classify(d, planGB, hr)
			}
		})
	}
}

func TestEmergencyNumbers(t *testing.T) {
	tests := []struct {
		country string
		want    []string
	}{
		{"GB", []string{"112", "911", "999"}},
		{"US", []string{"112", "911", "999"}},
		{"FR", []string{"15", "17", "18", "112", "114", "115", "119", "191", "196", "197", "911", "999", "116000"}},
		{"CH", []string{"112", "117", "118", "143", "144", "145", "147", "911", "999", "1414", "1415"}},
		{"DE", []string{"110", "112", "911", "999"}},
		{"AU", []string{"000", "106", "112", "911", "999"}},
		{"JP", []string{"110", "112", "118", "119", "911", "999"}},
		{"IT", []string{"112", "113", "114", "115", "117", "118", "911", "999", "1515", "1530"}},
		{"PL", []string{"112", "911", "984", "985", "986", "987", "991", "992", "993", "994", "995", "996", "997", "998", "999"}},
		{"ES", []string{"061", "062", "080", "085", "088", "091", "092", "112", "911", "999"}},
		{"AT", []string{"112", "122", "128", "133", "140", "141", "142", "144", "147", "911", "999"}},
		{"ZA", []string{"107", "112", "911", "999", "10111", "10177"}},
		{"BR", []string{"112", "128", "153", "185", "190", "191", "192", "193", "194", "197", "198", "199", "911", "999"}},
		{"CN", []string{"110", "112", "119", "120", "122", "911", "999", "12395"}},
		{"NO", []string{"110", "112", "113", "911", "999", "1412"}},
		{"AR", []string{"100", "101", "103", "107", "112", "911", "999"}},
		{"", []string{"112", "911", "999"}},
	}
	for _, tt := range tests {
		got := tollguard.EmergencyNumbers(tt.country)
		if !slices.Equal(got, tt.want) {
			t.Errorf("EmergencyNumbers(%q) = %v, want %v", tt.country, got, tt.want)
		}
		for _, d := range got {
			if !tollguard.IsEmergency(d, tt.country) {
				t.Errorf("EmergencyNumbers(%q) lists %s, which IsEmergency rejects", tt.country, d)
			}
		}
	}
}

// TestPricedBy: a deck row of a whole calling code prices the code's
// main region (for +1 the US and Canada) only.
func TestPricedBy(t *testing.T) {
	for _, tc := range []struct {
		dialled, country, prefix string
		ok                       bool
		covers                   string
	}{
		{"0012015550123", "GB", "1", true, ""},           // US
		{"0015062345678", "GB", "1", true, ""},           // CA
		{"0012423591234", "GB", "1", false, "US and CA"}, // BS
		{"0013459491234", "GB", "1", false, "US and CA"}, // KY
		{"0012423591234", "GB", "1242", true, ""},        // its own row
		{"0017872345678", "GB", "1", false, "US and CA"}, // PR
		{"16045551234", "US", "1", true, ""},             // CA from the US
		{"011447797712345", "US", "44", false, "GB"},     // a Jersey mobile
		{"011447797712345", "US", "447", false, "GB"},    // a UK mobile row
		{"011447797712345", "US", "4477", false, "GB"},   // so is this
		{"011447797712345", "US", "447797", true, ""},    // Jersey's own row
		{"01534123456", "GB", "441534", true, ""},        // Jersey's fixed lines
		{"01534123456", "GB", "4415", false, "GB"},       // a GB row
		{"0012423591234", "GB", "12", false, "US and CA"},
		{"0077710009998", "GB", "777", true, ""},     // KZ's own row
		{"0061891641234", "GB", "618", false, "AU"},  // Christmas Island under a Western Australia row
		{"0061891641234", "GB", "6189164", true, ""}, // its own
		{"011442079460000", "US", "44", true, ""},    // GB
		{"0077710009998", "GB", "7", false, "RU"},    // KZ
		{"0074012345678", "GB", "7", true, ""},       // RU
		{"0088213012345", "GB", "882", true, ""},     // non-geographic
		{"02079460000", "GB", "44", true, ""},        // national
		{"01534123456", "GB", "44", false, "GB"},     // Jersey from GB is international
		{"004930123456", "GB", "49", true, ""},       // DE
		{"19835550123", "US", "1", true, ""},         // a US area code newer than the metadata
		{"0019835550123", "GB", "1", true, ""},       // the same from abroad
	} {
		n := tollguard.Classify(tc.dialled, tollguard.NumberPlan{Country: tc.country}, nil)
		ok, covers := n.PricedBy(tc.prefix)
		if ok != tc.ok || covers != tc.covers {
			t.Errorf("%s from %s (%s, %s) by +%s: %v %q, want %v %q", tc.dialled, tc.country, n.E164, n.Region, tc.prefix, ok, covers, tc.ok, tc.covers)
		}
	}
}

func TestAllowRuleNote(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"+1", "+1 allows US and CA only; the other regions sharing +1 (AG, AI, AS, BB, BM, BS, DM, DO, GD, GU, JM, KN, KY, LC, MP, MS, PR, SX, TC, TT, VC, VG, VI) need rules of their own prefixes"},
		{"44", "+44 allows GB only; the other regions sharing +44 (GG, IM, JE) need rules of their own prefixes"},
		{"+7", "+7 allows RU only; the other regions sharing +7 (KZ) need rules of their own prefixes"},
		{"+49", ""},
		{"+1876", ""},
		{"+4420", ""},
		{"+abc", ""},
	} {
		if got := tollguard.AllowRuleNote(tc.prefix); got != tc.want {
			t.Errorf("AllowRuleNote(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// languageHasPrefix: whether some string a libphonenumber pattern
// matches whole begins with prefix.
func TestLanguageHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		pattern, prefix string
		want            bool
	}{
		{`7(?:[1-3]\d\d|4(?:[0-46-9]\d|5[0-689]))\d{6}`, "7", true},
		{`7(?:[1-3]\d\d|4(?:[0-46-9]\d|5[0-689]))\d{6}`, "745", true},
		{`7(?:[1-3]\d\d|4(?:[0-46-9]\d|5[0-689]))\d{6}`, "7457", false},
		{`(?:2\d|3[0-5])\d{2,4}`, "35", true},
		{`(?:2\d|3[0-5])\d{2,4}`, "36", false},
		{`(?:(?:1|2)?3){2}4`, "334", true},
		{`(?:(?:1|2)?3){2}4`, "3314", false},
		// A prefix that is itself a whole match begins one.
		{`0\d{4}`, "02000", true},
		{`0\d{4}`, "020001", false},
		{`44`, "44", true},
		{``, "", true},
		{``, "1", false},
		// An unreadable pattern is the worst case, asked again too.
		{`(`, "1", true},
		{`(`, "1", true},
	} {
		if got := tollguard.LanguageHasPrefix(tc.pattern, tc.prefix); got != tc.want {
			t.Errorf("languageHasPrefix(%q, %q) = %v, want %v", tc.pattern, tc.prefix, got, tc.want)
		}
	}
}
