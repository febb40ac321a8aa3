package agi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/tollguard/tollguard/agi/agitest"
)

// FuzzEnvBlock feeds arbitrary bytes to the server's env block path
// (lineReader, the agi library's parser, checkEnv).
func FuzzEnvBlock(f *testing.F) {
	f.Add(agitest.PJSIP("0044207946000").Env.Bytes())
	f.Add(agitest.Local("0044207946000").Env.Bytes())
	f.Add([]byte("agi_network_script: outbound?selftest=1\r\nagi_arg_1: 112\r\n\r\n"))
	f.Add([]byte("agi_network: yes\nagi_network_script: outb"))
	f.Add([]byte("\x00\x01\xfe\xff junk\n\x16\x03\x01\x02\n\n"))
	f.Add([]byte("agi_request: agi://127.0.0.1/hangup\nagi_arg_1: 42\n\n200 result=1\n"))
	f.Add([]byte("\n"))
	// Replies already queued after the block, more than the 1 KiB buffer.
	f.Add(append([]byte("agi_network_script: outbound\r\n\r\n"), bytes.Repeat([]byte("200 result=1\n"), 100)...))
	f.Add([]byte("agi_network_script: outbound\n\r\r\n\r\n200 result=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		lr := newLineReader(src)
		a, req, err := readEnv(lr, io.Discard)
		if err != nil {
			if a != nil || req != nil {
				t.Fatal("results with an error")
			}
			return
		}
		// A whole block: some prefix of data ends with an empty line.
		if !bytes.HasPrefix(data, []byte("\n")) && !bytes.HasPrefix(data, []byte("\r\n")) &&
			!bytes.Contains(data, []byte("\n\n")) && !bytes.Contains(data, []byte("\n\r\n")) {
			t.Fatalf("accepted %q without an empty line", data)
		}
		if strings.ContainsAny(req.Script, "?") || strings.HasPrefix(req.Script, "/") {
			t.Fatalf("script %q", req.Script)
		}
		for k, v := range req.Vars {
			if !validKey(k) || !acceptable(k, v) || (k == "agi_arg_1" || k == "agi_channel") && !printable(v) {
				t.Fatalf("accepted %q: %q", k, v)
			}
		}
		// Nothing after the env block was consumed. What src gave up
		// and lineReader still buffers was not read: the bufio buffer
		// (1 KiB) need not hold all of data.
		consumed := len(data) - src.Len() - lr.br.Buffered()
		if r, ok := lr.br.Peek(lr.br.Buffered()); ok == nil && !bytes.HasSuffix(data[:consumed], []byte("\n")) {
			t.Fatalf("stopped mid-line: %q | %q", data[:consumed], r)
		}
		// Exactly up to the first empty line ("\n" or "\r\n"), where
		// the library's scanner stops: the next line is Asterisk's
		// first reply.
		end := -1
		for off := 0; end < 0; {
			i := bytes.IndexByte(data[off:], '\n')
			if i < 0 {
				t.Fatalf("accepted %q without an empty line", data)
			}
			if line := data[off : off+i]; len(line) == 0 || string(line) == "\r" {
				end = off + i + 1
			}
			off += i + 1
		}
		if consumed != end {
			t.Fatalf("consumed %d bytes, the block is %d: %q | %q", consumed, end, data[:consumed], data[consumed:])
		}
	})
}

// FuzzReply feeds arbitrary bytes as Asterisk's replies to a session
// that sends GET VARIABLE commands (lineReader, the library's Command,
// session.command's classification and multi-line skipping).
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"200 result=1 (127.0.0.1:5072)\n200 result=0\n200 result=1 ()\n",
		"200 result=1\nHANGUP\n200 result=1\n",
		"HANGUP\n200 result=1 (x)\n",
		"520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n200 result=1 (ok)\n",
		"510 Invalid or unknown command\n511 Command Not Permitted on a dead channel or intercept routine\n",
		"200 result=-2\n200 result=-1 endpos=1234\n",
		"200 result=abc\n",
		"200 result=1 (TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone))\r\n",
		"520-x\n520-y\n",
		"\n\n\n",
		strings.Repeat("9", 5000) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lr := newLineReader(bytes.NewReader(append([]byte("agi_network_script: outbound\n\n"), data...)))
		a, req, err := readEnv(lr, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ss := &session{srv: &Server{}, a: a, lr: lr, req: req}
		newlines := bytes.Count(data, []byte("\n"))
		for i := range 6 {
			before := lr.lines
			r, err := ss.command("GET VARIABLE X")
			var se *statusError
			switch {
			case err == nil:
				if strings.ContainsAny(r.Value, "\n") {
					t.Fatalf("value %q", r.Value)
				}
				if lr.lines != before+1 {
					t.Fatalf("a 200 reply read %d lines", lr.lines-before)
				}
			case errors.As(err, &se):
				if se.Status < 100 || se.Status > 599 || ss.err != nil {
					t.Fatalf("status error %v with session error %v", se, ss.err)
				}
			default:
				if ss.err == nil || err != ss.err {
					t.Fatalf("command %d: error %v is not final (%v)", i, err, ss.err)
				}
				if errors.Is(err, cyagi.ErrHangup) != ss.hungup {
					t.Fatalf("hangup %v, err %v", ss.hungup, err)
				}
				// Final: later commands neither send nor read.
				sent, lines := ss.sent, lr.lines
				if _, err2 := ss.command("GET VARIABLE Y"); err2 != err || ss.sent != sent || lr.lines != lines {
					t.Fatalf("session went on after %v", err)
				}
				return
			}
			if lr.lines-2 > newlines { // the env block is 2 lines
				t.Fatalf("read %d lines from %d", lr.lines-2, newlines)
			}
		}
	})
}
