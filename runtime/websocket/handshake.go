package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// keyGUID is appended to Sec-WebSocket-Key to form the accept hash
// (RFC 6455 §1.3, §4.2.2).
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(keyGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// validKey reports whether key is the base64 encoding of 16 bytes (§4.2.1).
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

// headerHasToken reports whether a comma-separated header (all its lines)
// contains token, compared case-insensitively (§4.2.1: Upgrade and
// Connection values are case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerTokens splits a comma-separated header into trimmed tokens.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7F {
		return false
	}
	return !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

// ExtensionElement is one element of a Sec-WebSocket-Extensions header.
type ExtensionElement struct {
	Name   string
	Params []Param
}

// ParseExtensions parses Sec-WebSocket-Extensions header values (RFC 6455
// §9.1): comma-separated elements, each a token followed by ";"-separated
// parameters, a parameter a token with an optional "=" and a token or
// quoted-string value (whose unquoted value must itself be a token).
func ParseExtensions(values []string) ([]ExtensionElement, error) {
	var out []ExtensionElement
	for _, v := range values {
		p := extParser{s: v}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' { // empty list elements are allowed (RFC 7230 §7)
				p.i++
				continue
			}
			name, err := p.token()
			if err != nil {
				return nil, err
			}
			el := ExtensionElement{Name: name}
			for {
				p.skipSpace()
				if p.done() || p.peek() == ',' {
					break
				}
				if p.peek() != ';' {
					return nil, p.errorf("want ';' or ','")
				}
				p.i++
				p.skipSpace()
				pname, err := p.token()
				if err != nil {
					return nil, err
				}
				param := Param{Name: pname}
				p.skipSpace()
				if !p.done() && p.peek() == '=' {
					p.i++
					p.skipSpace()
					if param.Value, err = p.value(); err != nil {
						return nil, err
					}
				}
				el.Params = append(el.Params, param)
			}
			out = append(out, el)
		}
	}
	return out, nil
}

// FormatExtension renders one element for Sec-WebSocket-Extensions:
// "name; p1=v1; p2". It writes name and params as given, unquoted, and
// does not check them: the name, each parameter name and each non-empty
// value must be a token (RFC 6455 §9.1, RFC 9110 §5.6.2), else the element
// breaks the header's grammar (a space, quote, comma or semicolon) or, with
// a CR LF, adds a header line of its own. Dial and Accept check what
// extensions offer and answer against that grammar before writing it.
func FormatExtension(name string, params []Param) string {
	var b strings.Builder
	b.WriteString(name)
	for _, p := range params {
		b.WriteString("; ")
		b.WriteString(p.Name)
		if p.Value != "" {
			b.WriteByte('=')
			b.WriteString(p.Value)
		}
	}
	return b.String()
}

// checkExtensionElement reports why name and params cannot be written by
// FormatExtension as one element of Sec-WebSocket-Extensions: RFC 6455
// §9.1 makes the extension name, each parameter name and each value a
// token (a quoted value must be one too once unquoted, so writing every
// value as a token loses nothing). The error names the parameter; the
// caller adds the extension.
func checkExtensionElement(name string, params []Param) error {
	if !isToken(name) {
		return fmt.Errorf("name %q is not a token (RFC 6455 §9.1)", name)
	}
	for _, p := range params {
		if !isToken(p.Name) {
			return fmt.Errorf("parameter name %q is not a token (RFC 6455 §9.1)", p.Name)
		}
		if p.Value != "" && !isToken(p.Value) {
			return fmt.Errorf("parameter %q: value %q is not a token (RFC 6455 §9.1)", p.Name, p.Value)
		}
	}
	return nil
}

type extParser struct {
	s string
	i int
}

func (p *extParser) done() bool { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *extParser) errorf(format string, args ...any) error {
	return fmt.Errorf("websocket: Sec-WebSocket-Extensions %q at %d: %s", p.s, p.i, fmt.Sprintf(format, args...))
}

func (p *extParser) token() (string, error) {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", p.errorf("want a token")
	}
	return p.s[start:p.i], nil
}

func (p *extParser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		return p.token()
	}
	p.i++
	var b strings.Builder
	for {
		if p.done() {
			return "", p.errorf("unterminated quoted string")
		}
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			v := b.String()
			// §9.1: a quoted value must still be a token once unquoted.
			if !isToken(v) {
				return "", p.errorf("quoted value %q is not a token", v)
			}
			return v, nil
		case '\\':
			if p.done() {
				return "", p.errorf("unterminated escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
}
