package agi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/tollguard/tollguard/agi/agitest"
)

func TestExtensionFromChannel(t *testing.T) {
	tests := []struct{ channel, want string }{
		{"PJSIP/1001-0000002a", "1001"},
		{"PJSIP/1001-00000000", "1001"},
		{"SIP/1002-00000003", "1002"},
		{"IAX2/1003-12345", "1003"},
		{"pjsip/1001-0000002a", "1001"},
		{"PJSIP/alice-phone-0000002a", "alice-phone"},
		{"Local/0044207946000@from-internal-00000003;2", ""},
		{"DAHDI/1-1", ""},
		{"PJSIP/1001", ""},
		{"PJSIP/-0000002a", ""},
		{"", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		if got := extensionFromChannel(tt.channel); got != tt.want {
			t.Errorf("extensionFromChannel(%q) = %q, want %q", tt.channel, got, tt.want)
		}
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:5072", "127.0.0.1"},
		{"[::1]:5060", "::1"},
		{"[2001:db8::1]:5060", "2001:db8::1"},
		{"[fe80::1%eth0]:5060", "fe80::1"},
		{"10.0.0.7", "10.0.0.7"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{" 192.0.2.1:5060 ", "192.0.2.1"},
		{"", ""},
		{"()", ""},
		{"host.example:5060", ""},
		{"127.0.0.1:5072;transport=udp", ""},
	}
	for _, tt := range tests {
		if got := parseRemote(tt.in); got != tt.want {
			t.Errorf("parseRemote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestQuoteRoundTrip: what quote writes, res_agi's parse_args (as the
// fake implements it) reads back unchanged.
func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "allow", "a b", `say "hi"`, `back\slash`, `\"`, `"`, `\`, "tab\there", "ünïcode"} {
		argv := agitest.ParseArgs("SET VARIABLE X " + quote(v))
		want := strings.ReplaceAll(v, "\t", " ")
		if len(argv) != 4 || argv[3] != want {
			t.Errorf("quote(%q) parsed back as %q", v, argv)
		}
	}
	if q := quote("x\nEXEC Dial"); strings.ContainsAny(q, "\r\n") {
		t.Errorf("quote let a line break through: %q", q)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", `"\`, "\n", "x\\\"y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		q := quote(v)
		if strings.ContainsAny(q, "\r\n") {
			t.Fatalf("line break in %q", q)
		}
		argv := agitest.ParseArgs("SET VARIABLE X " + q)
		if len(argv) != 4 {
			t.Fatalf("quote(%q) = %q splits into %q", v, q, argv)
		}
		want := []byte(v)
		for i, c := range want {
			if c < 0x20 || c == 0x7f {
				want[i] = ' '
			}
		}
		if argv[3] != string(want) {
			t.Fatalf("quote(%q) parsed back as %q, want %q", v, argv[3], want)
		}
	})
}

func TestMSetSafe(t *testing.T) {
	for _, v := range []string{"", "allow", "no_credit", "120", "-1", "pbx-test.1"} {
		if !msetSafe(v) {
			t.Errorf("msetSafe(%q) = false", v)
		}
	}
	for _, v := range []string{"a,b", "a=b", "a b", `"`, `\`, "(x)", "é"} {
		if msetSafe(v) {
			t.Errorf("msetSafe(%q) = true", v)
		}
	}
}

func TestCheckEnv(t *testing.T) {
	vars := map[string]string{"agi_network_script": "outbound?selftest=1&x=y", "agi_arg_1": "0044"}
	req, err := checkEnv(vars, 2)
	if err != nil || req.Script != "outbound" || req.Query != "selftest=1&x=y" {
		t.Fatalf("checkEnv = %+v, %v", req, err)
	}
	if !queryFlag(req.Query, "selftest") || queryFlag("", "selftest") || queryFlag("selftest=0", "selftest") ||
		queryFlag("%zz", "selftest") || queryFlag(req.Query, "emergency") || !queryFlag("emergency=1", "emergency") {
		t.Error("queryFlag")
	}
	req, err = checkEnv(map[string]string{"agi_request": "agi://127.0.0.1:4573/hangup"}, 1)
	if err != nil || req.Script != "hangup" {
		t.Errorf("from agi_request: %+v, %v", req, err)
	}
	req, err = checkEnv(map[string]string{"agi_network_script": "/outbound"}, 1)
	if err != nil || req.Script != "outbound" {
		t.Errorf("leading slash: %+v, %v", req, err)
	}
	if _, err := checkEnv(map[string]string{"agi_calleridname": "M\xfcller", "agi_network_script": "outbound"}, 2); err != nil {
		t.Errorf("a Latin-1 caller name must not block a call: %v", err)
	}
	// The phone's display name, written raw by Asterisk, may hold a TAB;
	// what tollguard reads may not hold control characters.
	if _, err := checkEnv(map[string]string{"agi_calleridname": "John\tDoe", "agi_network_script": "outbound"}, 2); err != nil {
		t.Errorf("a TAB in the caller name must not block a call: %v", err)
	}
	for _, k := range []string{"agi_arg_1", "agi_channel", "agi_accountcode", "agi_network_script"} {
		if _, err := checkEnv(map[string]string{k: "x\ty", "agi_request": "agi://127.0.0.1/outbound"}, 2); err == nil {
			t.Errorf("%s with a TAB accepted", k)
		}
	}
	if _, err := checkEnv(map[string]string{"agi_calleridname": "a\x00b", "agi_network_script": "outbound"}, 2); err == nil {
		t.Error("a NUL in the caller name accepted")
	}
	if v, ok := (&request{Vars: vars}).arg(1); !ok || v != "0044" {
		t.Error("arg(1)")
	}
	if _, ok := (&request{Vars: vars}).arg(2); ok {
		t.Error("arg(2) present")
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in    string
		sec   int64
		known bool
	}{
		{"65", 65, true}, {" 7 ", 7, true}, {"0", 0, true}, {"12.2", 13, true},
		{"-5", 0, true}, {"", 0, false}, {"abc", 0, false}, {"NaN", 0, false}, {"1e300", 0, false},
	}
	for _, tt := range tests {
		if sec, known := parseSeconds(tt.in); sec != tt.sec || known != tt.known {
			t.Errorf("parseSeconds(%q) = %d, %v", tt.in, sec, known)
		}
	}
}

// TestLineReaderKeepsTheSecondLine shows the library's bug and the fix:
// a reply and the HANGUP line in one read.
func TestLineReaderKeepsTheSecondLine(t *testing.T) {
	stream := "agi_network_script: outbound\n\n200 result=1\nHANGUP\n"

	// The library alone: the first Command's scanner swallows "HANGUP".
	a := cyagi.New(&chunks{"agi_network_script: outbound\n\n", "200 result=1\nHANGUP\n"}, io.Discard)
	if err := a.Command("SET VARIABLE A 1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Command("SET VARIABLE B 2").Err(); errors.Is(err, cyagi.ErrHangup) {
		t.Fatal("the library kept the HANGUP line: the lineReader may be unnecessary now")
	}

	lr := newLineReader(strings.NewReader(stream))
	a = cyagi.New(lr, io.Discard)
	if a.Variables["agi_network_script"] != "outbound" || !lr.blank || lr.lines != 2 {
		t.Fatalf("env: %v, blank %v, lines %d", a.Variables, lr.blank, lr.lines)
	}
	if err := a.Command("SET VARIABLE A 1").Err(); err != nil {
		t.Fatal(err)
	}
	if !lr.pending("HANGUP") {
		t.Error("HANGUP not pending")
	}
	if err := a.Command("SET VARIABLE B 2").Err(); !errors.Is(err, cyagi.ErrHangup) {
		t.Fatalf("second command: %v, want ErrHangup", err)
	}
}

func TestLineReader(t *testing.T) {
	t.Run("OneLinePerRead", func(t *testing.T) {
		lr := newLineReader(strings.NewReader("a\nbb\n\ncc"))
		buf := make([]byte, 100)
		var got []string
		for {
			n, err := lr.Read(buf)
			if n > 0 {
				got = append(got, string(buf[:n]))
			}
			if err != nil {
				break
			}
		}
		if strings.Join(got, "|") != "a\n|bb\n|\n|cc" {
			t.Errorf("reads %q", got)
		}
	})
	t.Run("BlankLines", func(t *testing.T) {
		for in, blank := range map[string]bool{"\n": true, "\r\n": true, "x\n": false, "\r\r\n": false, "x\r\n": false} {
			lr := newLineReader(iotest.OneByteReader(strings.NewReader(in)))
			if _, err := io.ReadAll(lr); err != nil {
				t.Fatal(err)
			}
			if lr.blank != blank || lr.lines != 1 {
				t.Errorf("%q: blank %v lines %d", in, lr.blank, lr.lines)
			}
		}
	})
	t.Run("LineCap", func(t *testing.T) {
		lr := newLineReader(strings.NewReader(strings.Repeat("x", maxLine) + "\n" + strings.Repeat("y", maxLine+1) + "\n"))
		line, err := lr.readLine()
		if err != nil || len(line) != maxLine {
			t.Fatalf("line of maxLine: %d, %v", len(line), err)
		}
		if _, err := lr.readLine(); !errors.Is(err, errLineTooLong) {
			t.Fatalf("long line: %v", err)
		}
		if _, err := lr.Read(make([]byte, 10)); !errors.Is(err, errLineTooLong) {
			t.Error("error not sticky")
		}
	})
	t.Run("SmallBuffers", func(t *testing.T) {
		lr := newLineReader(strings.NewReader("hello world\nnext\n"))
		var b bytes.Buffer
		buf := make([]byte, 3)
		for !strings.HasSuffix(b.String(), "\n") {
			n, err := lr.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(buf[:n])
		}
		if b.String() != "hello world\n" {
			t.Errorf("got %q", b.String())
		}
	})
}

// scripted returns a session whose Asterisk answers with replies.
func scripted(t *testing.T, replies string) *session {
	t.Helper()
	lr := newLineReader(strings.NewReader("agi_network_script: outbound\n\n" + replies))
	a, req, err := readEnv(lr, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return &session{srv: &Server{}, a: a, lr: lr, req: req}
}

func TestCommandReplies(t *testing.T) {
	ss := scripted(t, "520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n"+
		"510 Invalid or unknown command\n"+
		"511 Command Not Permitted on a dead channel or intercept routine\n"+
		"200 result=1 (TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone))\n"+
		"200 result=0\n"+
		"200 result=1 ()\n"+
		"200 result=-2\n"+
		"total garbage\n"+
		"200 result=1 (never read)\n")
	var se *statusError
	if _, err := ss.command("SET VARIABLE"); !errors.As(err, &se) || se.Status != 520 {
		t.Errorf("520: %v", err)
	}
	if _, err := ss.command("NOT A REAL COMMAND"); !errors.As(err, &se) || se.Status != 510 {
		t.Errorf("510: %v", err)
	}
	if _, err := ss.command("ANSWER"); !errors.As(err, &se) || se.Status != 511 {
		t.Errorf("511: %v", err)
	}
	if v, ok, err := ss.get("PJSIP_HEADER(read,User-Agent)"); err != nil || !ok || v != "TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone)" {
		t.Errorf("value: %q %v %v", v, ok, err)
	}
	if v, ok, err := ss.get("NO_SUCH_VARIABLE"); err != nil || ok || v != "" {
		t.Errorf("unset: %q %v %v", v, ok, err)
	}
	if v, ok, err := ss.get("EMPTY"); err != nil || !ok || v != "" {
		t.Errorf("empty: %q %v %v", v, ok, err)
	}
	if r, err := ss.command("EXEC MSet A=1"); err != nil || r.Result != -2 {
		t.Errorf("-2: %+v %v", r, err)
	}
	_, err := ss.command("GET VARIABLE X")
	if err == nil || errors.As(err, &se) {
		t.Fatalf("garbage: %v", err)
	}
	lines := ss.lr.lines
	if _, err2 := ss.command("GET VARIABLE Y"); err2 != err || ss.lr.lines != lines {
		t.Errorf("a desynchronised session must not read on: %v", err2)
	}
	if ss.sent != 8 {
		t.Errorf("sent %d", ss.sent)
	}
}

func TestCommandConnectionErrors(t *testing.T) {
	ss := scripted(t, "200 result=1\n")
	if _, err := ss.command("VERBOSE x 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.command("VERBOSE x 1"); err == nil || !strings.Contains(err.Error(), "asterisk closed the connection") {
		t.Errorf("EOF: %v", err)
	}
	ss = scripted(t, "520-Invalid command syntax.\nno end")
	if _, err := ss.command("SET VARIABLE"); err == nil || ss.err == nil {
		t.Errorf("unterminated 520: %v", err)
	}
}

// chunks returns one element per Read, like TCP segments.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}
