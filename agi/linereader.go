package agi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// maxLine is the longest line, without its newline, that the server
// accepts from Asterisk. Asterisk's own command buffer is 2 KiB and an
// env line is rarely over 200 bytes, so anything longer is junk.
const maxLine = 4096

// errLineTooLong ends a session whose peer sends a line over maxLine.
var errLineTooLong = errors.New("line too long")

// maxEnv bounds the whole env block. Asterisk's is about 1 KiB (some
// thirty lines); without a bound, a local process posing as Asterisk
// could stream distinct agi_* lines until memory ran out, on every
// session slot at once.
const maxEnv = 32 << 10

// errEnvTooLarge ends a session whose env block passes maxEnv.
var errEnvTooLarge = errors.New("env block too large")

// lineReader hands out at most one line per Read.
//
// The agi library makes a new bufio.Scanner for each Command. A scanner
// reads as much as the connection gives it, keeps the first line and
// drops the rest with the scanner. When Asterisk's reply and its
// asynchronous "HANGUP" line arrive in one TCP read, the second line
// would be lost. Read never returns bytes past the first newline, so
// whatever follows stays buffered here for the next Command.
type lineReader struct {
	br    *bufio.Reader
	cur   int   // bytes of the current, unfinished line handed out so far
	cr    bool  // the current line so far is exactly "\r"
	lines int   // complete lines handed out
	blank bool  // the last complete line was empty ("\n" or "\r\n")
	err   error // first read error, kept so the session can tell why a command failed
	// envLeft is how many more bytes the env block may take while
	// capped (see maxEnv).
	envLeft int
	capped  bool
	// env is the env block as read while capped, for checking a block
	// the agi library parsed into something else (envScript).
	env *[]byte
}

var envPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

func newLineReader(r io.Reader) *lineReader {
	br := bufioPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &lineReader{br: br}
}

// release returns the buffer to the pool; lr must not be used after.
func (lr *lineReader) release() {
	lr.br.Reset(nil)
	bufioPool.Put(lr.br)
	lr.br = nil
	if lr.env != nil {
		*lr.env = (*lr.env)[:0]
		envPool.Put(lr.env)
		lr.env = nil
	}
	if lr.err == nil {
		lr.err = io.ErrClosedPipe
	}
}

func (lr *lineReader) Read(p []byte) (int, error) {
	if lr.err != nil {
		return 0, lr.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if lr.br.Buffered() == 0 {
		// One read from the connection: whatever it returns.
		if _, err := lr.br.Peek(1); err != nil {
			lr.err = err
			return 0, err
		}
	}
	buf, _ := lr.br.Peek(lr.br.Buffered())
	end := false
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf, end = buf[:i+1], true
	}
	if len(buf) > len(p) {
		buf, end = buf[:len(p)], false
	}
	length := lr.cur + len(buf)
	if end {
		length-- // the newline does not count
	}
	if length > maxLine {
		lr.err = errLineTooLong
		return 0, lr.err
	}
	if lr.capped {
		if len(buf) > lr.envLeft {
			lr.err = errEnvTooLarge
			return 0, lr.err
		}
		lr.envLeft -= len(buf)
		if lr.env == nil {
			lr.env = envPool.Get().(*[]byte)
		}
		*lr.env = append(*lr.env, buf...)
	}
	n := copy(p, buf)
	lr.br.Discard(n)
	if end {
		lr.blank = length == 0 || (length == 1 && (lr.cr || p[0] == '\r'))
		lr.cur, lr.cr = 0, false
		lr.lines++
	} else {
		lr.cr = length == 1 && p[0] == '\r'
		lr.cur = length
	}
	return n, nil
}

// readLine reads one whole line, without its line ending, bypassing
// the agi library (used to skip the rest of a multi-line reply).
func (lr *lineReader) readLine() (string, error) {
	var line []byte
	var buf [256]byte
	for {
		n, err := lr.Read(buf[:])
		line = append(line, buf[:n]...)
		if err != nil {
			return "", err
		}
		if n > 0 && buf[n-1] == '\n' {
			return string(bytes.TrimRight(line, "\r\n")), nil
		}
	}
}

// pending reports whether a complete line that starts with prefix is
// already buffered, without reading from the connection.
func (lr *lineReader) pending(prefix string) bool {
	if lr.br == nil {
		return false
	}
	buf, _ := lr.br.Peek(lr.br.Buffered())
	return bytes.HasPrefix(buf, []byte(prefix)) && bytes.IndexByte(buf, '\n') >= len(prefix)
}
