package tollguard_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// deckRow is one fn call of ParseRateDeck.
type deckRow struct {
	line int
	e    tollguard.RateEntry
}

func collectDeck(in string) ([]deckRow, error) {
	var rows []deckRow
	err := tollguard.ParseRateDeck(strings.NewReader(in), func(line int, e tollguard.RateEntry) error {
		rows = append(rows, deckRow{line, e})
		return nil
	})
	return rows, err
}

func rate(t testing.TB, s string) tollguard.Rate {
	t.Helper()
	r, err := tollguard.ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ent is a deck entry billed by the second with no fee.
func ent(prefix, dest string, r tollguard.Rate) tollguard.RateEntry {
	return tollguard.RateEntry{Prefix: prefix, Destination: dest, Rate: r, Billing: tollguard.Billing{Initial: 1, Increment: 1}}
}

// priced gives e the deck's currency.
func priced(e tollguard.RateEntry, currency string) tollguard.RateEntry {
	e.Currency = currency
	return e
}

// billed gives e the billing steps first/step and a connection fee in
// micro-units.
func billed(e tollguard.RateEntry, first, step int64, fee tollguard.Fee) tollguard.RateEntry {
	e.Billing = tollguard.Billing{Initial: first, Increment: step, Connect: fee}
	return e
}

func TestParseRateDeck(t *testing.T) {
	type row = deckRow
	tests := []struct {
		name string
		in   string
		want func(t *testing.T) []deckRow
	}{
		{
			name: "plain comma deck",
			in:   "prefix,destination,rate\n44,United Kingdom,0.01\n4420,UK London,0.005\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "United Kingdom", rate(t, "0.01"))}, {3, ent("4420", "UK London", rate(t, "0.005"))}}
			},
		},
		{
			name: "semicolons, BOM, carrier names, extra columns, decimal comma",
			in:   "\ufeffDial Code;Country;Rate Per Minute;Effective Date;Increment\n+44 20;UK London;0,0123;2026-01-01;60/60\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, billed(ent("4420", "UK London", rate(t, "0.0123")), 60, 60, 0)}}
			},
		},
		{
			name: "billing steps and a connection fee",
			in: "prefix,destination,rate,billing,connection fee\n" +
				"44,UK,0.01,30/6,0.05\n33,FR,0.02,1/1,\n34,ES,0.03,60,0\n35,PT,0.04, 60s / 60s ,0.000001\n36,HU,0.05,60+1,\n",
			want: func(t *testing.T) []deckRow {
				return []row{
					{2, billed(ent("44", "UK", rate(t, "0.01")), 30, 6, 50000)},
					{3, ent("33", "FR", rate(t, "0.02"))},
					{4, billed(ent("34", "ES", rate(t, "0.03")), 60, 60, 0)},
					{5, billed(ent("35", "PT", rate(t, "0.04")), 60, 60, 1)},
					{6, billed(ent("36", "HU", rate(t, "0.05")), 60, 1, 0)},
				}
			},
		},
		{
			name: "the first step in a column of its own, a decimal-comma fee",
			in:   "Code;Rate;Min Duration;Increment;Setup Fee\n44;0,01;60;6;0,05\n33;0,02;30;30/30;\n",
			want: func(t *testing.T) []deckRow {
				return []row{
					{2, billed(ent("44", "", rate(t, "0.01")), 60, 6, 50000)},
					{3, billed(ent("33", "", rate(t, "0.02")), 30, 30, 0)},
				}
			},
		},
		{
			name: "carriers' other names for the terms, a minimum of 0 is none",
			in:   "Prefix;Rate;Interval 1;Interval N;Connection Cost\n44;0,10;60;60;0,05\n33;0,02;0;6;\n",
			want: func(t *testing.T) []deckRow {
				return []row{
					{2, billed(ent("44", "", rate(t, "0.10")), 60, 60, 50000)},
					{3, billed(ent("33", "", rate(t, "0.02")), 6, 6, 0)},
				}
			},
		},
		{
			name: "trailing empty fields, a per-60s unit",
			in:   "prefix,destination,Rate [per 60s]\n44,UK,0.01,,\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "UK", rate(t, "0.01"))}}
			},
		},
		{
			name: "title lines above the header",
			in:   "Carrier X wholesale rates\nEffective 2026-01-01\n\nCode,Description,Price\n1876,Jamaica,0.25\n",
			want: func(t *testing.T) []deckRow {
				return []row{{5, ent("1876", "Jamaica", rate(t, "0.25"))}}
			},
		},
		{
			name: "quoted fields hold the separator",
			in:   "prefix,destination,rate\n\"33\",\"France, mobile\",\"0.02\"\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("33", "France, mobile", rate(t, "0.02"))}}
			},
		},
		{
			name: "several prefixes in one cell",
			in:   "Prefixes,Destination,Price / min\n\"4420, 4421|+44 29\",UK cities,0.01\n",
			want: func(t *testing.T) []deckRow {
				r := rate(t, "0.01")
				return []row{{2, ent("4420", "UK cities", r)}, {2, ent("4421", "UK cities", r)}, {2, ent("4429", "UK cities", r)}}
			},
		},
		{
			name: "a repeated prefix at the same rate is taken once",
			in:   "prefix,rate\n44,0.01\n44,0.010\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "", rate(t, "0.01"))}}
			},
		},
		{
			name: "tabs, CRLF, columns in another order, no destination",
			in:   "Rate/Min\tCode\r\n0.5\t979\r\n\r\n0.000001\t1\r\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("979", "", rate(t, "0.5"))}, {4, ent("1", "", rate(t, "0.000001"))}}
			},
		},
		{
			name: "bare CR line endings (classic Mac export)",
			in:   "Carrier X\rprefix,destination,rate\r44,United Kingdom,0.01\r\"1876\",\"Jamaica\",0.25\r",
			want: func(t *testing.T) []deckRow {
				return []row{{3, ent("44", "United Kingdom", rate(t, "0.01"))}, {4, ent("1876", "Jamaica", rate(t, "0.25"))}}
			},
		},
		{
			name: "the better-named column wins",
			in:   "code,prefix,country,destination,rate\n1,44,GB,United Kingdom,0.01\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "United Kingdom", rate(t, "0.01"))}}
			},
		},
		{
			name: "free destinations and a currency unit in the header",
			in:   "Prefix,Name,Rate (GBP)\n44800,UK freephone,0\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, priced(ent("44800", "UK freephone", 0), "GBP")}}
			},
		},
		{
			name: "a currency column, one code for the deck, rows without it take it",
			in:   "prefix,rate,currency\n44,0.01,\n33,0.02,usd\n34,0.03,USD\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "", rate(t, "0.01"))}, {3, priced(ent("33", "", rate(t, "0.02")), "USD")}, {4, priced(ent("34", "", rate(t, "0.03")), "USD")}}
			},
		},
		{
			name: "a unit that names no currency",
			in:   "prefix,Rate per minute (MIN)\n44,0.01\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "", rate(t, "0.01"))}}
			},
		},
		{
			// Named like a price, but not a price per minute.
			name: "a rate beside columns that are no rate column",
			in:   "prefix,rate,Old Rate,Rate Type,Rate Change,Connection Rate,Effective Date\n44,0.01,0.02,peak,up,0.05,2026-01-01\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, billed(ent("44", "", rate(t, "0.01")), 1, 1, 50000)}}
			},
		},
		{
			name: "a price per second beside the price per minute is ignored, in either order",
			in:   "prefix,Rate (per second),rate/sec,Rate,Price per Sec\n44,0.0001,0.0001,0.006,0.0001\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "", rate(t, "0.006"))}}
			},
		},
		{
			// The whole prefix beside its country code is no split; an
			// empty code cell says nothing.
			name: "a country code column beside whole prefixes",
			in:   "Country Code,Prefix,Area Code,Rate\n44,4420,20,0.005\n44,44,,0.01\n+1,1212,212,0.002\n0044,44161,0161,0.004\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("4420", "", rate(t, "0.005"))}, {3, ent("44", "", rate(t, "0.01"))}, {4, ent("1212", "", rate(t, "0.002"))},
					{5, ent("44161", "", rate(t, "0.004"))}}
			},
		},
		{
			// Jamaica's code written as its NANP area code (others write
			// 1-876): the prefix holds it after the 1.
			name: "a country code column giving a NANP area code",
			in:   "Country,Country Code,Prefix,Rate\nJamaica,876,1876,0.1\nJamaica Mobile,876,1876210,0.2\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("1876", "Jamaica", rate(t, "0.1"))}, {3, ent("1876210", "Jamaica Mobile", rate(t, "0.2"))}}
			},
		},
		{
			// The area column giving the whole code, as the prefix does:
			// beside a country code column the prefix begins with, in
			// either order, or holding more than a country code alone.
			name: "an area code column giving the whole prefix",
			in:   "Country Code,Prefix,Area Code,Rate\n44,4420,4420,0.005\n1,1876,1876,0.1\n1876,1876210,1876,0.2\n20,20,20,0.05\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("4420", "", rate(t, "0.005"))}, {3, ent("1876", "", rate(t, "0.1"))}, {4, ent("1876210", "", rate(t, "0.2"))},
					{5, ent("20", "", rate(t, "0.05"))}}
			},
		},
		{
			name: "an area code column giving the whole prefix, before the country code column",
			in:   "Area Code,Prefix,Country Code,Rate\n4420,4420,44,0.005\n0161,44161,0044,0.004\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("4420", "", rate(t, "0.005"))}, {3, ent("44161", "", rate(t, "0.004"))}}
			},
		},
		{
			// Prefixes that begin with their country code's digits, read
			// whole: Moscow's 495 and St Petersburg's 812 after 7 (no
			// number is +7 7495), Almaty whole, Kazakhstan's 7 7 and the 7
			// alone; Berlin's 4930 could be +49 4930 too, and stays whole.
			// Kazakhstan's +7 6 and +7 0 blocks (2024) are newer than the
			// numbering data: 76 and 70 beside 7 are those blocks, whole.
			name: "whole prefixes beginning with the digits of the code they are under",
			in: "Destination,Country Code,Prefix,Area Code,Rate\nMoscow,7,7495,495,0.02\nSt Petersburg,7,7812,7812,0.02\nAlmaty,7,7727,727,0.05\n" +
				"Kazakhstan,7,77,,0.06\nRussia,7,7,,0.03\nBerlin,49,4930,30,0.01\nKazakhstan,7,76,,0.06\nKazakhstan,7,70,,0.06\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("7495", "Moscow", rate(t, "0.02"))}, {3, ent("7812", "St Petersburg", rate(t, "0.02"))}, {4, ent("7727", "Almaty", rate(t, "0.05"))},
					{5, ent("77", "Kazakhstan", rate(t, "0.06"))}, {6, ent("7", "Russia", rate(t, "0.03"))}, {7, ent("4930", "Berlin", rate(t, "0.01"))},
					{8, ent("76", "Kazakhstan", rate(t, "0.06"))}, {9, ent("70", "Kazakhstan", rate(t, "0.06"))}}
			},
		},
		{
			// The area code column shows the prefix is the country code
			// and the area code (49 and 012), where the numbering data has
			// no numbers (Germany's innovative services, (0)12): read as
			// +49 4912 instead, it was refused and 494912 asked for.
			name: "a prefix its area code column shows whole, in a range the numbering data lacks",
			in:   "Destination,Country Code,Prefix,Area Code,Rate\nGermany innovative services,49,4912,012,0.1\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("4912", "Germany innovative services", rate(t, "0.1"))}}
			},
		},
		{
			name: "a country code column written with a dash or brackets",
			in:   "Country Code,Prefix,Rate\n1-268,1268,0.1\n(1) 242,1242,0.1\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("1268", "", rate(t, "0.1"))}, {3, ent("1242", "", rate(t, "0.1"))}}
			},
		},
		{
			name: "a currency column cell that is no ISO code is ignored, as before decks had a currency",
			in:   "prefix,rate,currency\n44,0.01,$\n33,0.02,Euro\n",
			want: func(t *testing.T) []deckRow {
				return []row{{2, ent("44", "", rate(t, "0.01"))}, {3, ent("33", "", rate(t, "0.02"))}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collectDeck(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(t); !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

func TestParseRateDeckErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		calls int      // fn calls before the error
		want  []string // in the message
	}{
		{name: "empty file", in: "", want: []string{"empty"}},
		{name: "no header", in: "44,United Kingdom,0.01\n", want: []string{"no header row", "prefix,destination,rate"}},
		{name: "header without rate", in: "prefix,destination\n44,UK\n", want: []string{"no header row"}},
		{name: "header only", in: "prefix,destination,rate\n", want: []string{"no rates below the header on line 1"}},
		{
			name:  "every bad row is listed, fn stops at the first",
			in:    "prefix,destination,rate\n44,UK,0.01\n0044,UK,0.01\n33,FR,£0.02\n34,ES,-0.01\n35,PT,\n36,HU,0.0000001\nabc,X,0.1\n37\n44,UK again,0.02\n38,IT,0.01\n\"39,VA,0.1\n",
			calls: 1,
			want: []string{
				"9 bad rows", // 0044, £, -, empty, decimals, abc, short, dup, quote
				`line 3: prefix "0044" starts with 0`,
				`line 4: rate "£0.02": not a decimal amount`,
				`line 5: rate "-0.01": must not be negative`,
				"line 6: rate is empty",
				`line 7: rate "0.0000001": too many decimal places`,
				`line 8: prefix "abc": digits only`,
				"line 9: the row has 1 field, but the header puts rate in field 3",
				"line 10: prefix 44 is also on line 2 at 0.01/min, here at 0.02/min",
				"line 12:",
			},
		},
		{name: "empty prefix", in: "prefix,rate\n,0.1\n\" \",0.1\n", want: []string{"line 2: prefix is empty", "line 3: prefix is empty"}},
		{name: "negative zero", in: "prefix;rate\n44;-0\n33;-0,000\n", calls: 0, want: []string{`line 2: rate "-0": a zero has no sign`, `line 3: rate "-0.000": a zero has no sign`}},
		{name: "decimal comma in a comma deck", in: "prefix,rate\n44,\"0,01\"\n", want: []string{`line 2: rate "0,01"`}},
		// An unquoted decimal comma splits the price: "0" would price
		// the USA free.
		{name: "decimal comma splitting a price", in: "prefix,destination,rate\n1,USA,0,0080\n882,Sat,1,50\n", want: []string{
			`line 2: the row has 4 fields, the header 3 (extra "0080")`, `line 3: the row has 4 fields, the header 3 (extra "50")`}},
		{name: "rate per second", in: "prefix,destination,Rate (per second)\n44,UK,0.01\n", want: []string{`"Rate (per second)" is priced per second`}},
		{name: "rate per sec", in: "prefix;Price [USD/sec]\n44;0,01\n", want: []string{"priced per second"}},
		{name: "rate per sec by name", in: "prefix,destination,rate/sec\n44,UK,0.0002\n", want: []string{`the rate column "rate/sec" is priced per second; tollguard takes prices per minute`}},
		{name: "price per sec by name", in: "prefix;Price/Sec (USD)\n44;0,0002\n", want: []string{`"Price/Sec (USD)" is priced per second`}},
		{name: "rate per second in words", in: "Code,Rate per sec\n44,0.0002\n", want: []string{`"Rate per sec" is priced per second`}},
		{name: "price_per_second", in: "prefix\tprice_per_second\n44\t0.0002\n", want: []string{`"price_per_second" is priced per second`}},
		{name: "two price columns", in: "prefix,destination,rate,price\n44,UK,0.01,0.02\n", want: []string{
			`line 1: the columns "rate" and "price" are each a price per minute`, "keep one and remove the other"}},
		{name: "two price columns swapped", in: "prefix,destination,price,rate\n44,UK,0.02,0.01\n", want: []string{
			`line 1: the columns "price" and "rate" are each a price per minute`, "keep one"}},
		{name: "cost beside rate", in: "code,prefix,country,destination,cost,rate\n1,44,GB,United Kingdom,9,0.01\n", want: []string{
			`the columns "cost" and "rate" are each a price per minute`}},
		{name: "three price columns", in: "Prefix;Rate (EUR);Price/min;Cost Per Minute\n44;0,01;0,01;0,01\n", want: []string{
			`the columns "Rate (EUR)", "Price/min" and "Cost Per Minute" are each a price per minute`, "keep one and remove the others"}},
		{name: "split prefix", in: "Country,Country Code,Area Code,Rate\nUK,44,20,0.0050\n", want: []string{"the prefix is split over columns"}},
		// "name it billing" for a column named billing.
		{name: "two columns of billing steps", in: "prefix,destination,rate,billing,increment\n44,UK,0.01,60/60,1/1\n",
			want: []string{`line 2: the "increment" and "billing" columns both give billing steps ("1/1" and "60/60")`}},
		// Beside a prefix column, the split was read as the area code
		// alone: +20, Egypt, at the UK's rate.
		{name: "split prefix beside a prefix column", in: "Country Code,Prefix,Rate\n44,4420,0.005\n44,20,0.0050\n", calls: 1,
			want: []string{"line 3: prefix 20 does not begin with 44, the \"Country Code\" column's", "(4420)", "if the \"Country Code\" column is for information only"}},
		// Split NANP: 876 alone is no country's, 1 alone is no Jamaica.
		{name: "NANP area code beside a prefix column", in: "Country Code,Prefix,Rate\n1,876,0.1\n876,76,0.1\n",
			want: []string{"line 2: prefix 876 does not begin with 1", "line 3: prefix 76 does not begin with 876"}},
		// Only the first code column was checked: with the area column
		// first, a row without an area code was never checked against its
		// country code (line 4, +20 at the UK's rate).
		{name: "split prefix with the area code column first", in: "Area Code,Prefix,Country Code,Rate\n20,20,44,0.005\n4420,20,44,0.005\n,20,44,0.005\n",
			want: []string{"line 2: prefix 20 does not begin with 44, the \"Country Code\" column's", "line 3: prefix 20 does not begin with 44", "line 4: prefix 20 does not begin with 44"}},
		{name: "split prefix, the area code column giving the same", in: "Country Code,Prefix,Area Code,Rate\n44,20,20,0.005\n",
			want: []string{"line 2: prefix 20 does not begin with 44"}},
		// With no country code, 20 beside 20 may be London's area code
		// alone: it would price +20, Egypt.
		{name: "an area code alone in both columns", in: "Prefix,Area Code,Rate\n20,20,0.005\n", calls: 0,
			want: []string{`line 2: prefix 20 and the "Area Code" column's 20 are the same, and no country code column says the prefix is whole`, "add a country code column"}},
		// Nor when it is longer than the country code it begins with:
		// London's 020 7, Lochmaddy's 01876 and Heidelberg's 06221 (a
		// spreadsheet drops the 0) were priced as +20 7 (Egypt), +1 876
		// (Jamaica) and +62 21 (Jakarta). Digits cannot tell them from a
		// whole 4420: only a country code column can.
		{name: "an area code alone in both columns, longer than a country code", in: "Prefix,Area Code,Rate\n207,207,0.005\n1876,01876,0.005\n6221,6221,0.005\n4420,4420,0.005\n", calls: 0,
			want: []string{`line 2: prefix 207 and the "Area Code" column's 207 are the same`, `line 3: prefix 1876 and the "Area Code" column's 1876 are the same`,
				`line 4: prefix 6221 and the "Area Code" column's 6221`, `line 5: prefix 4420 and the "Area Code" column's 4420`}},
		// Only begun by it, the prefix was said to be "the same".
		{name: "a prefix beginning with the area code column's, no country code", in: "Prefix,Area Code,Rate\n9122,91,0.05\n", calls: 0,
			want: []string{`line 2: prefix 9122 begins with the "Area Code" column's 91, and no country code column says the prefix is whole`}},
		// A country code written 1-268 (Antigua) said nothing, and 268
		// beside it was priced as +268, Eswatini.
		{name: "split NANP prefix, the country code written with a dash", in: "Country Code,Prefix,Rate\n1-268,268,0.1\n(1) 242,242,0.1\n1.246,246,0.1\n", calls: 0,
			want: []string{"line 2: prefix 268 does not begin with 1268", "line 3: prefix 242 does not begin with 1242", "line 4: prefix 246 does not begin with 1246",
				// The whole prefix suggested is the code, not 1268268.
				"in one column (1268)", "in one column (1242)"}},
		// A country code column under another carrier's name said
		// nothing: 20 beside it was priced as +20, Egypt.
		{name: "split prefix beside a country code column named otherwise", in: "Country Calling Code,Prefix,Rate\n44,20,0.005\n", calls: 0,
			want: []string{"line 2: prefix 20 does not begin with 44, the \"Country Calling Code\" column's"}},
		{name: "split prefix beside a country prefix column", in: "Destination,Country Prefix,Prefix,Rate\nUK London,44,20,0.005\n", calls: 0,
			want: []string{"line 2: prefix 20 does not begin with 44, the \"Country Prefix\" column's"}},
		// Kazakhstan's numbers begin with 7 after its code 7: Almaty's 727
		// beside 7 began with the code, and was priced as +7 27, where no
		// number is, instead of +7 727. So with the area code beside it
		// (line 3), or none (line 4), Astana's 7172 (+7 172) and a mobile
		// 701 (+7 01).
		{name: "split prefix beginning with its country code's digits", in: "Country Code,Prefix,Area Code,Rate\n7,7727,727,0.05\n7,727,727,0.05\n7,727,,0.05\n7,7172,7172,0.05\n7,701,,0.1\n", calls: 1,
			want: []string{"4 bad rows",
				`line 3: prefix 727 begins with 7, the "Country Code" column's, but read whole it is +7 27, where no number is, while +7 727 is: is the prefix split over the two? Give the whole prefix in one column (7727)`,
				"line 4: prefix 727 begins with 7", "line 5: prefix 7172 begins with 7", "(77172)", "line 6: prefix 701 begins with 7", "(7701)",
				`if 727 is whole (a range newer than tollguard's numbering data) or the "Country Code" column is for information only, rename that column`}},
		// One digit past the code is whole only where the code has a
		// block there newer than the numbering data (Kazakhstan's +7 0
		// and +7 6): Italy's mobile 392 and 397 beside 39 are +39 392 and
		// +39 397, not +39 2 and +39 7, where no number is.
		{name: "split prefix one digit past its country code", in: "Destination,Country Code,Prefix,Rate\nItaly Mobile,39,392,0.1\nItaly Mobile,39,397,0.1\n", calls: 0,
			want: []string{"2 bad rows", "line 2: prefix 392 begins with 39", "(39392)", "line 3: prefix 397 begins with 39", "(39397)"}},
		// Without an area code column saying so, or beside one that
		// is the prefix itself, 4912 is still read as +49 4912.
		{name: "a prefix in a range the numbering data lacks, no area code saying it is whole", in: "Country Code,Prefix,Area Code,Rate\n49,4912,,0.1\n49,4912,4912,0.1\n", calls: 0,
			want: []string{"line 2: prefix 4912 begins with 49", "line 3: prefix 4912 begins with 49", "(494912)"}},
		{name: "split prefix beginning with its country code's digits, no area code column", in: "Country,Calling Code,Prefix,Rate\nKazakhstan Almaty,7,727,0.05\n", calls: 0,
			want: []string{`line 2: prefix 727 begins with 7, the "Calling Code" column's, but read whole it is +7 27`, "(7727)"}},
		{name: "area code beside a prefix column", in: "Prefix,Area Code,Rate\n4420,20,0.005\n44,20,0.0050\n", calls: 1,
			want: []string{"line 3: prefix 44 does not hold 20, the \"Area Code\" column's", "(4420 if 44 is the country code)"}},
		{name: "huge rate cell", in: "prefix,rate\n44," + strings.Repeat("9", 100) + "\n", want: []string{"too long for a price"}},
		{name: "long prefix", in: "prefix,rate\n1234567890123456,0.1\n", want: []string{"longer than any E.164 number"}},
		{name: "bad billing steps", in: "prefix,rate,increment\n44,0.01,0/60\n33,0.01,60/x\n34,0.01,\n35,0.01,5000/60\n36,0.01,-60\n37,0.01,1.5/1\n", want: []string{
			"6 bad rows", `line 2: billing increments "0/60": 0 seconds is out of range (1 to 3600)`, `line 3: billing increments "60/x": "x" is not a whole number`,
			"line 4: the billing increments (increment) are empty", `line 5: billing increments "5000/60": 5000 seconds is out of range`, `line 6: billing increments "-60"`, `line 7: billing increments "1.5/1"`}},
		{name: "first step disagrees with the steps", in: "prefix,rate,min duration,billing\n44,0.01,30,60/60\n33,0.01,,60\n", want: []string{
			"line 2: the first billing step is 30 s, but the increments say 60/60", "line 3: the first billing step (min duration) is empty"}},
		{name: "a minimum duration without the steps after it", in: "prefix,rate,initial increment\n44,0.01,60\n", want: []string{
			`line 1: the deck gives a first billing step ("initial increment") but not the steps after it`}},
		{name: "a billing term tollguard does not read", in: "prefix,rate,billing,Minimum Charge\n44,0.01,60/60,0.05\n", want: []string{
			`line 1: column "Minimum Charge" looks like a charge tollguard cannot bill`}},
		{name: "two fee columns", in: "prefix,rate,Setup Fee,Connection Fee\n44,0.01,0.05,0.05\n", want: []string{`column "Setup Fee" looks like a charge tollguard cannot bill`}},
		{name: "steps in minutes", in: "prefix,rate,Billing Increment (min)\n44,0.01,1\n", want: []string{`the billing column "Billing Increment (min)" is in minutes`}},
		{name: "bad connection fee", in: "prefix,rate,connection fee\n44,0.01,-0.05\n33,0.01,£1\n", want: []string{
			`line 2: connection fee "-0.05": must not be negative`, `line 3: connection fee "£1": not a decimal amount`}},
		{name: "a prefix repeated with other terms", in: "prefix,rate,billing\n44,0.01,60/60\n44,0.01,1/1\n", calls: 1, want: []string{
			"line 3: prefix 44 is also on line 2 at 0.01/min billed 60/60, here at 0.01/min"}},
		{name: "currencies", in: "prefix,Rate (USD),currency\n44,0.01,USD\n33,0.01,EUR\n34,0.01,dollars\n35,0.01,XXX\n36,0.01,gbp\n", calls: 1, want: []string{
			"2 bad rows", `line 3: currency EUR, but the header's rate column "Rate (USD)" says USD`, `line 6: currency GBP, but the header's rate column "Rate (USD)" says USD`}},
		{name: "currencies by row", in: "prefix,rate,currency\n44,0.01,USD\n33,0.01,EUR\n", calls: 1, want: []string{"line 3: currency EUR, but line 2 says USD"}},
		{name: "huge destination cell", in: "prefix,destination,rate\n44," + strings.Repeat("x", 300) + ",0.01\n", want: []string{"line 2: the destination is 300 bytes long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collectDeck(tt.in)
			if err == nil {
				t.Fatalf("no error; rows %v", got)
			}
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Errorf("code %q, want EINVALID", tollguard.ErrorCode(err))
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if len(got) != tt.calls {
				t.Errorf("fn called %d times, want %d", len(got), tt.calls)
			}
		})
	}
}

// TestRateDeckCountryCodeNames: a country code column is checked under
// every name it goes by; unchecked, 20 beside 44 was priced as +20,
// Egypt.
func TestRateDeckCountryCodeNames(t *testing.T) {
	for _, name := range []string{"Country Code", "CC", "Country Calling Code", "Calling Code", "Country Prefix", "Country Dial Code",
		"Country Dialling Code", "ISD Code", "Country ISD Code", "International Calling Code", "Telephone Country Code", "Country Phone Code"} {
		_, err := collectDeck("Destination,\"" + name + "\",Prefix,Rate\nUK London,44,20,0.005\n")
		if want := fmt.Sprintf("line 2: prefix 20 does not begin with 44, the %q column's", name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", name, err, want)
		}
	}
}

// TestRateDeckUnitCurrency: a rate column's unit is a currency only
// when it holds just a code and words for per minute.
func TestRateDeckUnitCurrency(t *testing.T) {
	for header, want := range map[string]string{
		"Rate (USD)": "USD", "Rate (EUR/min)": "EUR", "Price [eur/min]": "EUR", "Rate (per min, GBP)": "GBP",
		"Rate(SEK)": "SEK", "Rate (usd per minute)": "USD",
		"Rate (ALL IN)": "", "Rate (ALL)": "", "Rate (STD)": "", "Rate (MIN)": "", "Rate (VAT)": "", "Rate (PEAK)": "",
		"Rate (USD, VAT)": "", "Rate": "", "Rate (XXX)": "", "Price [per min]": "",
	} {
		rows, err := collectDeck("prefix,\"" + header + "\"\n44,0.01\n")
		if err != nil {
			t.Errorf("%q: %v", header, err)
			continue
		}
		if len(rows) != 1 || rows[0].e.Currency != want {
			t.Errorf("%q: rows %v, want currency %q", header, rows, want)
		}
	}
}

// TestParseRateDeckIn: a currency the admin gives is carried by every
// entry; a rate column's unit or a currency column naming another code
// is refused; cells that are no code, and units that are none, are
// ignored.
func TestParseRateDeckIn(t *testing.T) {
	parse := func(in, currency string) ([]deckRow, error) {
		var rows []deckRow
		err := tollguard.ParseRateDeckIn(strings.NewReader(in), currency, func(line int, e tollguard.RateEntry) error {
			rows = append(rows, deckRow{line, e})
			return nil
		})
		return rows, err
	}
	rows, err := parse("prefix,Rate (ALL)\n44,0.01\n", "GBP")
	if err != nil || len(rows) != 1 || rows[0].e.Currency != "GBP" {
		t.Errorf("the given currency: %v, %v", rows, err)
	}
	_, err = parse("prefix,Rate (USD)\n44,0.01\n", "GBP")
	if err == nil || !strings.Contains(err.Error(), `line 1: the rate column "Rate (USD)" says USD, but the deck is imported as GBP`) {
		t.Errorf("the given currency against the unit: %v", err)
	}
	rows, err = parse("prefix,rate,currency\n44,0.01,$\n33,0.01,usd\n", "USD")
	if err != nil || len(rows) != 2 || rows[0].e.Currency != "USD" || rows[1].e.Currency != "USD" {
		t.Errorf("a symbol column with the given currency: %v, %v", rows, err)
	}
	_, err = parse("prefix,rate,currency\n44,0.01,EUR\n", "USD")
	if err == nil || !strings.Contains(err.Error(), "line 2: currency EUR, but the deck is imported as USD") {
		t.Errorf("a column against the given currency: %v", err)
	}
}

// TestRateDeckTermColumns: billing terms under carriers' names are read;
// columns that only mention billing words, or that hold something else
// under a bare name, are ignored as before decks had terms; a billing
// term tollguard does not read is refused.
func TestRateDeckTermColumns(t *testing.T) {
	for _, tc := range []struct {
		header, row, want string // want: the terms, "" per-second, "refused"
	}{
		// Not terms: imported, the column ignored.
		{"Billing Code", "X1", ""}, {"Billing Zone", "3", ""}, {"Connection Type", "mobile", ""},
		{"Interconnect Region", "EU", ""}, {"Routing Step", "2", ""}, {"Avg Call Duration", "95", ""},
		{"Contract Duration", "12", ""}, {"Stepped", "yes", ""}, {"Destination Type", "fixed", ""},
		{"Connection", "Mobile", ""}, {"Interval", "Peak", ""}, {"Setup", "2024-01-01", ""}, {"Initial", "A", ""},
		// Terms under other names.
		{"Min Dur (sec),Increment (sec)", "60,6", "60/6"}, {"Min Sec,Increment", "60,6", "60/6"},
		{"First Period,Increment", "30,6", "30/6"}, {"Increment,Conn. Fee", "60/60,0.05", "60/60, 0.05 connection fee"},
		{"Increment,Flagfall", "60/60,0.05", "60/60, 0.05 connection fee"}, {"Rating Interval", "30/6", "30/6"},
		{"Billing Increment (seconds)", "6", "6/6"}, {"Billing (Minimum/Increment)", "30/6", "30/6"},
		{"Interval", "60/60", "60/60"}, {"Connection", "0.05", "1/1, 0.05 connection fee"},
		// A minimum of 0 is none, beside one figure or two.
		{"Billing,Min Duration", "30/6,0", "30/6"}, {"Increment,Min Duration", "6,0s", "6/6"},
		// Terms tollguard does not read, or cannot.
		{"Increment,Min Charge", "60/60,0.50", "refused"}, {"Increment,Rounding", "up,x", "refused"},
		{"Increment (min)", "1", "refused"}, {"Min Duration", "60", "refused"},
		// The third review's silent drops: fees and steps under more names.
		{"Billing,Fee", "60/60,0.05", "60/60, 0.05 connection fee"}, {"Billing,Call Fee", "60/60,0.05", "60/60, 0.05 connection fee"},
		{"Billing,Per Call", "60/60,0.05", "60/60, 0.05 connection fee"}, {"Billing,Connect", "60/60,0.05", "60/60, 0.05 connection fee"},
		{"Billing,Connection Rate", "60/60,0.05", "60/60, 0.05 connection fee"}, {"Billing,Fixed Fee", "60/60,0.05", "refused"},
		{"Billing,Activation Fee", "60/60,0.05", "refused"}, {"Billing,Per-Call Charge", "60/60,0.05", "60/60, 0.05 connection fee"},
		{"Initial,Subsequent", "60,60", "60/60"}, {"Minimum,Increment", "30,6", "30/6"}, {"Min,Increment", "30,6", "30/6"},
		{"Minimal Time,Increment", "30,6", "30/6"}, {"Billing Cycle", "60/60", "60/60"}, {"Min/Inc", "60/60", "60/60"},
		{"Init/Next", "30,6", "refused"}, {"Initial", "60", "refused"}, {"Billing Block", "60/60", "60/60"},
		{"Granularity", "6", "6/6"}, {"Billing Cycle", "monthly", ""}, {"Fee", "n/a", ""},
		{"Minimum", "0.50", "refused"}, {"Price/min,Rate", "0.02,0.01", "refused"}, {"Rate per min (EUR)", "0.02", "refused"}, // two prices
	} {
		rows, err := collectDeck("Prefix,Rate," + tc.header + "\n44,0.01," + tc.row + "\n")
		switch {
		case tc.want == "refused":
			if err == nil {
				t.Errorf("%q: imported as %v, want refused", tc.header, rows)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.header, err)
		case len(rows) != 1 || rows[0].e.Billing.String() != tc.want:
			t.Errorf("%q: rows %v, want terms %q", tc.header, rows, tc.want)
		}
	}
}

// TestRateDeckSoftColumns: a bare-named column is judged by its first
// non-empty cell, and a column dropped as no terms that later holds them,
// or read as terms with an empty cell before, fails the import.
func TestRateDeckSoftColumns(t *testing.T) {
	rows, err := collectDeck("prefix,destination,rate,billing\n1800,US Toll Free,0,\n33,France,0.01,60/60\n")
	if err == nil || !strings.Contains(err.Error(), "line 2: the billing column is empty here, and holds billing terms on line 3") {
		t.Errorf("an empty first cell: %v, %v", rows, err)
	}
	_, err = collectDeck("prefix,rate,interval\n44,0.01,n/a\n33,0.01,60/60\n")
	if err == nil || !strings.Contains(err.Error(), "line 2: the interval column is empty here, and holds billing terms on line 3") {
		t.Errorf("terms after a cell that says none: %v", err)
	}
	_, err = collectDeck("prefix,rate,pulse\n44,0.01,0\n33,0.01,60\n")
	if err == nil || !strings.Contains(err.Error(), `line 2: billing increments "0"`) {
		t.Errorf("a pulse of 0, then 60: %v", err)
	}
	rows, err = collectDeck("prefix,rate,interval\n44,0.01,Peak\n33,0.01,Off-peak\n")
	if err != nil || len(rows) != 2 || rows[1].e.Billing.String() != "" {
		t.Errorf("peak and off-peak: %v, %v", rows, err)
	}
}

// TestRateDeckPriceSplitByDecimalComma: a decimal comma in a comma deck
// is refused however the columns fall (a trailing separator, a free-text
// column after the rate), never read as a free destination.
func TestRateDeckPriceSplitByDecimalComma(t *testing.T) {
	for _, in := range []string{
		"Code,Destination,Rate,Increment,\n1,USA,0,0080,6/6,\n",
		"Code,Destination,Rate,End Date,\n1,USA,0,0080,2026-12-01,\n",
		"Code,Destination,Rate,Notes\n1,USA,0,0080\n",
	} {
		rows, err := collectDeck(in)
		if err == nil || !strings.Contains(err.Error(), "a decimal comma splits a price") {
			t.Errorf("%q: %v, %v", in, rows, err)
		}
	}
	for _, unit := range []string{"Rate (cents/min)", "Rate (ct/min)", "Rate (EUR cent)", "Rate (pence)"} {
		if _, err := collectDeck("prefix,\"" + unit + "\"\n44,1.2\n"); err == nil || !strings.Contains(err.Error(), "priced in hundredths") {
			t.Errorf("%q: %v", unit, err)
		}
	}
}

// TestRateDeckFourthReview: the last review's decks. Misreads are
// refused or read right; ordinary columns import as before.
func TestRateDeckFourthReview(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "refused: <text>", or the last row's "rate terms"
	}{
		// A price split by a decimal comma, whatever its fraction.
		{"Code,Destination,Rate,Notes\n882,Intl Networks,0,5\n", "refused: a decimal comma splits a price"},
		{"Code,Destination,Rate,Notes\n881,Iridium,0,95\n", "refused: a decimal comma splits a price"},
		{"Code,Destination,Rate,Increment,Notes\n870,Inmarsat,4,95,60/60,\n", "refused: decimal point"},
		{"Code,Destination,Rate,Billing Method\n870,Inmarsat,4.95,60/60\n", "refused: holds billing steps \"60/60\""},
		{"Code,Destination,Rate,Connection Fee,Notes\n882,Intl Networks,1.50,0,50,\n", "refused: a decimal comma splits a price"},
		{"Code,Destination,Rate,Zone\n1800,USA Toll Free,0,01\n", "refused: write prices with a decimal point (0 as 0.00)"},
		// Fees and steps that say none, then give them.
		{"Code,Destination,Rate,Fee\n1,USA,0.01,-\n882,Intl Networks,1.50,0.50\n", "1.50 1/1, 0.50 connection fee"},
		{"Code,Destination,Rate,Connection\n1,USA,0.01,N/A\n882,Intl Networks,1.50,0.50\n", "1.50 1/1, 0.50 connection fee"},
		{"Code,Destination,Rate,Connection Fee\n1,USA,0.01,none\n882,Intl Networks,1.50,0.50\n", "1.50 1/1, 0.50 connection fee"},
		{"Code,Destination,Rate,Interval\n1,USA,0.01,N/A\n882,Intl Networks,1.50,60\n", "refused: the Interval column is empty here"},
		{"Code,Destination,Rate,Billing\n882,Intl Networks,1.50,Per Minute\n", "1.50 60/60"},
		{"Code,Destination,Rate,Billing Type\n882,Intl Networks,1.50,60/60\n", "refused: holds billing steps"},
		// Per-call charges under other names.
		{"Code,Rate,Increment,Disconnect Charge\n882,1.50,60/60,0.50\n", "refused: looks like a charge"},
		{"Code,Rate,Increment,Service Charge\n882,1.50,60/60,0.50\n", "refused: looks like a charge"},
		{"Code,Rate,Increment,Flat Rate\n882,1.50,60/60,0.50\n", "refused: looks like"},
		{"Code,Rate,Increment,Connection Fee (cents)\n882,1.50,60/60,5\n", "refused: the fee column"},
		// Ordinary columns, as before.
		{"Code,Rate,Setup\n882,1.50,1\n", "1.50 "}, {"Code,Rate,Connection\n882,1.50,1\n", "1.50 "},
		{"Code,Rate,Billing Cycle (days)\n882,1.50,7\n", "1.50 "}, {"Code,Rate,Next\n882,12,13\n", "12.00 "},
		{"Code,Rate,ACD (min)\n882,1.50,3.5\n", "1.50 "}, {"Code,Rate,Min ASR\n882,1.50,40\n", "1.50 "},
		{"Code,Rate,Max Duration (min)\n882,1.50,120\n", "1.50 "}, {"Code,Rate,Commitment (min)\n882,1.50,1000\n", "1.50 "},
		{"Code,Rate,Min Margin %\n882,1.50,5\n", "1.50 "}, {"Code,Rate,Time Interval\n882,1.50,08-18\n", "1.50 "},
		{"Code,Rate,Peak Interval\n882,1.50,08-18\n", "1.50 "}, {"Code,Rate,Inc/Dec\n882,1.50,inc\n", "1.50 "},
		{"Code,Rate,Effective Date,\n882,1.50,2026-01-01,NEW\n", "1.50 "},
		// The last pass: per-minute billing in other words, fees with a
		// symbol or in whole yen, a split price into a soft fee, a first
		// step beside empty steps, a split hidden by a trailing field.
		{"Prefix,Destination,Rate,Billing\n44,UK,0.01,1 min\n", "0.01 60/60"},
		{"Prefix,Destination,Rate,Billing\n44,UK,0.01,Per Min.\n", "0.01 60/60"},
		{"Prefix,Destination,Rate,Interval\n44,UK,0.01,60x60\n", "0.01 60/60"},
		{"Prefix,Destination,Rate,Interval\n44,UK,0.01,60:60\n", "0.01 60/60"},
		{"Prefix,Destination,Rate,Interval\n44,UK,0.01,every minute\n", "refused: billing increments"},
		{"Prefix,Destination,Rate (JPY),Connection\n81,Japan,3,10\n", "3.00 1/1, 10.00 connection fee"},
		// The yen named in a currency column, not the rate's header:
		// the fee was taken for a flag and dropped.
		{"prefix,destination,rate,currency,fee\n81,Japan,10,JPY,10\n", "10.00 1/1, 10.00 connection fee"},
		{"prefix,destination,rate,fee,currency\n81,Japan,10,10,JPY\n", "10.00 1/1, 10.00 connection fee"}, // not a split price either
		{"Prefix,Destination,Rate,Setup\n44,UK,0.01,$0.10\n", "refused: connection fee \"$0.10\""},
		{"Code,Destination,Rate,Fee\n881,Iridium,4,95,\n", "refused: a decimal comma splits a price"},
		{"Prefix,Destination,Rate,Min Duration,Interval\n44,UK,0.01,60,N/A\n", "refused: but not the steps after it"},
		{"Prefix,Destination,Rate,Currency\n1,USA,0,12,\n", "refused: a decimal comma splits a price"},
		{"Code,Destination,Rate,Connection Fee\n881,Iridium,4,95,\n", "refused: a decimal comma splits a price"},
		{"Prefix,Destination,Rate,Setup\n44,UK,0.01,2024-01-01\n", "0.01 "},
	} {
		rows, err := collectDeck(tc.in)
		if want, ok := strings.CutPrefix(tc.want, "refused: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: %v, %v; want refused with %q", tc.in, rows, err, want)
			}
			continue
		}
		if err != nil || len(rows) == 0 {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		last := rows[len(rows)-1].e
		if got := last.Rate.String() + " " + last.Billing.String(); got != tc.want {
			t.Errorf("%q: read as %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRateDeckCallbackError(t *testing.T) {
	calls := 0
	err := tollguard.ParseRateDeck(strings.NewReader("prefix,rate\n44,0.01\n33,0.02\n34,0.03\n"), func(line int, e tollguard.RateEntry) error {
		calls++
		if e.Prefix == "33" {
			return tollguard.Errorf(tollguard.ECONFLICT, "database says no")
		}
		return nil
	})
	if calls != 2 {
		t.Errorf("fn called %d times after failing, want 2", calls)
	}
	if tollguard.ErrorCode(err) != tollguard.ECONFLICT {
		t.Errorf("error %v: code %q, want fn's ECONFLICT", err, tollguard.ErrorCode(err))
	}
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v does not name line 3", err)
	}
}

func TestParseRateDeckCapsErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("prefix,rate\n")
	for i := range 120 {
		fmt.Fprintf(&b, "%d,x\n", 100+i)
	}
	_, err := collectDeck(b.String())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n  line "); n != 50 {
		t.Errorf("error lists %d lines, want 50", n)
	}
	if !strings.Contains(msg, "120 bad rows") || !strings.Contains(msg, "and 70 more") {
		t.Errorf("error does not give the totals: %.200s", msg)
	}
}

