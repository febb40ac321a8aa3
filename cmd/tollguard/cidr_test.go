package main

import (
	"fmt"
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
		got, err := parseCIDRs(tc.in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != tc.want {
			t.Errorf("parseCIDRs(%q) = %s (%v), want %s", tc.in, s, err, tc.want)
		}
	}
}
