package tollguard

import (
	"errors"
	"fmt"
)

// Error codes. Transports translate them: the CLI exits 2 on EINVALID,
// the AGI server answers reason "error" for anything it cannot decide.
const (
	ECONFLICT    = "conflict"
	EINTERNAL    = "internal"
	EINVALID     = "invalid"
	ENOTFOUND    = "not_found"
	EFORBIDDEN   = "forbidden"   // e.g. Asterisk refused a dynamic config write
	EUNAVAILABLE = "unavailable" // e.g. ARI is not connected
	EQUOTA       = "quota"
)

// ErrAnswered marks an error Asterisk answered (an HTTP error status):
// the request reached it and was refused or failed there. Any other
// failure of a request (a timeout, a dropped connection, a proxy's 502,
// 503 or 504) may still have been carried out.
var ErrAnswered = errors.New("Asterisk answered the request with an error")

// Error is a domain error: a code for programs and a message for admins.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns a domain error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain,
// EINTERNAL for any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the admin-facing message of err: the domain
// error's message, or err's text.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