// countingReader reports how much of the deck has been read.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A 60,000-row deck streams: the first rows reach fn long before the
// file is read to its end, and every row arrives once, in order.
func TestParseRateDeckStreams(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Prefix;Destination;Rate;Effective date\n")
	const rows = 60_000
	for i := range rows {
		fmt.Fprintf(&b, "%d;Destination %d;0.%04d;2026-01-01\n", 100000+i, i, i%10000)
	}
	total := b.Len()
	cr := &countingReader{r: &b}
	var readAtFirst, calls, lastLine int
	err := tollguard.ParseRateDeck(cr, func(line int, e tollguard.RateEntry) error {
		if calls == 0 {
			readAtFirst = cr.n
		}
		calls++
		if line != lastLine+1 && calls > 1 {
			t.Fatalf("line %d after %d", line, lastLine)
		}
		lastLine = line
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != rows || lastLine != rows+1 {
		t.Errorf("fn called %d times, last line %d; want %d, %d", calls, lastLine, rows, rows+1)
	}
	if readAtFirst > total/4 {
		t.Errorf("read %d of %d bytes before the first row: not streaming", readAtFirst, total)
	}
}

func BenchmarkParseRateDeck(b *testing.B) {
	var deck bytes.Buffer
	deck.WriteString("prefix,destination,rate\n")
	for i := range 50_000 {
		fmt.Fprintf(&deck, "%d,Destination %d,0.%04d\n", 100000+i, i, i%10000)
	}
	b.SetBytes(int64(deck.Len()))
	for b.Loop() {
		if err := tollguard.ParseRateDeck(bytes.NewReader(deck.Bytes()), func(int, tollguard.RateEntry) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseRateDeck: any input gives rates or an EINVALID error, never a
// panic; on success every rate has a clean, unique E.164 prefix, a
// non-negative price and a line that never goes back.
func FuzzParseRateDeck(f *testing.F) {
	for _, s := range []string{
		"prefix,destination,rate\n44,United Kingdom,0.01\n4420,UK London,0.005\n",
		"\ufeffDial Code;Country;Rate Per Minute;Effective Date\n+44 20;UK London;0,0123;2026-01-01\n",
		"Carrier rates\n\nCode,Description,Price\n1876,Jamaica,0.25\n",
		"Prefixes,Destination,Price / min\n\"4420, 4421|+44 29\",UK cities,0.01\n",
		"Rate/Min\tCode\r\n0.5\t979\r\n",
		"prefix,rate\n44,0.01\n44,0.02\n\"3\n",
		"prefix,rate\n0044,£1\n",
		"prefix,destination,rate,billing,connection fee\n44,UK,0.01,30/6,0.05\n33,FR,0.02,60,\n",
		"Code;Rate;Min Duration;Increment;Setup Fee\n44;0,01;60;6;0,05\n",
		"Area Code,Prefix,Country Code,Rate\n4420,4420,44,0.005\n020,44161,+44,0.004\n,1876,876,0.1\n",
		"Country Code,Prefix,Area Code,Rate\n7,7727,727,0.05\n7,727,727,0.05\n7,7495,495,0.02\n49,4930,30,0.01\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		seen := map[string]bool{}
		last := 0
		err := tollguard.ParseRateDeck(bytes.NewReader(in), func(line int, e tollguard.RateEntry) error {
			p := e.Prefix
			if p == "" || p[0] == '0' || len(p) > 15 || strings.Trim(p, "0123456789") != "" {
				t.Fatalf("bad prefix %q passed to fn", p)
			}
			if seen[p] {
				t.Fatalf("prefix %q passed to fn twice", p)
			}
			seen[p] = true
			if e.Rate < 0 {
				t.Fatalf("negative rate %d", e.Rate)
			}
			if b := e.Billing; b.Initial < 1 || b.Initial > tollguard.MaxBillingStep || b.Increment < 1 || b.Increment > tollguard.MaxBillingStep || b.Connect < 0 {
				t.Fatalf("prefix %s: billing %+v out of range", p, b)
			}
			if line < last || line < 2 {
				t.Fatalf("line %d after %d", line, last)
			}
			last = line
			return nil
		})
		if err != nil {
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("error %v: code %q, want EINVALID", err, tollguard.ErrorCode(err))
			}
			return
		}
		if len(seen) == 0 {
			t.Fatal("no error and no rates")
		}
	})
}

// failOnce returns data, then one read error, then EOF: the error must
// not be lost, or a truncated deck would import as if whole.
type failOnce struct {
	data string
	n    int
}

func (r *failOnce) Read(p []byte) (int, error) {
	r.n++
	switch r.n {
	case 1:
		return copy(p, r.data), nil
	case 2:
		return 0, errors.New("I/O error")
	}
	return 0, io.EOF
}

func TestParseReadErrorNotLost(t *testing.T) {
	for _, data := range []string{"prefix,destination,rate\n44,UK,0.01\n", "prefix,destination,rate\r44,UK,0.01\r"} {
		err := tollguard.ParseRateDeck(&failOnce{data: data}, func(int, tollguard.RateEntry) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "I/O error") {
			t.Errorf("deck %q: err %v, want the read error", data, err)
		}
		if _, err := tollguard.ParseHighRiskCSV(&failOnce{data: strings.ReplaceAll(data, "destination,rate", "description,source")}); err == nil || !strings.Contains(err.Error(), "I/O error") {
			t.Errorf("high-risk list %q: err %v, want the read error", data, err)
		}
	}
}

// TestCSVImportsNameUTF16: a deck or high-risk list saved as Excel's
// "Unicode Text" (UTF-16, with or without a byte order mark), an .xlsx
// or a gzip file was refused as having no header row, with no word of why.
func TestCSVImportsNameUTF16(t *testing.T) {
	utf16 := func(s string, bom []byte, le bool) string {
		b := append([]byte(nil), bom...)
		for _, c := range []byte(s) {
			if le {
				b = append(b, c, 0)
			} else {
				b = append(b, 0, c)
			}
		}
		return string(b)
	}
	deck := "prefix\tdestination\trate\r\n44\tUK\t0.01\r\n"
	list := "prefix\tdescription\tsource\r\n252\tSomalia\tITU\r\n"
	for name, enc := range map[string]func(string) string{
		"LE with BOM": func(s string) string { return utf16(s, []byte{0xff, 0xfe}, true) },
		"BE with BOM": func(s string) string { return utf16(s, []byte{0xfe, 0xff}, false) },
		"LE bare":     func(s string) string { return utf16(s, nil, true) },
	} {
		err := tollguard.ParseRateDeck(strings.NewReader(enc(deck)), func(int, tollguard.RateEntry) error { return nil })
		if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(tollguard.ErrorMessage(err), `rate deck: the file is UTF-16 text (Excel's "Unicode Text"), not CSV: save it as "CSV UTF-8"`) {
			t.Errorf("rate deck %s: %v", name, err)
		}
		if _, err := tollguard.ParseHighRiskCSV(strings.NewReader(enc(list))); tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(tollguard.ErrorMessage(err), "high-risk list: the file is UTF-16 text") {
			t.Errorf("high-risk list %s: %v", name, err)
		}
	}
	// Carriers' other forms: a workbook or ZIP, a gzip file.
	for in, want := range map[string]string{
		"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml": "the file is a ZIP archive (an .xlsx workbook, or a zipped CSV)",
		"\x1f\x8b\x08\x00\x00\x00\x00\x00":              "the file is gzip-compressed: gunzip it",
	} {
		err := tollguard.ParseRateDeck(strings.NewReader(in), func(int, tollguard.RateEntry) error { return nil })
		if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(tollguard.ErrorMessage(err), want) {
			t.Errorf("rate deck %q: %v", in, err)
		}
		if _, err := tollguard.ParseHighRiskCSV(strings.NewReader(in)); !strings.Contains(tollguard.ErrorMessage(err), want) {
			t.Errorf("high-risk list %q: %v", in, err)
		}
	}
	// UTF-8 with its byte order mark is read as before.
	if err := tollguard.ParseRateDeck(strings.NewReader("\ufeff"+deck), func(int, tollguard.RateEntry) error { return nil }); err != nil {
		t.Errorf("UTF-8 deck with a BOM: %v", err)
	}
}
