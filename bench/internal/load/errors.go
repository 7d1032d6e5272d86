package load

import (
	"errors"
	"fmt"
)

// ErrVerify marks every error that is a verdict on what a server sent
// back: an echo that differs from what was sent in a byte, its length or
// its opcode, an inflated echo that does so, or a frame no conforming
// server sends (RFC 6455 §5.2). Match it with errors.Is. Such a failure
// is the server's, not the machine's, and a retry cannot mend it:
// cmd/loadclient exits with status 3 for it, and bench/run.sh never
// retries that status. Other errors (a refused or timed-out connection, a
// close from the server) are not marked.
var ErrVerify = errors.New("load: verification failed")

// verifyError is a verification failure. Its text says what was wrong;
// errors.Is matches it to ErrVerify.
type verifyError struct{ msg string }

func (e *verifyError) Error() string        { return e.msg }
func (e *verifyError) Is(target error) bool { return target == ErrVerify }

// verifyf returns a verification failure. It allocates, but only on the
// way to failing the run: the checks that call it cost nothing per
// message while they pass.
func verifyf(format string, args ...any) error {
	return &verifyError{msg: fmt.Sprintf(format, args...)}
}
