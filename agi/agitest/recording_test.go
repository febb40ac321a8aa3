package agitest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReplaysRecordings plays the AGI side of recorded sessions against
// the fake and checks that it answers every command with exactly the
// bytes Asterisk sent.
func TestReplaysRecordings(t *testing.T) {
	tests := []struct {
		session   string
		channel   func() *Channel
		hangupNow bool // the caller hangs up before the first command
		agiStatus string
		sameEnv   bool // the fake's env block is the recorded one
	}{
		{session: SessionAllowed, channel: func() *Channel { return PJSIP("0044207946000") }, agiStatus: "SUCCESS", sameEnv: true},
		{session: SessionDenyHangup, channel: func() *Channel { return PJSIP("00252612345678") }, agiStatus: "HANGUP"},
		{session: SessionHangupIdle, channel: func() *Channel { return PJSIP("0033123456789") }, hangupNow: true, agiStatus: "HANGUP"},
		{session: SessionHangupInExec, channel: func() *Channel {
			ch := PJSIP("0034123456789")
			ch.HangupDuring = 2 // EXEC Wait 10
			return ch
		}, agiStatus: "HANGUP"},
		{session: SessionLocal, channel: func() *Channel { return Local("0044207946000") }, agiStatus: "SUCCESS", sameEnv: true},
	}
	for _, tt := range tests {
		t.Run(tt.session, func(t *testing.T) {
			chunks, err := Recording(tt.session)
			if err != nil {
				t.Fatal(err)
			}
			ch := tt.channel()
			ch.Vars["TOLLGATE_DECISION"] = "" // the rig's dialplan cleared it before AGI()

			c, srv, br := session(t, ch)

			// Group the recording into: env, then (command, reply bytes) pairs.
			var env bytes.Buffer
			i := 0
			for ; i < len(chunks) && !strings.Contains(env.String(), "\n\n"); i++ {
				if chunks[i].Dir == "asterisk->agi" {
					env.WriteString(chunks[i].Data)
				}
			}
			gotEnv := readUntilBlank(t, br)
			if tt.sameEnv && gotEnv != env.String() {
				t.Errorf("env block:\n got %q\nwant %q", gotEnv, env.String())
			}
			if tt.hangupNow {
				if err := c.Hangup(); err != nil {
					t.Fatal(err)
				}
			}
			expect := func(want string) {
				t.Helper()
				if want == "" {
					return
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(br, got); err != nil {
					t.Fatalf("reading %q: %v", want, err)
				}
				if string(got) != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			var want strings.Builder
			var sent []string
			for ; i < len(chunks); i++ {
				switch ch := chunks[i]; ch.Dir {
				case "asterisk->agi":
					want.WriteString(ch.Data)
				case "agi->asterisk":
					expect(want.String())
					want.Reset()
					if _, err := srv.Write([]byte(ch.Data)); err != nil {
						t.Fatal(err)
					}
					sent = append(sent, strings.TrimSuffix(ch.Data, "\n"))
				}
			}
			expect(want.String())
			res := hangUp(t, c, srv)
			if !reflect.DeepEqual(res.Commands, sent) {
				t.Errorf("commands recorded:\n got %q\nwant %q", res.Commands, sent)
			}
			if res.AGIStatus != tt.agiStatus {
				t.Errorf("AGIStatus = %s, want %s", res.AGIStatus, tt.agiStatus)
			}
		})
	}
}

func readUntilBlank(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("env block: %v", err)
		}
		b.WriteString(line)
		if line == "\n" {
			return b.String()
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`GET VARIABLE CHANNEL(pjsip,remote_addr)`, []string{"GET", "VARIABLE", "CHANNEL(pjsip,remote_addr)"}},
		{`SET VARIABLE X "a b"`, []string{"SET", "VARIABLE", "X", "a b"}},
		{`SET VARIABLE X ""`, []string{"SET", "VARIABLE", "X", ""}},
		{`SET VARIABLE X "say \"hi\" \\ ok"`, []string{"SET", "VARIABLE", "X", `say "hi" \ ok`}},
		{`VERBOSE "hello" 1`, []string{"VERBOSE", "hello", "1"}},
		{"  EXEC\tWait  1 ", []string{"EXEC", "Wait", "1"}},
		{`SET VARIABLE`, []string{"SET", "VARIABLE"}},
	}
	for _, tt := range tests {
		if got := ParseArgs(tt.line); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseArgs(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestInferredReplies pins the replies that were not recorded (EXEC
// Hangup, EXEC MSet, an unknown application) to what Asterisk's source
// says, and the variables they set.
func TestInferredReplies(t *testing.T) {
	st := newState(PJSIP("0044207946000"), false)
	steps := []struct{ cmd, want string }{
		{"EXEC MSet A=1,B=,TIMEOUT(absolute)=60", "200 result=0\n"},
		{"EXEC NoSuchApp x", "200 result=-2\n"},
		{"GET VARIABLE A", "200 result=1 (1)\n"},
		{"GET VARIABLE B", "200 result=1 ()\n"},
		{"GET VARIABLE C", "200 result=0\n"},
		{"EXEC Hangup 21", "200 result=-1\nHANGUP\n"},
		{"ANSWER", replyDead},
		{"EXEC Hangup 21", "200 result=-1\n"}, // the HANGUP line comes once
		{"HANGUP", replyDead},                 // hangup is no dead-channel command
	}
	for _, s := range steps {
		out, _ := st.handle(s.cmd)
		if string(out) != s.want {
			t.Errorf("%s: got %q, want %q", s.cmd, out, s.want)
		}
	}
	r := st.result()
	if r.Timeout() != "60" || r.HangupCause != "21" || r.AGIStatus != "HANGUP" {
		t.Errorf("result: timeout %q cause %q status %q", r.Timeout(), r.HangupCause, r.AGIStatus)
	}
	st = newState(&Channel{NoMSet: true}, false)
	if out, _ := st.handle("EXEC MSet A=1"); string(out) != "200 result=-2\n" {
		t.Errorf("NoMSet: got %q", out)
	}
	if out, stop := st.handle("FAILURE"); out != nil || !stop || st.result().AGIStatus != "FAILURE" {
		t.Errorf("failure line: out %q stop %v", out, stop)
	}
}

// TestDeadChannel: an AGI() that starts on a hung-up channel (the
// include's hangup handlers) runs in res_agi's dead mode from its first
// command: no HANGUP line ever, the dead-channel commands answer as
// usual, the others 511, and AGISTATUS stays SUCCESS.
func TestDeadChannel(t *testing.T) {
	ch := PJSIP("s")
	ch.Dead = true
	ch.Vars["TOLLGUARD_CALLID"] = "42"
	c, srv, br := session(t, ch)
	readUntilBlank(t, br)
	if err := c.Hangup(); err != nil { // the caller is long gone: nothing to send
		t.Fatal(err)
	}
	steps := []struct{ cmd, want string }{
		{"GET VARIABLE TOLLGUARD_CALLID", "200 result=1 (42)\n"},
		{"SET VARIABLE X 1", "200 result=1\n"},
		{"EXEC MSet A=1", "200 result=0\n"},
		{"VERBOSE \"dead\" 1", "200 result=1\n"},
		{"ANSWER", replyDead},
		{"STREAM FILE beep \"\"", replyDead},
		{"HANGUP", replyDead},
		{"EXEC Hangup 21", "200 result=-1\n"},
		{"NOOP", "200 result=0\n"},
	}
	for _, s := range steps {
		if _, err := srv.Write([]byte(s.cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", s.cmd, err)
		}
		if got != s.want {
			t.Errorf("%s: got %q, want %q", s.cmd, got, s.want)
		}
	}
	res := hangUp(t, c, srv)
	if res.AGIStatus != "SUCCESS" || res.HungUp || res.HangupCause != "21" {
		t.Errorf("AGIStatus %s, HungUp %v, hangup cause %q", res.AGIStatus, res.HungUp, res.HangupCause)
	}
}

// TestLongCommandLine: res_agi reads a command with fgets into 2048
// bytes (AGI_BUF_LEN), so a line of 2047 bytes or more, its newline
// counted, is run as several commands.
func TestLongCommandLine(t *testing.T) {
	c, srv, br := session(t, PJSIP("0044207946000"))
	readUntilBlank(t, br)
	fits := "VERBOSE " + strings.Repeat("a", 2046-len("VERBOSE ")) // 2047 bytes with its newline
	split := "VERBOSE " + strings.Repeat("b", 2047-len("VERBOSE "))
	tail := "VERBOSE \"" + strings.Repeat("c", 2047-len("VERBOSE \"")) + "NOOP"
	steps := []struct{ line, want string }{
		{fits, "200 result=1\n"},
		{split, "200 result=1\n510 Invalid or unknown command\n"}, // the newline alone: an empty command
		{tail, "200 result=1\n200 result=0\n"},
	}
	for _, s := range steps {
		if _, err := srv.Write([]byte(s.line + "\n")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(s.want))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("%.20s...: %v", s.line, err)
		}
		if string(got) != s.want {
			t.Errorf("%.20s... (%d bytes): got %q, want %q", s.line, len(s.line), got, s.want)
		}
	}
	res := hangUp(t, c, srv)
	want := []string{fits, split, "", tail[:2047], "NOOP"}
	if !reflect.DeepEqual(res.Commands, want) {
		t.Errorf("commands: got %.30q, want %.30q", res.Commands, want)
	}
}

// session starts ch's AGI() against a listener of the test's own: the
// fake's side, and the server's end of the connection to script.
func session(t *testing.T, ch *Channel) (*Conn, net.Conn, *bufio.Reader) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := ch.Start(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	return c, srv, bufio.NewReader(srv)
}

// hangUp closes the server's end and waits for the fake's result.
func hangUp(t *testing.T, c *Conn, srv net.Conn) *Result {
	t.Helper()
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
