package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseCIDRs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // fmt of the prefixes; "error" for an error
	}{
		{[]string{"192.0.2.0/24", "2001:db8::/32"}, "[192.0.2.0/24 2001:db8::/32]"},
		{[]string{"192.0.2.7/24, 198.51.100.1"}, "[192.0.2.0/24 198.51.100.1/32]"},
		{[]string{"none"}, "[]"},
		// Sources are matched unmapped, so a mapped prefix is stored as
		// the IPv4 one it means (it could never match before).
		{[]string{"::ffff:10.0.0.0/104"}, "[10.0.0.0/8]"},
		{[]string{"::ffff:192.0.2.1"}, "[192.0.2.1/32]"},
		{[]string{"::ffff:0.0.0.0/80"}, "error"},
		{[]string{""}, "error"},
		{[]string{"10.0.0.0/8,"}, "error"},
		{[]string{"fe80::1%eth0"}, "error"},
		{[]string{"10.0.0.0/33"}, "error"},
	} {
		got, _, err := parseCIDRs(tc.in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tc.want {
			t.Errorf("parseCIDRs(%q) = %s (%v), want %s", tc.in, s, err, tc.want)
		}
	}
}

// TestParseCIDRsNotesAnAllAddressNetwork: 0.0.0.0/0 was stored without
// a word, though it restricts nothing for IPv4 and shuts out every IPv6
// phone (and ::/0 the other way round).
func TestParseCIDRsNotesAnAllAddressNetwork(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // in the notes; "" for none
	}{
		{[]string{"0.0.0.0/0"}, "0.0.0.0/0 allows every IPv4 address and no IPv6 one: give --cidr none"},
		{[]string{"::/0"}, "::/0 allows every IPv6 address and no IPv4 one"},
		{[]string{"::/0", "0.0.0.0/0"}, "0.0.0.0/0 and ::/0 allow every address: the access list restricts nothing"},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, ""},
		{[]string{"192.0.2.0/24"}, ""},
	} {
		_, notes, err := parseCIDRs(tc.in)
		got := fmt.Sprint(notes)
		if err != nil || (tc.want == "") != (len(notes) == 0) || !strings.Contains(got, tc.want) {
			t.Errorf("parseCIDRs(%q): notes %s, err %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestAGIAllowedPrefixes: clients are matched unmapped, so a mapped
// prefix in [agi] allowed (natural for a [::]:4573 listener) is taken
// as the IPv4 network it means; before, it matched no client.
func TestAGIAllowedPrefixes(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // fmt of the prefixes; "error" for an error
	}{
		{[]string{"127.0.0.1/32", "::1"}, "[127.0.0.1/32 ::1/128]"},
		{[]string{"::ffff:127.0.0.1/128"}, "[127.0.0.1/32]"},
		{[]string{"::ffff:10.0.0.0/104"}, "[10.0.0.0/8]"},
		{[]string{"::ffff:10.9.9.9"}, "[10.9.9.9/32]"},
		{[]string{"10.1.2.3/8"}, "[10.0.0.0/8]"},
		{[]string{"::ffff:0:0/64"}, "error"},
		{[]string{"localhost"}, "error"},
	} {
		got, err := AGIConfig{Allowed: tc.in}.AllowedPrefixes()
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tc.want {
			t.Errorf("%q: %s, want %s", tc.in, s, tc.want)
		}
	}
}
